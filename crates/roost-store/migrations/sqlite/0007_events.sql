-- Events (API.md "Events and webhooks"): facts about an org, written in the same transaction as the
-- change that causes them — ledger batches included — so an event is never lost and never emitted
-- for a change that rolled back. Ids are TypeIDs over UUIDv7: newest first is id order.
CREATE TABLE events (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    workspace_id TEXT,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, id)
);
-- The retention purge (events are kept at least 30 days).
CREATE INDEX events_created ON events (created_at);

-- Wallet alerts and auto-reload (API.md "Wallet alerts and auto-reload"), part of the wallet's row so
-- that the ledger reads and writes them under the org's lock with the balance they depend on.
-- low_balance: the credits.low_balance threshold (NULL: none). depleted: 1 once credits.depleted was
-- sent, until the wallet is funded again. reload_*: the auto-reload settings, and this calendar
-- month's reloads (reload_month: the month's first millisecond, UTC).
ALTER TABLE wallets ADD COLUMN low_balance BIGINT;
ALTER TABLE wallets ADD COLUMN depleted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN reload_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN reload_threshold BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN reload_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN reload_monthly_max BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN reload_month BIGINT NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN reload_month_total BIGINT NOT NULL DEFAULT 0;
-- 1 while a reload may fire: cleared by a reload (or its failure), set again once available credits
-- are at or above the threshold, or when auto-reload is set.
ALTER TABLE wallets ADD COLUMN reload_armed BIGINT NOT NULL DEFAULT 1;

-- budget.exceeded is sent once per budget per cycle: the budgets (and keys' spend limits) that sent
-- it this period. Loaded with the period's counters.
CREATE TABLE budget_exceeded (
    org_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    PRIMARY KEY (org_id, period_start, scope, subject)
);
