-- Workspace records: per-workspace JSON state by key, an append-only history, and each workspace's
-- state usage (bytes, and the sequence that versions its documents).
CREATE TABLE workspace_state (
    org_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    doc TEXT NOT NULL,
    size BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (org_id, workspace_id, key)
);
-- Versions come from here (never reused in a workspace, so an old ETag never matches a document
-- deleted and written again), and state bytes are counted here, under the row's lock.
CREATE TABLE workspace_records_usage (
    org_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    state_bytes BIGINT NOT NULL,
    version_seq BIGINT NOT NULL,
    PRIMARY KEY (org_id, workspace_id)
);
CREATE TABLE workspace_history (
    org_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT,
    data TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    idem_key TEXT NOT NULL,
    idem_fp TEXT NOT NULL,
    PRIMARY KEY (org_id, workspace_id, id)
);
CREATE UNIQUE INDEX workspace_history_idem ON workspace_history (org_id, workspace_id, idem_key);
CREATE INDEX workspace_history_kind ON workspace_history (org_id, workspace_id, kind, id);
CREATE INDEX workspace_history_ref ON workspace_history (org_id, workspace_id, ref, id);
CREATE INDEX workspace_history_actor ON workspace_history (org_id, workspace_id, actor_id, id);
CREATE INDEX workspace_history_at ON workspace_history (org_id, workspace_id, at);

-- Row-level security: every read and write of these tables names its org in `roost.org_id`.
ALTER TABLE workspace_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON workspace_state
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE workspace_records_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON workspace_records_usage
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));
ALTER TABLE workspace_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON workspace_history
    USING (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')))
    WITH CHECK (org_id = ANY (string_to_array(current_setting('roost.org_id', true), ',')));

-- The retention job's one look across orgs: which workspaces hold history older than their plan
-- keeps (`p_cutoffs`: {"<plan id>": <oldest at kept, Unix ms>}). The purge itself runs in each org's scope.
CREATE FUNCTION roost_history_expired(p_cutoffs JSONB, p_limit BIGINT)
RETURNS TABLE (org_id TEXT, workspace_id TEXT, cutoff BIGINT)
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT w.org_id, w.id, c.value::BIGINT
    FROM jsonb_each_text(p_cutoffs) AS c(plan, value)
    JOIN orgs o ON o.plan = c.plan
    JOIN workspaces w ON w.org_id = o.id
    WHERE EXISTS (
        SELECT 1 FROM workspace_history h
        WHERE h.org_id = w.org_id AND h.workspace_id = w.id AND h.at < c.value::BIGINT
    )
    ORDER BY w.org_id, w.id
    LIMIT p_limit
$$;

-- As at the end of 0014: every roost_* definer gets a fixed search_path and is not executable by
-- PUBLIC (the application role gets EXECUTE from the default privileges `roost setup-postgres` sets).
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
