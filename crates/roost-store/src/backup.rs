//! SQLite backups and restores. A backup is taken online: `VACUUM INTO` reads one snapshot of the
//! database (a read transaction, which in WAL mode never blocks the writer) and writes it to a new
//! file, WAL content included — unlike copying `roost.db`, which misses what is still in the WAL.
//! A restore goes through SQLite's backup API, page by page, under the database's locks.
//! PostgreSQL's backups are `pg_dump`'s job (see the `roost` binary and docs/operations.md).

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Result, Store, StoreError, ledger};

/// What a backup file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    /// The newest migration applied to it.
    pub schema_version: i64,
    /// Its organizations.
    pub orgs: i64,
}

impl Store {
    /// Writes a consistent copy of this SQLite database to `file` (which must not exist) while the
    /// server keeps serving, then checks the copy.
    pub async fn backup_sqlite(&self, file: &Path) -> Result<BackupInfo> {
        if self.backend() != "sqlite" {
            return Err(StoreError::Setup(
                "roost backup writes SQLite databases; back PostgreSQL up with pg_dump".into(),
            ));
        }
        if file.exists() {
            return Err(StoreError::Setup(format!("{} already exists: choose a new file", file.display())));
        }
        let target = file.to_str().ok_or_else(|| StoreError::Setup("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1").bind(target).execute(&self.pool).await?;
        let f = file.to_path_buf();
        tokio::task::spawn_blocking(move || inspect(&f))
            .await
            .map_err(|e| StoreError::Setup(format!("checking the backup: {e}")))?
    }
}

/// Checks that `file` is a whole roost SQLite database and says what it holds.
pub fn inspect(file: &Path) -> Result<BackupInfo> {
    let bad = |why: String| StoreError::Setup(format!("{} is not a usable roost backup: {why}", file.display()));
    if !file.is_file() {
        return Err(bad("no such file".into()));
    }
    let c = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| bad(e.to_string()))?;
    let check: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| bad(e.to_string()))?;
    if check != "ok" {
        return Err(bad(format!("integrity check: {check}")));
    }
    let info = read_info(&c).map_err(|e| bad(e.to_string()))?;
    info.ok_or_else(|| bad("it has no roost schema".into()))
}

/// The schema version and org count of a roost database; `None` when it has no roost schema.
fn read_info(c: &Connection) -> rusqlite::Result<Option<BackupInfo>> {
    let has_schema: Option<String> = c
        .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'roost_migrations'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if has_schema.is_none() {
        return Ok(None);
    }
    let schema_version: Option<i64> = c.query_row("SELECT MAX(version) FROM roost_migrations", [], |r| r.get(0))?;
    let orgs: i64 = c
        .query_row("SELECT COUNT(*) FROM orgs", [], |r| r.get(0))
        .optional()
        .map(Option::unwrap_or_default)
        .unwrap_or(0);
    Ok(schema_version.map(|schema_version| BackupInfo { schema_version, orgs }))
}

/// Replaces the SQLite database at `url` (`sqlite://FILE`) with the backup `file`. A database
/// that already holds roost data is replaced only with `force` (stop every roost server using it
/// first: a running server keeps state in memory).
pub fn restore_sqlite(url: &str, file: &Path, force: bool) -> Result<BackupInfo> {
    let target = ledger::file_of(url)
        .ok_or_else(|| StoreError::Setup(format!("cannot restore into {url}: not a SQLite database file")))?;
    let info = inspect(file)?;
    let mut dst = Connection::open(&target)
        .map_err(|e| StoreError::Setup(format!("cannot open the SQLite database {target}: {e}")))?;
    dst.busy_timeout(std::time::Duration::from_secs(10))?;
    if let Some(live) = read_info(&dst)?
        && !force
    {
        return Err(StoreError::Setup(format!(
            "{target} already holds a roost database (schema version {}, {} orgs): stop the servers using it and add --force to replace it",
            live.schema_version, live.orgs
        )));
    }
    let src = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // All pages in one step, under the destination's write lock: never a mix of old and new.
    let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
    match b.step(-1)? {
        rusqlite::backup::StepResult::Done => {}
        other => {
            return Err(StoreError::Setup(format!(
                "the restore into {target} did not finish ({other:?}): is a server still using it?"
            )));
        }
    }
    drop(b);
    Ok(info)
}
