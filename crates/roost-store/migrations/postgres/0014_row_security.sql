-- Row-level security (defence in depth behind the application's own checks).
--
-- roost connects as a role that is neither superuser nor table owner (`roost setup-postgres`).
-- Every table with an org_id column lets a transaction see and write only the rows of the orgs
-- named in its setting `roost.org_id` (one id, or a comma-separated list for a ledger batch that
-- spans orgs), which the store sets at the start of every transaction:
--     SELECT set_config('roost.org_id', 'org_…', true)
-- No setting: current_setting(…, true) is NULL, the policy is never true, nothing is visible or
-- writable. The policies are not FORCEd: the owner (who runs migrations and owns the SECURITY
-- DEFINER functions below) is not bound by them.

ALTER TABLE org_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON org_members
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON workspaces
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE workspace_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON workspace_members
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON invitations
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON api_keys
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE api_key_secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON api_key_secrets
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE resources ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON resources
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON audit_events
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE ledger_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON ledger_heads
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE wallets ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON wallets
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON grants
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE ledger_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON ledger_entries
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE holds ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON holds
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE budgets ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON budgets
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE budget_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON budget_usage
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE usage_rollups ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON usage_rollups
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE idempotency ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON idempotency
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE org_domains ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON org_domains
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON events
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE budget_exceeded ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON budget_exceeded
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON webhooks
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE webhook_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON webhook_usage
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON audit_heads
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));

-- Delivery attempts carry no org_id: they belong to the org of their endpoint (whose own policy
-- applies inside the subquery).
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON webhook_deliveries
    USING (webhook_id IN (SELECT id FROM webhooks))
    WITH CHECK (webhook_id IN (SELECT id FROM webhooks));

-- Cross-org lookups: narrow SECURITY DEFINER functions that answer only what the caller needs.
-- Their search_path is fixed below (pg_catalog, the schema roost lives in, pg_temp last), and
-- EXECUTE is revoked from PUBLIC: `roost setup-postgres` grants it to the app role.

-- The org of an object, from its id: the store sets the scope from it in the statement that
-- opens the transaction (NULL when there is no such object: then nothing is visible).
CREATE FUNCTION roost_org_of_workspace(p_id TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT org_id FROM workspaces WHERE id = p_id $$;
CREATE FUNCTION roost_org_of_key(p_id TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT org_id FROM api_keys WHERE id = p_id $$;
CREATE FUNCTION roost_org_of_key_secret(p_hash TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT org_id FROM api_key_secrets WHERE secret_hash = p_hash $$;
CREATE FUNCTION roost_org_of_resource(p_id TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT org_id FROM resources WHERE id = p_id $$;
CREATE FUNCTION roost_org_of_webhook(p_id TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT org_id FROM webhooks WHERE id = p_id $$;
CREATE FUNCTION roost_org_of_hold(p_id TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT org_id FROM holds WHERE id = p_id $$;
CREATE FUNCTION roost_org_of_invitation_token(p_hash TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT org_id FROM invitations WHERE token_hash = p_hash $$;
-- A user's memberships: the orgs they belong to, as a scope.
CREATE FUNCTION roost_orgs_of_user(p_user TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT string_agg(org_id, ',' ORDER BY org_id) FROM org_members WHERE user_id = p_user $$;
-- The orgs with a verified claim on an email domain, as a scope.
CREATE FUNCTION roost_orgs_of_domain(p_domain TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT string_agg(org_id, ',' ORDER BY org_id) FROM org_domains
          WHERE domain = p_domain AND verified_at IS NOT NULL $$;

-- Where a user lands when their active workspace goes away (in another org than the change's).
CREATE FUNCTION roost_personal_workspace(p_user TEXT) RETURNS TEXT LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT w.id FROM workspaces w JOIN orgs o ON o.id = w.org_id
          WHERE o.owner_id = p_user AND o.kind = 'personal' AND w.is_personal = 1 $$;

-- Background jobs find their work across orgs here, then act within each org's scope.
CREATE FUNCTION roost_webhooks_due(p_now BIGINT, p_wall BIGINT, p_limit BIGINT) RETURNS SETOF TEXT
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT w.id FROM webhooks w WHERE w.enabled = 1 AND w.next_at <= p_now AND w.lease_until <= p_wall
          AND EXISTS (SELECT 1 FROM events e WHERE e.org_id = w.org_id AND e.id > w.cursor)
          ORDER BY w.next_at LIMIT p_limit $$;
CREATE FUNCTION roost_clear_webhook_leases() RETURNS BIGINT LANGUAGE sql VOLATILE SECURITY DEFINER
    AS $$ WITH c AS (UPDATE webhooks SET lease_owner = NULL, lease_until = 0 WHERE lease_until <> 0 RETURNING 1)
          SELECT COUNT(*) FROM c $$;
CREATE FUNCTION roost_ledger_due(p_now BIGINT, p_limit BIGINT) RETURNS SETOF TEXT
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT org_id FROM ledger_heads WHERE next_event_at <= p_now ORDER BY next_event_at LIMIT p_limit $$;
CREATE FUNCTION roost_purge_idempotency(p_before BIGINT) RETURNS BIGINT LANGUAGE sql VOLATILE SECURITY DEFINER
    AS $$ WITH d AS (DELETE FROM idempotency WHERE created_at < p_before RETURNING 1) SELECT COUNT(*) FROM d $$;
CREATE FUNCTION roost_alert_events(p_after TEXT, p_before TEXT, p_limit BIGINT)
    RETURNS TABLE (org_id TEXT, id TEXT, type TEXT, workspace_id TEXT, data TEXT, created_at BIGINT)
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT e.org_id, e.id, e.type, e.workspace_id, e.data, e.created_at FROM events e
          WHERE e.type IN ('credits.low_balance', 'credits.depleted', 'budget.threshold', 'budget.exceeded')
          AND e.id > p_after AND e.id < p_before ORDER BY e.id LIMIT p_limit $$;

-- Fix every roost_* definer function's search_path to this schema (wherever roost lives), and
-- take EXECUTE away from PUBLIC.
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
