//! What differs between the two backends.

/// One embedded, forward-only migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// A backend's own behaviour: its migrations, connection settings and locking.
pub trait Dialect: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    /// This backend's migrations, in order. Both backends use the same versions and names.
    fn migrations(&self) -> &'static [Migration];
    /// Adjusts the URL before connecting (e.g. create the SQLite file if missing).
    fn prepare_url(&self, url: &str) -> String {
        url.to_string()
    }
    /// Statements run on every new connection.
    fn connection_setup(&self) -> &'static str;
    /// A statement to run every [`CHECKPOINT_EVERY`] on a connection of its own, so that the
    /// work of folding the write-ahead log into the database never falls on a committing writer.
    fn background_checkpoint(&self) -> Option<&'static str> {
        None
    }
    /// Pool size.
    fn max_connections(&self) -> u32;
    /// Whether ledger batches are committed by a connection of their own on a thread of its own
    /// (cached prepared statements, rows bound one by one) rather than through the pool.
    fn own_ledger_writer(&self) -> bool;
    /// The statement that opens a write transaction.
    fn begin_write(&self) -> &'static str;
    /// The statement that opens a read-only transaction whose statements all see one snapshot.
    fn begin_snapshot(&self) -> &'static str;
    /// A statement (`$1` = org id) that serialises writers of one org, if the backend needs one.
    fn lock_org(&self) -> Option<&'static str>;
    /// The clause that write-locks the rows a `SELECT` returns (`""` where the transaction already
    /// holds the database's only write lock).
    fn row_lock(&self) -> &'static str;
    /// The expression reading element `i` (an integer if `int`) of one row of a JSON array of
    /// arrays, as unpacked by [`Dialect::json_rows`].
    fn json_column(&self, i: usize, int: bool) -> String;
    /// The `FROM` source unpacking the JSON array of arrays in parameter `$P`, one row per element.
    fn json_rows(&self) -> &'static str;
    /// Whether several data-modifying statements can share one statement (as CTEs).
    fn writes_in_one_statement(&self) -> bool;
    /// Whether a row known to exist is better written by a plain `UPDATE` than by an upsert (on
    /// PostgreSQL an `INSERT … ON CONFLICT DO UPDATE` that hits a row first locks it: one more WAL
    /// record per row). Used only where several writes share one statement.
    fn update_before_insert(&self) -> bool {
        false
    }
    /// Whether the database has one write lock for everything (so parallel writers only queue).
    fn single_writer(&self) -> bool;
    /// A statement that keeps concurrent migrators apart, if the backend needs one.
    fn migration_lock(&self) -> Option<&'static str>;
    /// A statement (`$1` = key id) that tells the other processes, when the transaction commits,
    /// that a key was revoked or rotated; `None` where there are no other processes to tell.
    fn notify_key_change(&self) -> Option<&'static str> {
        None
    }
    /// Whether tenant tables are guarded by row-level security keyed on `roost.org_id`, so that
    /// every transaction must name its orgs (see `scope.rs`).
    fn row_security(&self) -> bool {
        false
    }
}

/// SQLite in WAL mode: many readers, one writer, which `BEGIN IMMEDIATE` takes up front.
#[derive(Debug, Clone, Copy)]
pub struct Sqlite;

/// PostgreSQL: writers of one org serialise on the org row.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

/// How often the background checkpoint runs, where the backend has one.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

static SQLITE_MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "foundation", sql: include_str!("../migrations/sqlite/0001_foundation.sql") },
    Migration { version: 2, name: "ledger", sql: include_str!("../migrations/sqlite/0002_ledger.sql") },
    Migration { version: 3, name: "lean_ledger", sql: include_str!("../migrations/sqlite/0003_lean_ledger.sql") },
    Migration { version: 4, name: "identity", sql: include_str!("../migrations/sqlite/0004_identity.sql") },
    Migration { version: 7, name: "events", sql: include_str!("../migrations/sqlite/0007_events.sql") },
    Migration { version: 8, name: "webhooks", sql: include_str!("../migrations/sqlite/0008_webhooks.sql") },
    Migration { version: 9, name: "key_rpm", sql: include_str!("../migrations/sqlite/0009_key_rpm.sql") },
    Migration { version: 10, name: "oidc", sql: include_str!("../migrations/sqlite/0010_oidc.sql") },
    Migration { version: 11, name: "mail_notices", sql: include_str!("../migrations/sqlite/0011_mail_notices.sql") },
    Migration { version: 12, name: "audit_chain", sql: include_str!("../migrations/sqlite/0012_audit_chain.sql") },
    Migration {
        version: 13,
        name: "token_email_index",
        sql: include_str!("../migrations/sqlite/0013_token_email_index.sql"),
    },
    Migration { version: 14, name: "row_security", sql: include_str!("../migrations/sqlite/0014_row_security.sql") },
    Migration { version: 15, name: "records", sql: include_str!("../migrations/sqlite/0015_records.sql") },
    Migration { version: 16, name: "billing", sql: include_str!("../migrations/sqlite/0016_billing.sql") },
];

static POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "foundation", sql: include_str!("../migrations/postgres/0001_foundation.sql") },
    Migration { version: 2, name: "ledger", sql: include_str!("../migrations/postgres/0002_ledger.sql") },
    Migration { version: 3, name: "lean_ledger", sql: include_str!("../migrations/postgres/0003_lean_ledger.sql") },
    Migration { version: 4, name: "identity", sql: include_str!("../migrations/postgres/0004_identity.sql") },
    Migration { version: 7, name: "events", sql: include_str!("../migrations/postgres/0007_events.sql") },
    Migration { version: 8, name: "webhooks", sql: include_str!("../migrations/postgres/0008_webhooks.sql") },
    Migration { version: 9, name: "key_rpm", sql: include_str!("../migrations/postgres/0009_key_rpm.sql") },
    Migration { version: 10, name: "oidc", sql: include_str!("../migrations/postgres/0010_oidc.sql") },
    Migration { version: 11, name: "mail_notices", sql: include_str!("../migrations/postgres/0011_mail_notices.sql") },
    Migration { version: 12, name: "audit_chain", sql: include_str!("../migrations/postgres/0012_audit_chain.sql") },
    Migration {
        version: 13,
        name: "token_email_index",
        sql: include_str!("../migrations/postgres/0013_token_email_index.sql"),
    },
    Migration { version: 14, name: "row_security", sql: include_str!("../migrations/postgres/0014_row_security.sql") },
    Migration { version: 15, name: "records", sql: include_str!("../migrations/postgres/0015_records.sql") },
    Migration { version: 16, name: "billing", sql: include_str!("../migrations/postgres/0016_billing.sql") },
];

impl Dialect for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn migrations(&self) -> &'static [Migration] {
        SQLITE_MIGRATIONS
    }
    fn prepare_url(&self, url: &str) -> String {
        if url.contains("mode=") || url.contains(":memory:") {
            url.to_string()
        } else if url.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        }
    }
    fn connection_setup(&self) -> &'static str {
        // No checkpoint on commit (`wal_autocheckpoint = 0`): the store checkpoints in the
        // background instead (`background_checkpoint`), off the ledger writer's path.
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;"
    }
    fn background_checkpoint(&self) -> Option<&'static str> {
        // PASSIVE: copies what no reader still needs and never waits for, or blocks, a writer.
        Some("PRAGMA wal_checkpoint(PASSIVE)")
    }
    fn max_connections(&self) -> u32 {
        8
    }
    fn own_ledger_writer(&self) -> bool {
        // One writer at a time anyway, in-process: sqlx's worker-thread hop per statement and
        // the JSON unpacking of multi-row writes were most of a batch's write time.
        true
    }
    fn begin_write(&self) -> &'static str {
        "BEGIN IMMEDIATE"
    }
    fn begin_snapshot(&self) -> &'static str {
        // In WAL mode a read transaction sees the database as of its first read.
        "BEGIN"
    }
    fn lock_org(&self) -> Option<&'static str> {
        None
    }
    fn row_lock(&self) -> &'static str {
        ""
    }
    fn json_column(&self, i: usize, _int: bool) -> String {
        format!("json_extract(value, '$[{i}]')")
    }
    fn json_rows(&self) -> &'static str {
        // `WHERE true` keeps SQLite from reading an upsert's ON CONFLICT as a join constraint.
        "json_each($P) WHERE true"
    }
    fn writes_in_one_statement(&self) -> bool {
        false
    }
    fn single_writer(&self) -> bool {
        true
    }
    fn migration_lock(&self) -> Option<&'static str> {
        None
    }
}

impl Dialect for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn migrations(&self) -> &'static [Migration] {
        POSTGRES_MIGRATIONS
    }
    fn connection_setup(&self) -> &'static str {
        ""
    }
    fn max_connections(&self) -> u32 {
        16
    }
    fn own_ledger_writer(&self) -> bool {
        // Network round trips dominate: one multi-row statement per batch beats rows bound one
        // by one, and several processes share the database anyway.
        false
    }
    fn begin_write(&self) -> &'static str {
        "BEGIN"
    }
    fn begin_snapshot(&self) -> &'static str {
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    }
    fn lock_org(&self) -> Option<&'static str> {
        Some("SELECT id FROM orgs WHERE id = $1 FOR UPDATE")
    }
    fn row_lock(&self) -> &'static str {
        " FOR UPDATE"
    }
    fn json_column(&self, i: usize, int: bool) -> String {
        if int { format!("(x->>{i})::BIGINT") } else { format!("x->>{i}") }
    }
    fn json_rows(&self) -> &'static str {
        // jsonb: `->>` on json text would parse the row again for every column.
        "jsonb_array_elements($P::jsonb) AS r(x)"
    }
    fn writes_in_one_statement(&self) -> bool {
        true
    }
    fn update_before_insert(&self) -> bool {
        // Measured (roost-bench, 200 wallets, 64 clients): the `UPDATE … FROM` the JSON rows was
        // planned as scans of the counter and rollup tables once they held many orgs, and the
        // engine ran at about half the speed of the upserts, whose conflict checks probe the
        // primary keys. The WAL it saved (one lock record per updated row) costs less.
        false
    }
    fn single_writer(&self) -> bool {
        false
    }
    fn migration_lock(&self) -> Option<&'static str> {
        Some("SELECT pg_advisory_xact_lock(7262111)")
    }
    fn notify_key_change(&self) -> Option<&'static str> {
        // NOTIFY is transactional: it is delivered when (and only if) the change commits.
        Some("SELECT pg_notify('roost_keys', $1)")
    }
    fn row_security(&self) -> bool {
        true
    }
}
