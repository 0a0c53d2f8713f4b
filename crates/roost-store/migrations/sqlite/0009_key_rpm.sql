-- A key's own requests-per-minute limit (never above its org plan's rpm; NULL: only the org's applies).
ALTER TABLE api_keys ADD COLUMN rpm BIGINT;
