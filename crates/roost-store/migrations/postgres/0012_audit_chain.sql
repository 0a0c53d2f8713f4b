-- The audit hash chain: each event carries its place in its org's chain (`seq`, from 1), the hash
-- of the event before it (`prev_hash`, '' for the first) and its own hash (SHA-256 over
-- `prev_hash` and its columns; see roost-store's audit_chain.rs). `audit_heads` holds each
-- org's newest link, so that removing the newest events is found too. Existing events are chained
-- by roost itself right after this file runs (in the same transaction), in (at, id) order; the
-- unique (org_id, seq) index is created then.
ALTER TABLE audit_events ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE TABLE audit_heads (
    org_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
