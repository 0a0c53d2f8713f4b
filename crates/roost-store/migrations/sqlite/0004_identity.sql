-- Identity: the mail outbox (written in the transaction of the change that causes a mail, sent by a
-- background sender after commit).
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- Emptied once sent: the bodies may carry single-use links.
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    -- pending, sent, failed (gave up), suppressed (written to keep work equal, never sent).
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';

-- Email verification and password reset: single-use, expiring tokens, stored as SHA-256 only.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
CREATE TABLE user_tokens (
    token_hash TEXT PRIMARY KEY,
    -- verify_email or password_reset
    purpose TEXT NOT NULL,
    -- NULL for a reset asked for an unknown email: written so both answers cost the same, never usable.
    user_id TEXT REFERENCES users(id),
    -- The address the token was sent to: verifying proves this one, not a later one.
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX user_tokens_user ON user_tokens (user_id);

-- Sessions a person can see and end: an id (never the token), last use, where from.
ALTER TABLE sessions ADD COLUMN id TEXT;
ALTER TABLE sessions ADD COLUMN last_used_at BIGINT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
-- Sessions from before: an id of the session kind made from the token's hash (hex digits are in the
-- id alphabet), so they can be listed and ended too.
UPDATE sessions SET id = 'ses_0' || substr(token_hash, 1, 25), last_used_at = created_at;
CREATE UNIQUE INDEX sessions_id ON sessions (id);

-- Two-factor (TOTP). A secret without totp_enabled_at is an enrolment awaiting its first code.
-- totp_last_step is the last time step accepted: a code for it or an earlier one is refused (replay).
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled_at BIGINT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id),
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
-- Members without two-factor may not use this org's workspaces.
ALTER TABLE orgs ADD COLUMN require_2fa BIGINT NOT NULL DEFAULT 0;

-- Verified domains: an org proves it controls a mail domain (a DNS TXT record), and people whose
-- verified address is there join it (auto_join) or see it suggested (suggest).
CREATE TABLE org_domains (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    domain TEXT NOT NULL,
    mode TEXT NOT NULL,
    role TEXT NOT NULL,
    -- Published in DNS, so not a secret: the value of the TXT record that proves control.
    token TEXT NOT NULL,
    verified_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX org_domains_org_domain ON org_domains (org_id, domain);
-- A domain is verified for one org at a time.
CREATE UNIQUE INDEX org_domains_verified ON org_domains (domain) WHERE verified_at IS NOT NULL;
-- When the user's verified address was first matched against verified domains (auto-join runs once).
ALTER TABLE users ADD COLUMN domains_matched_at BIGINT;
