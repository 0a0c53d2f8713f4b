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
