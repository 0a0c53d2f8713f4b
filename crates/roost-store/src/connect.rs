//! Connecting: the pool's size and timeouts, start-up errors that name their cause, a pool that
//! never hands out a connection still inside a transaction, and which database errors pass.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, Connection};

use crate::dialect::{Dialect, Postgres, Sqlite};
use crate::{Result, Store, StoreError, ledger, redact};

/// How the connection pool is sized and how long a caller waits for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections this process opens; `None` takes the backend's default (SQLite 8,
    /// PostgreSQL 16).
    pub max_connections: Option<u32>,
    /// How long a request waits for a connection before it is answered "unavailable". Short, so
    /// that a database outage answers quickly instead of piling up requests.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: None, acquire_timeout: Duration::from_millis(1500) }
    }
}

/// How long the first connection at start-up may take before the cause is reported.
const FIRST_CONNECT: Duration = Duration::from_secs(5);

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) with the default pool, creating a
    /// SQLite file if missing. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PoolSettings::default()).await
    }

    /// [`Store::connect`] with the pool sized and timed by `pool`. A database that cannot be
    /// reached, does not exist or cannot be written is reported at once with its cause.
    pub async fn connect_with(url: &str, pool: PoolSettings) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect: &'static dyn Dialect = if url.starts_with("sqlite:") {
            &Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            &Postgres
        } else {
            return Err(StoreError::Setup(format!(
                "unsupported database URL `{}`: use sqlite://… or postgres://…",
                redact(url)
            )));
        };
        let url = dialect.prepare_url(url);
        first_connection(&url, dialect).await?;
        let setup = dialect.connection_setup();
        let pool = AnyPoolOptions::new()
            .max_connections(pool.max_connections.unwrap_or_else(|| dialect.max_connections()).max(1))
            .acquire_timeout(pool.acquire_timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if !setup.is_empty() {
                        sqlx::raw_sql(setup).execute(conn).await?;
                    }
                    Ok(())
                })
            })
            // A connection whose COMMIT or ROLLBACK failed (a full disk, a dropped link) can come
            // back still inside its transaction; given out again, every `begin` on it fails.
            // Such a connection is closed instead (closing rolls the transaction back).
            .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect(&url)
            .await?;
        if let Some(sql) = dialect.background_checkpoint() {
            tokio::spawn(crate::checkpoint(pool.clone(), sql));
        }
        let writer = match ledger::file_of(&url) {
            Some(path) if dialect.own_ledger_writer() => Some(std::sync::Arc::new(ledger::Writer::start(path, setup)?)),
            _ => None,
        };
        Ok(Self { pool, dialect, writer })
    }

    /// The newest migration applied to the database and the newest this build knows.
    pub async fn schema_versions(&self) -> Result<(i64, i64)> {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM roost_migrations").fetch_one(&self.pool).await?;
        Ok((applied.unwrap_or(0), self.newest_migration()))
    }

    /// The version of the last embedded migration.
    pub(crate) fn newest_migration(&self) -> i64 {
        self.dialect.migrations().last().map_or(0, |m| m.version)
    }

    /// Connections open and idle in the pool, and its maximum.
    pub fn pool_use(&self) -> (u32, u32, u32) {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        (self.pool.size(), idle, self.pool.options().get_max_connections())
    }
}

/// Opens one connection before the pool does, so that the error names its cause (the pool only
/// says "timed out"), and on SQLite checks that the file can be written.
async fn first_connection(url: &str, dialect: &dyn Dialect) -> Result<()> {
    let place = redact(url);
    let mut conn = match tokio::time::timeout(FIRST_CONNECT, AnyConnection::connect(url)).await {
        Err(_) => {
            return Err(StoreError::Setup(format!(
                "cannot connect to the database at {place}: no answer within {}s",
                FIRST_CONNECT.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(StoreError::Setup(explain(&place, &e))),
        Ok(Ok(c)) => c,
    };
    if dialect.name() == "sqlite" {
        // A read-only file opens fine and fails at the first write: find out now.
        let probe = sqlx::raw_sql("BEGIN IMMEDIATE; CREATE TEMP TABLE roost_write_probe (x INTEGER); ROLLBACK")
            .execute(&mut conn)
            .await;
        let writable = match probe {
            Ok(_) => sqlx::raw_sql("PRAGMA user_version = 0").execute(&mut conn).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = writable {
            let _ = conn.close().await;
            return Err(StoreError::Setup(format!(
                "the SQLite database {place} cannot be written ({e}): check the file's and its directory's permissions and that the disk is not mounted read-only"
            )));
        }
    }
    let _ = conn.close().await;
    Ok(())
}

/// A sentence for an operator about why the first connection failed.
fn explain(place: &str, e: &sqlx::Error) -> String {
    let tls = match e {
        sqlx::Error::Tls(t) => Some(t.to_string()),
        // rustls' refusals (an unknown issuer, a name mismatch) arrive as I/O errors.
        other if other.to_string().contains("certificate") => Some(other.to_string()),
        _ => None,
    };
    if let Some(t) = tls {
        return format!(
            "TLS to the database at {place} failed: {t}: check sslmode and sslrootcert (the CA file must have signed the server's certificate, and with sslmode=verify-full the host must be one the certificate names)"
        );
    }
    if let sqlx::Error::Io(io) = e {
        if io.kind() == std::io::ErrorKind::ConnectionRefused {
            return format!(
                "cannot connect to the database at {place}: connection refused (is PostgreSQL running and listening on that host and port?)"
            );
        }
        return format!("cannot connect to the database at {place}: {io}");
    }
    if let sqlx::Error::Database(d) = e {
        match d.code().as_deref() {
            Some("3D000") => {
                return format!(
                    "the database named in {place} does not exist ({}): create it (e.g. `createdb`) or fix database_url",
                    d.message()
                );
            }
            Some("28P01" | "28000") => {
                return format!(
                    "the database at {place} refused the login ({}): check the user and password",
                    d.message()
                );
            }
            Some("14") => {
                return format!(
                    "cannot open the SQLite database {place} ({}): does its directory exist and can it be written?",
                    d.message()
                );
            }
            _ => {}
        }
    }
    format!("cannot connect to the database at {place}: {e}")
}

/// Whether a database error is the database being unreachable, full or failing, rather than
/// the request: such a request may succeed if retried later, so it is answered 503.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::InvalidSavePointStatement
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| transient_code(&c)),
        _ => false,
    }
}

/// SQLite's (extended) result codes and PostgreSQL's SQLSTATEs that mean "not now".
fn transient_code(code: &str) -> bool {
    // A SQLSTATE is always five characters (often all digits, like 53100); SQLite's extended
    // result codes are at most four digits.
    if code.len() < 5 {
        // SQLITE_BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
        return code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5..=8 | 10 | 13 | 14));
    }
    // 08 connection exception, 53 insufficient resources (53100 disk full), 57P0x shutdown or
    // not yet accepting, 58 system error (58030 I/O), 25006 a standby refusing a write.
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code.starts_with("58")
        || code == "25006"
}

impl StoreError {
    /// Whether the failure is the database's (unreachable, full, failing) and a retry later may
    /// succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => is_transient(e),
            StoreError::Writer(rusqlite::Error::SqliteFailure(f, _)) => {
                matches!(f.extended_code & 0xff, 5..=8 | 10 | 13 | 14)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_are_the_database_failing_not_the_request() {
        // SQLite: BUSY, READONLY, IOERR_WRITE (extended: 778 & 0xff = 10), FULL, CANTOPEN.
        for code in ["5", "8", "10", "778", "13", "14", "08006", "53100", "57P01", "57P03", "58030", "25006"] {
            assert!(transient_code(code), "{code}");
        }
        // Constraint violations, syntax, a missing row: the request's own fault.
        for code in ["19", "2067", "1", "23505", "23503", "42601", "22P02", "40001"] {
            assert!(!transient_code(code), "{code}");
        }
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(is_transient(&sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn connection_errors_name_their_cause() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(explain("postgres://u:***@h:1/db", &refused).contains("connection refused"));
    }
}
