-- Webhook endpoints (API.md "Events and webhooks"). The secret is kept as issued (`whsec_…`): it
-- must sign, so it cannot be hashed. During a rotation the previous secret signs too, until
-- old_secret_until.
-- Delivery state lives on the endpoint's row so that it survives restarts: `cursor` is the id of the
-- last event handed over (or skipped as not subscribed); `attempt` counts failed attempts of the
-- event after it; `next_at` is when the next attempt is due. A replica delivers an endpoint only
-- while it holds the lease (`lease_owner` until `lease_until`): one delivery in flight per endpoint.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    enabled BIGINT NOT NULL DEFAULT 1,
    secret TEXT NOT NULL,
    old_secret TEXT,
    old_secret_until BIGINT,
    created_at BIGINT NOT NULL,
    cursor TEXT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_org ON webhooks (org_id, id);
CREATE INDEX webhooks_due ON webhooks (enabled, next_at);

-- Every delivery attempt, newest last (`id` is a TypeID over UUIDv7, so it sorts by time).
CREATE TABLE webhook_deliveries (
    webhook_id TEXT NOT NULL,
    id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, id)
);

-- Events handed to endpoints per org and calendar month (UTC), against the plan's
-- webhook_events_per_month.
CREATE TABLE webhook_usage (
    org_id TEXT NOT NULL,
    month_start BIGINT NOT NULL,
    delivered BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, month_start)
);
