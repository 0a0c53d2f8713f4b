#![doc = include_str!("../README.md")]

mod audit;
mod audit_chain;
mod backup;
mod billing;
mod connect;
mod dialect;
mod domains;
mod events;
mod identity;
mod invitations;
mod keys;
mod ledger;
mod mail;
mod members;
mod models;
mod notices;
mod oidc;
mod operators;
mod orgs;
mod payments;
mod plans;
mod records;
mod resources;
mod role;
mod scope;
mod sessions;
mod two_factor;
mod users;
mod webhook_delivery;
mod webhooks;
mod workspaces;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row, Transaction};

pub use audit::AuditFilter;
pub use audit_chain::{BadLink, ChainReport};
pub use backup::{BackupInfo, inspect as inspect_backup, restore_sqlite};
pub use billing::{AdminOrg, Invoice, NewPurchase, PlanChange, Purchase, PurchaseMade};
pub use connect::{PoolSettings, is_transient};
pub use dialect::{Dialect, Migration, Postgres, Sqlite};
pub use domains::OrgDomain;
pub use identity::{LINKS_PER_HOUR, NewUserToken, TokenPurpose};
pub use invitations::{Accepted, NewInvitation};
pub use keys::KeyAuth;
pub use ledger::*;
pub use mail::{MailStatus, NewMail, OutboxMail};
pub use models::*;
pub use notices::{AlertRecipient, KeyedMail};
pub use oidc::OidcLogin;
pub use operators::OperatorKey;
pub use orgs::NewOrg;
pub use payments::{Intake, PaymentReport};
pub use records::{HistoryEntry, HistoryFilter, NewHistory, StateDoc, StateMeta};
pub use role::{DEFAULT_ROLE, DbRole, setup_sql, valid_role_name};
pub use roost_domain::plans::Limit;
pub use sessions::{Session, SessionMeta, SessionUser};
pub use two_factor::TotpState;
pub use users::{Membership, NewSignup};
pub use webhook_delivery::{AfterAttempt, Attempt};
pub use webhooks::{Delivery, Webhook, WebhookPatch};

/// A rule that only the database, inside the change's own transaction, can decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the owner cannot be removed or demoted; transfer ownership first")]
    OwnerCannotBeRemoved,
    #[error("the primary and personal workspaces cannot be deleted")]
    WorkspaceProtected,
    #[error("the user is not a member of the organization")]
    NotOrgMember,
    #[error("the invitation is used, revoked or expired")]
    InvitationInvalid,
    #[error("the invitation was sent to another email address")]
    InvitationEmailMismatch,
    #[error("the target workspace is not in the same organization")]
    CrossOrg,
    #[error("only the current owner can do this")]
    NotOwner,
    #[error("this organization already had its trial")]
    TrialUsed,
    #[error("your role does not allow this (any more)")]
    NotAllowed,
    #[error("the link is invalid, expired or already used")]
    TokenInvalid,
    #[error("two-factor is already on; turn it off first")]
    TotpEnabled,
    #[error("no two-factor enrolment to confirm; start one with POST /v1/me/totp")]
    TotpNotStarted,
    #[error("this domain is already claimed (by this organization, or verified by another)")]
    DomainTaken,
    #[error("the document's version is not the one the condition names (If-Match / If-None-Match)")]
    VersionConflict,
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyConflict,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing does not exist (or belongs to someone the caller may not see).
    #[error("not found")]
    NotFound,
    /// A business rule refused the change.
    #[error(transparent)]
    Rule(#[from] Rule),
    /// A plan limit refused the change.
    #[error("plan limit reached: {}", .0.name())]
    Limit(Limit),
    /// The database failed; the change did not happen.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The SQLite ledger writer's database call failed; the batch did not happen.
    #[error("database error: {0}")]
    Writer(#[from] rusqlite::Error),
    /// The configuration or the database is not usable.
    #[error("{0}")]
    Setup(String),
}

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Who did something and from where: written into every audit event of a change.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub actor: Actor,
    pub ip: Option<String>,
    /// Unix milliseconds, from the server's clock.
    pub now: i64,
}

/// The storage of one roost deployment.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: &'static dyn Dialect,
    /// The ledger's writer of its own, where the backend has one ([`Dialect::own_ledger_writer`]).
    writer: Option<std::sync::Arc<ledger::Writer>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.dialect.name()).finish()
    }
}

/// Runs `sql` every [`dialect::CHECKPOINT_EVERY`] until the pool is closed. A failed round is
/// only logged: the next one tries again.
async fn checkpoint(pool: AnyPool, sql: &'static str) {
    loop {
        tokio::time::sleep(dialect::CHECKPOINT_EVERY).await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query(sql).execute(&pool).await {
            tracing::debug!(error = %e, "background checkpoint");
        }
    }
}

impl Store {
    /// The same store with ledger batches committed through the pool (sqlx) even where the
    /// backend has a writer of its own: for benchmarks that compare the two.
    pub fn with_pool_writer(mut self) -> Self {
        self.writer = None;
        self
    }

    /// The backend's name: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.dialect.name()
    }

    /// The connection pool, for the ledger engine and for tests.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies every embedded migration not yet applied, in order, each in its own transaction.
    /// Safe to run from several processes at once. Returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        self.migrate_up_to(i64::MAX).await
    }

    /// [`Store::migrate`], stopping after version `last`: for tests of upgrades from an older schema.
    pub async fn migrate_up_to(&self, last: i64) -> Result<Vec<i64>> {
        // Nothing to do: say so without a write lock or DDL, which the application's role (on
        // PostgreSQL neither owner nor allowed to create) could not take.
        let done: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM roost_migrations").fetch_all(&self.pool).await.unwrap_or_default();
        let newest = self.newest_migration();
        let current = done.iter().copied().max();
        let wanted = self.dialect.migrations().iter().take_while(|m| m.version <= last);
        if current.is_some_and(|v| v <= newest) && wanted.clone().all(|m| done.contains(&m.version)) {
            return Ok(Vec::new());
        }
        match self.apply_migrations(last).await {
            Err(StoreError::Db(sqlx::Error::Database(e))) if e.code().as_deref() == Some("42501") => {
                Err(StoreError::Setup(format!(
                    "the database schema is at version {}, this roost needs version {newest}, and this database role may not change the schema ({}): run `roost migrate` with the owner's database URL, then start roost again",
                    current.unwrap_or(0),
                    e.message()
                )))
            }
            other => other,
        }
    }

    async fn apply_migrations(&self, last: i64) -> Result<Vec<i64>> {
        let mut applied = Vec::new();
        // One transaction for the whole run: concurrent migrators wait on the lock, then find
        // the work done.
        let mut tx = self.write().await?;
        if let Some(lock) = self.dialect.migration_lock() {
            sqlx::raw_sql(lock).execute(&mut *tx).await?;
        }
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS roost_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM roost_migrations").fetch_one(&mut *tx).await?;
        if let Some(v) = newest.filter(|&v| v > self.newest_migration()) {
            return Err(StoreError::Setup(format!(
                "the database was migrated by a newer roost (schema version {v}; this roost knows up to {}): run that newer roost, or restore a backup taken before the upgrade",
                self.newest_migration()
            )));
        }
        for m in self.dialect.migrations().iter().take_while(|m| m.version <= last) {
            let done: Option<i64> = sqlx::query_scalar("SELECT version FROM roost_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
            if m.version == audit_chain::CHAIN_MIGRATION {
                audit_chain::chain_existing(&mut tx).await?;
            }
            sqlx::query("INSERT INTO roost_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tracing::info!(version = m.version, name = m.name, "applying migration");
            applied.push(m.version);
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Starts a write transaction holding the backend's write lock.
    async fn write(&self) -> Result<Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin_with(self.dialect.begin_write()).await?)
    }

    /// Serialises changes to one org within a write transaction (a no-op where the transaction
    /// already holds the database's only write lock).
    async fn lock_org(&self, tx: &mut AnyConnection, org_id: &str) -> Result<()> {
        if let Some(sql) = self.dialect.lock_org() {
            sqlx::query(sql).bind(org_id).execute(&mut *tx).await?;
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[expect(clippy::disallowed_methods, reason = "applied_at of migrations is bookkeeping, not ledger time")]
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Hides a password in a database URL, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Reads a 0/1 flag.
fn flag(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

/// Clamps a page size and turns an optional cursor into a comparable string.
fn page(limit: u32, cursor: Option<&str>) -> (i64, String) {
    (i64::from(limit.clamp(1, 500)) + 1, cursor.unwrap_or("").to_string())
}

/// Cuts a fetched page (fetched with one extra row) and names the next cursor.
pub(crate) fn finish_page<T>(mut items: Vec<T>, fetch: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(fetch - 1).unwrap_or(0);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// Counts rows with `sql` (one `$1` parameter).
async fn count(tx: &mut AnyConnection, sql: &'static str, p: &str) -> Result<u32> {
    let n: i64 = sqlx::query_scalar(sql).bind(p).fetch_one(&mut *tx).await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://roost.db"), "sqlite://roost.db");
    }
}
