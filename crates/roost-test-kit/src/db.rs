//! Fresh databases for tests: a SQLite file or a PostgreSQL database of their own, removed when
//! the guard drops, so a failing test cleans up as well as a passing one.

use std::path::PathBuf;

use roost_store::{Store, redact};
use sqlx::Connection;

/// The environment variable naming the PostgreSQL server the tests may use (an admin URL such as
/// `postgres://postgres@127.0.0.1:5432/postgres`).
pub const PG_ENV: &str = "ROOST_TEST_PG";

/// The prefix of every database the kit makes; `.ci/run` drops leftovers of killed runs by it.
pub const DB_PREFIX: &str = "roost_t_";

/// What a PostgreSQL test prints when it returns early because `ROOST_TEST_PG` is not set.
pub const SKIPPED: &str = "SKIPPED: ROOST_TEST_PG is not set, so this PostgreSQL test did not run";

/// The PostgreSQL admin URL from `ROOST_TEST_PG`, if set.
pub fn pg_url() -> Option<String> {
    std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty())
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `url` with its database (path) replaced by `db`, keeping any query string.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..].find('/').map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{db}", &base[..path]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database made for one test; dropping it removes the SQLite file (and its `-wal`/`-shm`) or
/// drops the PostgreSQL database (`WITH (FORCE)`, so servers still connected do not keep it).
#[derive(Debug)]
pub struct FreshDatabase {
    url: String,
    place: Place,
}

#[derive(Debug)]
enum Place {
    Sqlite(PathBuf),
    Postgres { admin: String, name: String },
}

impl FreshDatabase {
    /// A fresh, empty database on `backend`; `None` for PostgreSQL when `ROOST_TEST_PG` is not set.
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => Some(Self::postgres(&pg_url()?).await),
        }
    }

    /// A new SQLite file in the temporary directory (created by the first connection).
    pub fn sqlite() -> Self {
        let dir = std::env::temp_dir().join("roost-tests");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let file = dir.join(format!("{DB_PREFIX}{}.db", uuid::Uuid::now_v7().simple()));
        Self { url: format!("sqlite://{}", file.display()), place: Place::Sqlite(file) }
    }

    /// A new, uniquely named database `roost_t_…` on the PostgreSQL server at `admin`.
    ///
    /// It gets a linguistic collation (ICU `en-US`), as on most production servers, so SQL that
    /// only works under byte order (the `C` locale of many test servers) fails here too; servers
    /// without ICU get their default.
    pub async fn postgres(admin: &str) -> Self {
        let name = format!("{DB_PREFIX}{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| panic!("connect to {PG_ENV} ({}): {e}", redact(admin)));
        // `name` is our own `roost_t_<hex>`, never outside input.
        let icu = format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        );
        if sqlx::raw_sql(sqlx::AssertSqlSafe(icu)).execute(&mut conn).await.is_err() {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        }
        let _ = conn.close().await;
        Self { url: with_database(admin, &name), place: Place::Postgres { admin: admin.to_string(), name } }
    }

    /// The database's URL, for [`Store::connect`] or `roost serve --database-url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend it is on.
    pub fn backend(&self) -> Backend {
        match self.place {
            Place::Sqlite(_) => Backend::Sqlite,
            Place::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A store connected to it, with every migration applied.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.unwrap_or_else(|e| panic!("connect {}: {e}", redact(&self.url)));
        store.migrate().await.unwrap_or_else(|e| panic!("migrate {}: {e}", redact(&self.url)));
        store
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        match &self.place {
            Place::Sqlite(file) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut f = file.clone().into_os_string();
                    f.push(suffix);
                    let _ = std::fs::remove_file(f);
                }
            }
            Place::Postgres { admin, name } => {
                // Drop may run inside a runtime (even a current-thread one, or while unwinding),
                // which must not be blocked on: the DROP gets its own thread and runtime.
                let (admin, name) = (admin.clone(), name.clone());
                let dropped = std::thread::spawn(move || drop_pg_database(&admin, &name)).join();
                if let Ok(Err(e)) | Err(e) = dropped.map_err(|_| "the dropping thread panicked".to_string()) {
                    eprintln!("warning: test database {} was not dropped: {e}", self.url);
                }
            }
        }
    }
}

fn drop_pg_database(admin: &str, name: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(admin).await.map_err(|e| e.to_string())?;
        let dropped = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let _ = conn.close().await;
        dropped
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "x"), "postgres://h:5432/x");
    }
}
