//! Fresh databases for tests: a SQLite file or a PostgreSQL database of their own, removed when
//! the guard drops, so a failing test cleans up as well as a passing one.
//!
//! A PostgreSQL test database is migrated by the admin of `ROOST_TEST_PG` (its owner), and
//! servers and stores connect to it as the restricted role [`APP_ROLE`] (neither superuser nor
//! owner, so row-level security binds it), granted what it needs by the same SQL `roost
//! setup-postgres` applies. [`FreshDatabase::url`] is that role's URL; [`FreshDatabase::admin_url`]
//! the owner's, for tests that look under the application or run migrations.

use std::path::PathBuf;

use roost_store::{Store, redact};
use sqlx::Connection;

/// The environment variable naming the PostgreSQL server the tests may use (an admin URL such as
/// `postgres://postgres@127.0.0.1:5432/postgres`).
pub const PG_ENV: &str = "ROOST_TEST_PG";

/// The prefix of every database the kit makes; `.ci/run` drops leftovers of killed runs by it.
pub const DB_PREFIX: &str = "roost_t_";

/// The restricted role every PostgreSQL test server and store connects as.
pub const APP_ROLE: &str = "roost_test_app";

/// [`APP_ROLE`]'s password (the test server may use password authentication).
const APP_PASSWORD: &str = "roost-test-app";

/// The advisory lock (in the admin's database) under which the role is made and granted: role
/// changes from parallel test processes would otherwise fail ("tuple concurrently updated").
const ROLE_LOCK: i64 = 7_262_114;

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

/// `url` with its user (and password) replaced.
pub fn with_user(url: &str, user: &str, password: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[start..];
    let host_at = rest.find('/').unwrap_or(rest.len());
    let host = match rest[..host_at].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    format!("{}{user}:{password}@{host}", &url[..start])
}

/// A database made for one test; dropping it removes the SQLite file (and its `-wal`/`-shm`) or
/// drops the PostgreSQL database (`WITH (FORCE)`, so servers still connected do not keep it).
#[derive(Debug)]
pub struct FreshDatabase {
    url: String,
    admin_url: String,
    place: Place,
}

#[derive(Debug)]
enum Place {
    Sqlite(PathBuf),
    Postgres { admin: String, name: String },
}

impl FreshDatabase {
    /// A fresh database on `backend` with every migration applied (by the owner); `None` for
    /// PostgreSQL when `ROOST_TEST_PG` is not set.
    pub async fn create(backend: Backend) -> Option<Self> {
        let db = Self::create_empty(backend).await?;
        db.migrate().await;
        Some(db)
    }

    /// A fresh, empty database on `backend` (for tests of migrations: run them with
    /// [`FreshDatabase::admin_url`]); on PostgreSQL the application role is already granted what
    /// the owner makes later.
    pub async fn create_empty(backend: Backend) -> Option<Self> {
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
        let url = format!("sqlite://{}", file.display());
        Self { admin_url: url.clone(), url, place: Place::Sqlite(file) }
    }

    /// A new, uniquely named, empty database `roost_t_…` on the PostgreSQL server at `admin`,
    /// with [`APP_ROLE`] made (once per server) and granted its privileges there.
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
        let admin_url = with_database(admin, &name);
        let db = Self {
            url: with_user(&admin_url, APP_ROLE, APP_PASSWORD),
            admin_url,
            place: Place::Postgres { admin: admin.to_string(), name },
        };
        // Made even on an empty database: default privileges then cover what the owner's
        // migrations create.
        db.grant(&mut conn).await;
        let _ = conn.close().await;
        db
    }

    /// Makes [`APP_ROLE`] (if missing) and grants it its privileges in this database, under an
    /// advisory lock of the admin's database (`conn`) shared by every test process.
    async fn grant(&self, conn: &mut sqlx::PgConnection) {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(ROLE_LOCK).execute(&mut *conn).await.expect("lock");
        let sql = roost_store::setup_sql(APP_ROLE, Some(APP_PASSWORD)).expect("setup sql");
        let granted = async {
            let mut db = sqlx::PgConnection::connect(&self.admin_url).await?;
            let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut db).await.map(|_| ());
            let _ = db.close().await;
            r
        }
        .await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(ROLE_LOCK).execute(&mut *conn).await;
        granted.unwrap_or_else(|e| panic!("grant {APP_ROLE} on {}: {e}", redact(&self.admin_url)));
    }

    /// Applies every migration as the owner, then the grants that need the tables to exist.
    pub async fn migrate(&self) {
        let store = self.admin_store().await;
        store.close().await;
        if let Place::Postgres { admin, .. } = &self.place {
            let mut conn = sqlx::PgConnection::connect(admin)
                .await
                .unwrap_or_else(|e| panic!("connect to {PG_ENV} ({}): {e}", redact(admin)));
            self.grant(&mut conn).await;
            let _ = conn.close().await;
        }
    }

    /// The database's URL as the application connects: for [`Store::connect`] or `roost serve
    /// --database-url` (on PostgreSQL as [`APP_ROLE`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's URL as its owner (the admin of `ROOST_TEST_PG`): for migrations and for
    /// looking under the application (row-level security does not bind the owner).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Which backend it is on.
    pub fn backend(&self) -> Backend {
        match self.place {
            Place::Sqlite(_) => Backend::Sqlite,
            Place::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A store connected as the application, every migration applied (by the owner).
    pub async fn store(&self) -> Store {
        self.migrate().await;
        let store = Store::connect(&self.url).await.unwrap_or_else(|e| panic!("connect {}: {e}", redact(&self.url)));
        store.migrate().await.unwrap_or_else(|e| panic!("migrate {}: {e}", redact(&self.url)));
        store
    }

    /// A store connected as the owner, with every migration applied.
    pub async fn admin_store(&self) -> Store {
        let url = &self.admin_url;
        let store = Store::connect(url).await.unwrap_or_else(|e| panic!("connect {}: {e}", redact(url)));
        store.migrate().await.unwrap_or_else(|e| panic!("migrate {}: {e}", redact(url)));
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

    #[test]
    fn with_user_replaces_only_the_credentials() {
        assert_eq!(with_user("postgres://postgres@h:5432/db", "app", "pw"), "postgres://app:pw@h:5432/db");
        assert_eq!(
            with_user("postgres://u:p@h/db?sslmode=disable", "app", "pw"),
            "postgres://app:pw@h/db?sslmode=disable"
        );
        assert_eq!(with_user("postgres://h/db", "app", "pw"), "postgres://app:pw@h/db");
    }
}
