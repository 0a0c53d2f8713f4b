-- Workspace records: per-workspace JSON state by key, an append-only history, and each workspace's
-- state usage (bytes, and the sequence that versions its documents).
CREATE TABLE workspace_state (
    org_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    key TEXT NOT NULL,
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
