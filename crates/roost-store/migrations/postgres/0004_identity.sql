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
