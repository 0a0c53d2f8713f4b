-- The credit ledger (API.md, Credits). Amounts are BIGINT in the wallet's unit; times are Unix ms.
-- Every table leads its primary key with org_id. All writes go through the ledger engine, in one
-- transaction per batch, under the org row's lock. Tables whose rows are updated in place by every
-- batch (heads, wallets, grants, holds, counters, rollups) leave room in their pages (fillfactor) so
-- those updates can stay on the page (HOT) instead of touching every index.

-- Per org: a version bumped by every ledger batch (lets an engine trust its cached state) and the
-- time of the next thing due (a cycle turn, a grant or hold expiry) for the background job.
CREATE TABLE ledger_heads (
    org_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    next_event_at BIGINT
) WITH (fillfactor = 70);
CREATE INDEX ledger_heads_due ON ledger_heads (next_event_at);

CREATE TABLE wallets (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    balance BIGINT NOT NULL,
    held BIGINT NOT NULL,
    granted BIGINT NOT NULL,
    charged BIGINT NOT NULL,
    expired BIGINT NOT NULL,
    anchor_at BIGINT NOT NULL,
    cycle BIGINT NOT NULL,
    -- The plan's monthly credits the current cycle's allocation was measured against (a plan
    -- change mid-cycle grants the new allowance less what the cycle already used of the old one).
    allowance BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, kind)
) WITH (fillfactor = 70);

-- amount = remaining + reserved (by open holds) + charged from it + expired.
CREATE TABLE grants (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    wallet_id TEXT NOT NULL,
    source TEXT NOT NULL,
    amount BIGINT NOT NULL,
    remaining BIGINT NOT NULL,
    reserved BIGINT NOT NULL,
    expired BIGINT NOT NULL,
    effective_at BIGINT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    -- allocation/rollover/trial grants: one per wallet and cycle, ever (cycle turns happen once).
    cycle_key TEXT,
    reason TEXT,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, wallet_id, cycle_key)
) WITH (fillfactor = 70);
CREATE INDEX grants_live ON grants (org_id, wallet_id) WHERE remaining > 0 OR reserved > 0;

-- The journal: charges (also settlements and debit adjustments), grants and expiries.
CREATE TABLE ledger_entries (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    wallet_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    action TEXT NOT NULL,
    metadata TEXT,
    splits TEXT NOT NULL,
    hold_id TEXT,
    balance_after BIGINT NOT NULL,
    at BIGINT NOT NULL,
    -- The order entries were applied in, per org: (ledger version << 20) + position in the batch.
    seq BIGINT NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX ledger_entries_ws ON ledger_entries (org_id, workspace_id, seq);
CREATE INDEX ledger_entries_seq ON ledger_entries (org_id, seq);
CREATE INDEX ledger_entries_at ON ledger_entries (org_id, at);

CREATE TABLE holds (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    wallet_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    action TEXT NOT NULL,
    amount BIGINT NOT NULL,
    -- which grants the reservation came from, in draw-down order: "grt_…:n,grt_…:m"
    splits TEXT NOT NULL,
    status TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    closed_at BIGINT,
    charge_id TEXT,
    PRIMARY KEY (org_id, id)
) WITH (fillfactor = 70);
CREATE INDEX holds_open ON holds (org_id, expires_at) WHERE status = 'open';

-- Budgets: scope 'workspace' (user_id '') or 'member'. Keys carry spend_limit on api_keys.
CREATE TABLE budgets (
    org_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    amount_limit BIGINT NOT NULL,
    alert_percents TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, scope, workspace_id, user_id)
);

-- What each budget subject drew in a cycle: scope 'workspace' (ws id), 'member' (ws id:user id),
-- 'key' (key id). Kept in the charges' own transaction.
CREATE TABLE budget_usage (
    org_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    used BIGINT NOT NULL,
    PRIMARY KEY (org_id, scope, subject, period_start)
) WITH (fillfactor = 70);

-- Hourly usage rollups, written with the charges; usage reports read these, not the charges.
CREATE TABLE usage_rollups (
    org_id TEXT NOT NULL,
    hour BIGINT NOT NULL,
    wallet_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    action TEXT NOT NULL,
    amount BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (org_id, hour, wallet_id, workspace_id, member_id, key_id, action)
) WITH (fillfactor = 70);

-- Idempotency-Key records: the first response, replayed to retries with the same body.
CREATE TABLE idempotency (
    org_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
