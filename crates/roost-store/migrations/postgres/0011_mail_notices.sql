-- Notices by mail: "a new sign-in" and the low-balance / budget alerts.

-- A mail queued for a cause that may be seen more than once (an event read again by a second
-- replica, or after a restart) carries a key of its own: one mail per key, ever.
ALTER TABLE mail_outbox ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX mail_outbox_dedupe ON mail_outbox (dedupe_key);

-- How far each background reader of events got: the id of the last event it handled.
CREATE TABLE event_cursors (
    name TEXT PRIMARY KEY,
    cursor TEXT NOT NULL
);

-- The alert events, in id order across orgs, for the alert mailer (partial: other events are not
-- indexed, so the charge path writes no more index entries for them).
CREATE INDEX events_alerts ON events (id)
    WHERE type IN ('credits.low_balance', 'credits.depleted', 'budget.threshold', 'budget.exceeded');

-- Where a person has signed in from: SHA-256 of the IP address and user agent. A sign-in from a
-- combination not seen before mails a notice (unless it is their first).
CREATE TABLE sign_in_devices (
    user_id TEXT NOT NULL REFERENCES users(id),
    device TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, device)
);
