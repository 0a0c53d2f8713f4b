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

-- Row-level security on the org-owned tables (org_id leads their keys).
ALTER TABLE org_billing ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON org_billing USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE plan_periods ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON plan_periods USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON invoices USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE purchases ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON purchases USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
-- A payment report's receipt belongs to the org of the invoice or purchase it names. One that
-- names none (org_id NULL, answered 404) belongs to no org: no scope sees it, it is written by
-- roost_record_unmatched_receipt, and receipts are looked up by webhook-id (across orgs: a replay
-- may name another org's object) only through roost_payment_receipt.
ALTER TABLE payment_receipts ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON payment_receipts USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));

-- Cross-org lookups, narrow and read-only: the org an invoice or purchase id belongs to (the
-- payment intake names only the id), the first answer to a webhook-id (a replay may name another
-- org's object, or none), and the work of billing's background job across orgs (drafts whose
-- cycle has ended, reload payments, purchases to grant). Their search_path is fixed and EXECUTE
-- taken from PUBLIC by the block at the end, as in 0014.
CREATE FUNCTION roost_billing_owner(target TEXT) RETURNS TEXT
    LANGUAGE sql STABLE SECURITY DEFINER AS
    $$ SELECT org_id FROM invoices WHERE id = target UNION ALL SELECT org_id FROM purchases WHERE id = target LIMIT 1 $$;
CREATE FUNCTION roost_payment_receipt(p_webhook_id TEXT) RETURNS TABLE (body_hash TEXT, status_code BIGINT, response TEXT)
    LANGUAGE sql STABLE SECURITY DEFINER AS
    $$ SELECT r.body_hash, r.status_code, r.response FROM payment_receipts r WHERE r.webhook_id = p_webhook_id $$;
CREATE FUNCTION roost_record_unmatched_receipt(p_webhook_id TEXT, p_body_hash TEXT, p_target TEXT, p_status BIGINT,
    p_response TEXT, p_at BIGINT) RETURNS BIGINT LANGUAGE sql VOLATILE SECURITY DEFINER AS
    $$ WITH i AS (INSERT INTO payment_receipts (webhook_id, body_hash, org_id, target_id, outcome, status_code, response, received_at)
          VALUES (p_webhook_id, p_body_hash, NULL, p_target, 'refused', p_status, p_response, p_at)
          ON CONFLICT (webhook_id) DO NOTHING RETURNING 1) SELECT COUNT(*) FROM i $$;
CREATE FUNCTION roost_due_invoices(upto BIGINT, n BIGINT) RETURNS TABLE (org_id TEXT, id TEXT)
    LANGUAGE sql STABLE SECURITY DEFINER AS
    $$ SELECT org_id, id FROM invoices WHERE status = 'draft' AND period_end <= upto ORDER BY period_end, id LIMIT n $$;
CREATE FUNCTION roost_reload_payments(overdue_before BIGINT) RETURNS TABLE (org_id TEXT, wallet_kind TEXT, reason TEXT)
    LANGUAGE sql STABLE SECURITY DEFINER AS
    $$ SELECT org_id, wallet_kind, MIN(CASE WHEN status = 'failed' THEN 'payment_failed' ELSE 'payment_pending' END)
       FROM purchases WHERE origin = 'auto_reload' AND (status = 'failed' OR (status = 'pending' AND created_at < overdue_before))
       GROUP BY org_id, wallet_kind $$;
CREATE FUNCTION roost_paused_reloads() RETURNS TABLE (org_id TEXT, wallet_kind TEXT, reason TEXT)
    LANGUAGE sql STABLE SECURITY DEFINER AS
    $$ SELECT org_id, kind, reload_paused FROM wallets WHERE reload_paused IS NOT NULL $$;
CREATE FUNCTION roost_unbilled_reloads(n BIGINT) RETURNS TABLE (org_id TEXT)
    LANGUAGE sql STABLE SECURITY DEFINER AS
    $$ SELECT DISTINCT g.org_id FROM grants g JOIN orgs o ON o.id = g.org_id AND o.deleted_at IS NULL
       WHERE g.reason = 'auto_reload'
       AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.org_id = g.org_id AND p.grant_id = g.id) LIMIT n $$;
CREATE FUNCTION roost_purchases_to_grant(n BIGINT) RETURNS TABLE (org_id TEXT, id TEXT)
    LANGUAGE sql STABLE SECURITY DEFINER AS
    $$ SELECT org_id, id FROM purchases WHERE status = 'paid' AND granted_at IS NULL ORDER BY created_at LIMIT n $$;
-- The operator's list of every org: plan, members and the sum of its wallets' balances.
CREATE FUNCTION roost_admin_orgs(after TEXT, n BIGINT)
    RETURNS TABLE (id TEXT, name TEXT, kind TEXT, plan TEXT, owner_id TEXT, created_at BIGINT, members BIGINT, balance BIGINT)
    LANGUAGE sql STABLE SECURITY DEFINER AS
    $$ SELECT o.id, o.name, o.kind, o.plan, o.owner_id, o.created_at,
       (SELECT COUNT(*) FROM org_members m WHERE m.org_id = o.id),
       (SELECT CAST(COALESCE(SUM(w.balance), 0) AS BIGINT) FROM wallets w WHERE w.org_id = o.id)
       FROM orgs o WHERE o.deleted_at IS NULL AND (after = '' OR o.id > after) ORDER BY o.id LIMIT n $$;

-- Fix every roost_* definer function's search_path to this schema (wherever roost lives), and
-- take EXECUTE away from PUBLIC (the block that ends 0014; idempotent).
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND p.proname LIKE 'roost\_%' AND p.prosecdef
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;
