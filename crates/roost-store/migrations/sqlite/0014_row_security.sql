-- Row-level security is PostgreSQL's (see migrations/postgres/0014_row_security.sql). SQLite has
-- none: one process owns the file. This migration keeps the versions of both backends equal.
SELECT 1;
