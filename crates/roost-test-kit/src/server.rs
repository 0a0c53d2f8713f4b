//! The real roost server on 127.0.0.1:0, in the test's process, on a fresh database.

use std::sync::Arc;

use roost::Client;
use roost_server::{ManualClock, Settings};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::db::{Backend, FreshDatabase};

/// A running server; stopped when dropped, and its database removed once no replica uses it.
pub struct TestServer {
    pub base: String,
    /// An unauthenticated client.
    pub client: Client,
    /// The server's clock: move it with `clock.advance(ms)`.
    pub clock: Arc<ManualClock>,
    pub database_url: String,
    /// The database's owner URL (the same as `database_url` on SQLite): for looking under the
    /// application, which on PostgreSQL row-level security confines to its scope.
    pub admin_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Dropped after the server stops (fields drop after `Drop::drop`), shared with replicas.
    database: Arc<FreshDatabase>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Connections each test server may open: with the key listener and the kit's admin connection,
/// a test with a server and a replica holds at most 2 × (5 + 1) + 1 = 13 PostgreSQL connections.
pub const TEST_DB_CONNECTIONS: u32 = 5;

/// Settings for tests: cheap password hashing, the built-in plans, a small pool, and a patient
/// acquire timeout (the test machine is shared and slow; the fault tests set their own).
pub fn test_settings(database_url: String) -> Settings {
    Settings {
        database_url,
        password_hash_memory_kib: 64,
        password_hash_iterations: 1,
        db_max_connections: Some(TEST_DB_CONNECTIONS),
        db_acquire_timeout_ms: 10_000,
        ..Settings::default()
    }
}

impl TestServer {
    /// Starts a server on `backend`; `None` when that backend is PostgreSQL and `ROOST_TEST_PG`
    /// is not set (the caller then reports the test as skipped).
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    /// Like [`TestServer::start`], letting the test adjust the settings first.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<Self> {
        let database = Arc::new(FreshDatabase::create(backend).await?);
        Some(Self::boot(database, adjust).await)
    }

    /// A second server on the same database as `self` (a replica, as another process would be).
    pub async fn replica(&self) -> Self {
        Self::boot(self.database.clone(), |_| {}).await
    }

    /// A replica whose settings are adjusted by `adjust` first.
    pub async fn replica_with(&self, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::boot(self.database.clone(), adjust).await
    }

    /// Which backend the server runs on.
    pub fn backend(&self) -> Backend {
        self.database.backend()
    }

    async fn boot(database: Arc<FreshDatabase>, adjust: impl FnOnce(&mut Settings)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut settings = test_settings(database.url().to_string());
        // Links and redirects (single sign-on's callback) point at this very server.
        settings.public_url = base.clone();
        adjust(&mut settings);
        // A test may point the server elsewhere (a relay, another file): follow it.
        let database_url = settings.database_url.clone();
        let admin_url =
            if database_url == database.url() { database.admin_url().to_string() } else { database_url.clone() };
        let clock = Arc::new(ManualClock::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let c: Arc<dyn roost_server::Clock> = clock.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = roost_server::serve_with_clock(settings, listener, shutdown, c).await {
                eprintln!("test server failed: {e:#}");
            }
        });
        let client = Client::new(&base);
        for _ in 0..200 {
            if client.get("/healthz").await.is_ok_and(|r| r.status == 200) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        Self { base, client, clock, database_url, admin_url, stop: Some(stop), task: Some(task), database }
    }

    /// Checks the ledger's invariants for every wallet in the server's database (see
    /// [`crate::ledger::check`]); panics listing every broken one.
    pub async fn assert_ledger(&self) {
        crate::ledger::assert_ledger(&self.admin_url).await;
    }

    /// Signs a new user up; returns a client acting as them and the signup body.
    pub async fn signup(&self, name: &str) -> (Client, Value) {
        let email = format!("{}-{}@example.com", name.to_lowercase(), roost_domain::IdKind::User.generate());
        let r = self
            .client
            .post("/v1/signup", &json!({"email": email, "password": "correct horse battery", "name": name}))
            .await
            .expect("signup request");
        assert_eq!(r.status, 201, "signup failed: {:?}", r.body);
        (self.client.with_token(r.str("token")), r.body)
    }

    /// Creates an org on `plan` owned by `owner`; returns `(org_id, primary_workspace_id)`.
    pub async fn org(&self, owner: &Client, name: &str, plan: &str) -> (String, String) {
        let r = owner.post("/v1/orgs", &json!({"name": name, "plan": plan})).await.expect("create org");
        assert_eq!(r.status, 201, "create org failed: {:?}", r.body);
        (
            r.body["org"]["id"].as_str().unwrap_or("").to_string(),
            r.body["workspace"]["id"].as_str().unwrap_or("").to_string(),
        )
    }

    /// Invites `member` (by the email in their signup body) to `org` with `role`, and accepts.
    pub async fn add_member(&self, owner: &Client, org: &str, member: &Client, member_signup: &Value, role: &str) {
        let email = member_signup["user"]["email"].as_str().unwrap_or("");
        let inv = owner
            .post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": email, "role": role}))
            .await
            .expect("invite");
        assert_eq!(inv.status, 201, "invite failed: {:?}", inv.body);
        let acc = member.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.expect("accept");
        assert_eq!(acc.status, 200, "accept failed: {:?}", acc.body);
    }
}

/// For each `async fn NAME(s: TestServer)` listed, generates a module `NAME` with two tests,
/// `NAME::sqlite` and `NAME::postgres`. The PostgreSQL one says plainly that it was skipped when
/// `ROOST_TEST_PG` is not set.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let s = $crate::TestServer::start($crate::Backend::Sqlite).await.expect("sqlite server");
                    super::$name(s).await;
                }

                $crate::pg_test! {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match $crate::TestServer::start($crate::Backend::Postgres).await {
                        Some(s) => super::$name(s).await,
                        None => eprintln!("{}", $crate::SKIPPED),
                    }
                }
                }
            }
        )*
    };
}

/// Like [`both_backends!`], with the server's settings adjusted by `$adjust` (a `fn(&mut Settings)`).
#[macro_export]
macro_rules! both_backends_with {
    ($($name:ident => $adjust:path),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let s = $crate::TestServer::start_with($crate::Backend::Sqlite, $adjust)
                        .await
                        .expect("sqlite server");
                    super::$name(s).await;
                }

                $crate::pg_test! {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match $crate::TestServer::start_with($crate::Backend::Postgres, $adjust).await {
                        Some(s) => super::$name(s).await,
                        None => eprintln!("{}", $crate::SKIPPED),
                    }
                }
                }
            }
        )*
    };
}

/// Like [`both_backends!`], for scenarios that only exist on PostgreSQL (several processes on one
/// database): generates `NAME::postgres`, which says plainly that it was skipped without
/// `ROOST_TEST_PG`.
#[macro_export]
macro_rules! postgres_only {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                $crate::pg_test! {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match $crate::TestServer::start($crate::Backend::Postgres).await {
                        Some(s) => super::$name(s).await,
                        None => eprintln!("{}", $crate::SKIPPED),
                    }
                }
                }
            }
        )*
    };
}

/// Marks a PostgreSQL test (`pg_test! { #[tokio::test] async fn name() { … } }`, or around a
/// `proptest! { … }` holding one test): built as is
/// when `ROOST_TEST_PG` was set at build time, and `#[ignore]`d otherwise, so that nextest reports
/// it as skipped rather than passed. The test should still return early (printing [`SKIPPED`])
/// when [`pg_url`] is `None`, for `--run-ignored all`.
///
/// [`SKIPPED`]: crate::SKIPPED
/// [`pg_url`]: crate::pg_url
#[cfg(roost_test_pg)]
#[macro_export]
macro_rules! pg_test {
    ($($item:tt)*) => { $($item)* };
}

/// Marks a PostgreSQL test: `ROOST_TEST_PG` was not set at build time, so it is `#[ignore]`d
/// (nextest reports it as skipped).
#[cfg(not(roost_test_pg))]
#[macro_export]
macro_rules! pg_test {
    (proptest! { #![$($cfg:tt)*] $(#[$($m:tt)*])* fn $($rest:tt)* }) => {
        proptest! {
            #![$($cfg)*]
            $(#[$($m)*])*
            #[ignore = "ROOST_TEST_PG is not set: a PostgreSQL test"]
            fn $($rest)*
        }
    };
    ($(#[$m:meta])* async fn $($rest:tt)*) => {
        $(#[$m])*
        #[ignore = "ROOST_TEST_PG is not set: a PostgreSQL test"]
        async fn $($rest)*
    };
    ($(#[$m:meta])* fn $($rest:tt)*) => {
        $(#[$m])*
        #[ignore = "ROOST_TEST_PG is not set: a PostgreSQL test"]
        fn $($rest)*
    };
}
