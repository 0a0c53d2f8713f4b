//! The databases the runs use and the funded orgs, workspaces and keys in them.

use std::sync::Arc;

use anyhow::Context;
use roost_domain::{Catalog, IdKind};
use roost_ledger::{ActorRef, Command, Ledger, Op, Source};
use roost_store::{Actor, ApiKey, Ctx, NewOrg, NewSignup, Store};
use sqlx::AssertSqlSafe;
use tokio::sync::Semaphore;

use crate::engine::submit;
use crate::{FUNDS, now_ms};

/// One funded org: its wallet, workspaces and keys.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) org: String,
    /// `(key id, its workspace)`.
    pub(crate) keys: Vec<(String, String)>,
    pub(crate) owner: String,
}

/// A database made for one set of runs, removed by [`Db::remove`].
pub(crate) struct Db {
    pub(crate) store: Store,
    pub(crate) backend: &'static str,
    /// SQLite: the directory holding the file; PostgreSQL: `(admin URL, database name)`.
    sqlite_dir: Option<std::path::PathBuf>,
    pg: Option<(String, String)>,
}

pub(crate) async fn fresh_db(backend: &'static str, pg_admin: Option<&str>) -> anyhow::Result<Db> {
    let (url, sqlite_dir, pg) = match backend {
        "sqlite" => {
            let dir =
                std::env::temp_dir().join(format!("roost-bench-{}-{}", std::process::id(), IdKind::Org.generate()));
            std::fs::create_dir_all(&dir)?;
            (format!("sqlite://{}", dir.join("bench.db").display()), Some(dir), None)
        }
        _ => {
            let admin = pg_admin.context("--postgres URL")?;
            let name = format!("roost_bench_{}", IdKind::Org.generate().trim_start_matches("org_")).to_lowercase();
            let a = Store::connect(admin).await?;
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(a.pool()).await?;
            a.close().await;
            let (prefix, _) = admin.rsplit_once('/').context("the URL must end in /DBNAME")?;
            (format!("{prefix}/{name}"), None, Some((admin.to_string(), name)))
        }
    };
    let store = match Store::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            remove_files(sqlite_dir.as_deref(), pg.as_ref()).await;
            return Err(e.into());
        }
    };
    let db = Db { store, backend, sqlite_dir, pg };
    let made: anyhow::Result<()> = async {
        db.store.migrate().await?;
        sqlx::raw_sql(
            "CREATE TABLE naive_wallets (id TEXT PRIMARY KEY, balance BIGINT NOT NULL); \
             CREATE TABLE naive_charges (id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, amount BIGINT NOT NULL, at BIGINT NOT NULL); \
             CREATE TABLE floor_wallets (id TEXT PRIMARY KEY, balance BIGINT NOT NULL); \
             CREATE TABLE floor_charges (idem_key TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, amount BIGINT NOT NULL);",
        )
        .execute(db.store.pool())
        .await?;
        Ok(())
    }
    .await;
    if let Err(e) = made {
        db.remove().await;
        return Err(e);
    }
    Ok(db)
}

impl Db {
    /// The SQLite database file (`None` on PostgreSQL).
    pub(crate) fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self.sqlite_dir.as_ref().map(|d| d.join("bench.db"))
    }

    /// Closes the pool and drops the database (PostgreSQL) or deletes its files (SQLite).
    pub(crate) async fn remove(self) {
        self.store.close().await;
        remove_files(self.sqlite_dir.as_deref(), self.pg.as_ref()).await;
    }
}

async fn remove_files(sqlite_dir: Option<&std::path::Path>, pg: Option<&(String, String)>) {
    if let Some(dir) = sqlite_dir
        && let Err(e) = std::fs::remove_dir_all(dir)
    {
        eprintln!("could not remove {}: {e}", dir.display());
    }
    if let Some((admin, name)) = pg {
        let dropped = async {
            let a = Store::connect(admin).await?;
            let r = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(a.pool())
                .await;
            a.close().await;
            r.map(|_| ()).map_err(anyhow::Error::from)
        }
        .await;
        if let Err(e) = dropped {
            eprintln!("could not drop database {name}: {e:#}");
        }
    }
}

/// Makes `n` business orgs owned by one user, each with `workspaces` workspaces and `keys` API
/// keys (through the store calls the server uses), funds their wallets through the engine and the
/// baseline's and floor's tables alike.
pub(crate) async fn setup(
    db: &Db,
    ledger: &Ledger,
    n: usize,
    workspaces: usize,
    keys: usize,
) -> anyhow::Result<Vec<Target>> {
    let store = &db.store;
    let now = now_ms();
    let s = NewSignup {
        user_id: IdKind::User.generate(),
        email: format!("bench-{}@example.com", IdKind::User.generate()),
        name: "bench".into(),
        password_hash: "x".into(),
        org_id: IdKind::Org.generate(),
        org_name: "bench".into(),
        plan: "free".into(),
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "bench".into(),
        token_hash: IdKind::Org.generate(),
        session_expires_at: now + 86_400_000,
    };
    let owner = s.user_id.clone();
    store.signup(&s, &Ctx { actor: Actor::user(&owner), ip: None, now }).await?;
    // SQLite has one writer: in parallel, its setup would only wait on the lock.
    let parallel = if db.backend == "sqlite" { 1 } else { 8 };
    let gate = Arc::new(Semaphore::new(parallel));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (store, ledger, owner, gate) = (store.clone(), ledger.clone(), owner.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            one_org(&store, &ledger, &owner, workspaces, keys).await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await??);
    }
    for table in ["naive_wallets", "floor_wallets"] {
        for chunk in out.chunks(200) {
            let values: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
            let sql = format!("INSERT INTO {table} (id, balance) VALUES {}", values.join(", "));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for t in chunk {
                q = q.bind(t.org.clone()).bind(FUNDS);
            }
            q.execute(store.pool()).await?;
        }
    }
    Ok(out)
}

async fn one_org(
    store: &Store,
    ledger: &Ledger,
    owner: &str,
    workspaces: usize,
    keys: usize,
) -> anyhow::Result<Target> {
    let catalog = Catalog::builtin();
    let now = now_ms();
    let ctx = Ctx { actor: Actor::user(owner), ip: None, now };
    let o = NewOrg {
        id: IdKind::Org.generate(),
        name: "bench".into(),
        plan: "business".into(),
        owner_id: owner.into(),
        trial_ends_at: None,
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "ws 0".into(),
    };
    store.create_org(&o, &ctx).await?;
    let mut ws = vec![o.workspace_id.clone()];
    for i in 1..workspaces.max(1) {
        let id = IdKind::Workspace.generate();
        store.create_workspace(&o.id, &id, &format!("ws {i}"), &catalog, &ctx).await?;
        ws.push(id);
    }
    let mut key_ids = Vec::with_capacity(keys);
    for i in 0..keys.max(1) {
        let k = ApiKey {
            id: IdKind::Key.generate(),
            org_id: o.id.clone(),
            workspace_id: ws[i % ws.len()].clone(),
            name: format!("bench {i}"),
            prefix: "rsk_bench".into(),
            created_by: owner.into(),
            created_at: now,
            expires_at: None,
            spend_limit: None,
            revoked_at: None,
            rpm: None,
        };
        // A secret's hash is only looked up by authentication, which the benchmark does not do.
        store.create_key(&k, &format!("bench-{}-{}", k.id, IdKind::Key.generate()), &ctx).await?;
        key_ids.push((k.id, k.workspace_id));
    }
    let cmd = Command {
        org_id: o.id.clone(),
        actor: ActorRef::user(owner, None),
        op: Op::Grant {
            wallet: "credits".into(),
            source: Source::Topup,
            amount: FUNDS,
            expires_at: None,
            reason: None,
        },
        idem: None,
    };
    anyhow::ensure!(submit(ledger, cmd).await?, "funding {} was refused", o.id);
    Ok(Target { org: o.id, keys: key_ids, owner: owner.into() })
}
