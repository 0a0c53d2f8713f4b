-- A key's own requests-per-minute limit (never above its org plan's rpm; NULL: only the org's applies).
ALTER TABLE api_keys ADD COLUMN rpm BIGINT;

-- The headroom a charge answered with (JSON: available credits and the tightest budget), so that
-- a replay of the charge answers the same bytes.
ALTER TABLE ledger_entries ADD COLUMN headroom TEXT;
