-- A lean write set per charge (docs/credits.md, "What a charge writes, and why").

-- The Idempotency-Key of a charge answered with success lives on its journal entry, so a charge
-- writes one row instead of two. The idempotency table keeps every other answer (refusals, holds,
-- settles, releases, top-ups, adjustments). idem_day (at / 86,400,000) makes the unique backstop
-- per day: a key is remembered 48 hours, so its reuse after that lands on another day and is a new
-- charge; a duplicate within the day is refused by the database (the batch fails, nothing doubles);
-- across midnight the engine's lookup under the org lock finds it, as for the table.
ALTER TABLE ledger_entries ADD COLUMN idem_key TEXT;
ALTER TABLE ledger_entries ADD COLUMN idem_fp TEXT;
ALTER TABLE ledger_entries ADD COLUMN idem_day BIGINT;
CREATE UNIQUE INDEX ledger_entries_idem ON ledger_entries (org_id, idem_key, idem_day) WHERE idem_key IS NOT NULL;

-- Keys on journal entries are not deleted when forgotten: the purge moves this horizon instead, and
-- lookups ignore entries before it (one row, id = 1).
CREATE TABLE idempotency_horizon (
    id BIGINT PRIMARY KEY,
    forget_before BIGINT NOT NULL
);
INSERT INTO idempotency_horizon (id, forget_before) VALUES (1, -4611686018427387904);

-- Grant updates become HOT on PostgreSQL: grants_live's predicate columns (remaining, reserved)
-- changed with every charge, so every grant update wrote an entry into all three grant indexes.
-- The reads of live grants scan the org's grants through the primary key instead.
DROP INDEX grants_live;

-- Store::hold(id) is asked before the caller's org is known: without this index it scanned the
-- whole primary key (org_id, id). Holds are written once and closed once, not per charge.
CREATE INDEX holds_id ON holds (id);
