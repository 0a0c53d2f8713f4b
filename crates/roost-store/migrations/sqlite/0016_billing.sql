-- Billing (API.md "Billing"): operator keys, plans in force, invoices, purchases and payment intake.
-- Operator keys act across every org: no org_id.
CREATE TABLE operator_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
-- Who receives an org's invoices when not its owner.
CREATE TABLE org_billing (
    org_id TEXT NOT NULL PRIMARY KEY,
    billing_email TEXT
);
-- The plans an org was on, from a change to the next (to_at NULL: in force now).
CREATE TABLE plan_periods (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    plan TEXT NOT NULL,
    from_at BIGINT NOT NULL,
    to_at BIGINT,
    given BIGINT NOT NULL DEFAULT 0,
    trial_ends_at BIGINT,
    PRIMARY KEY (org_id, id)
);
-- One invoice per org and billing cycle. lines/total are written when it is finalized (a draft's
-- are computed as it is read); number is taken from invoice_numbers in the finalizing transaction.
CREATE TABLE invoices (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    status TEXT NOT NULL,
    number BIGINT UNIQUE,
    currency TEXT NOT NULL,
    lines TEXT NOT NULL DEFAULT '[]',
    total BIGINT NOT NULL DEFAULT 0,
    billed_name TEXT,
    billed_email TEXT,
    max_members BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    issued_at BIGINT,
    paid_at BIGINT,
    paid_reference TEXT,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, period_start)
);
CREATE UNIQUE INDEX invoices_by_id ON invoices (id);
CREATE INDEX invoices_due ON invoices (status, period_end);
-- Credits bought: packs, top-ups asked for by amount (billing on), and auto-reloads (grant_id set
-- at once). status: pending, paid, failed.
CREATE TABLE purchases (
    org_id TEXT NOT NULL,
    id TEXT NOT NULL,
    wallet_kind TEXT NOT NULL,
    origin TEXT NOT NULL,
    packs BIGINT NOT NULL,
    credits BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    invoice_id TEXT NOT NULL,
    grant_id TEXT,
    created_at BIGINT NOT NULL,
    paid_at BIGINT,
    granted_at BIGINT,
    reference TEXT,
    -- The Idempotency-Key of the request that made it, and that request's fingerprint.
    idem_key TEXT,
    idem_fp TEXT,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, grant_id),
    UNIQUE (org_id, idem_key)
);
CREATE UNIQUE INDEX purchases_by_id ON purchases (id);
CREATE INDEX purchases_open ON purchases (status, origin, created_at);
-- The operator's invoice numbers: one counter, taken in the transaction that finalizes.
CREATE TABLE invoice_numbers (
    id BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO invoice_numbers (id, last) VALUES (1, 0);
-- Every payment report received, by its webhook-id (replays answer what the first did).
CREATE TABLE payment_receipts (
    webhook_id TEXT PRIMARY KEY,
    body_hash TEXT NOT NULL,
    org_id TEXT,
    target_id TEXT,
    outcome TEXT NOT NULL,
    status_code BIGINT NOT NULL,
    response TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
-- Auto-reload held back while a reload's payment failed or is overdue (reason), NULL otherwise.
ALTER TABLE wallets ADD COLUMN reload_paused TEXT;
