//! `roost backup FILE` and `roost restore FILE`: SQLite online and consistent (`VACUUM INTO`, and
//! SQLite's backup API to restore); PostgreSQL through `pg_dump` / `pg_restore` (custom format).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use roost_store::{Store, redact};
use sqlx::Connection;

/// Writes a backup of the database at `url` to `file` while servers keep using it.
pub async fn backup(url: &str, file: &Path, pool: roost_store::PoolSettings) -> anyhow::Result<String> {
    if file.exists() {
        bail!("{} already exists: choose a new file", file.display());
    }
    if is_postgres(url) {
        run_tool(
            Command::new("pg_dump")
                .args(["--format=custom", "--no-owner", "--file"])
                .arg(file)
                .arg("--dbname")
                .arg(url),
        )?;
        return Ok(format!("backup written: {} (pg_dump custom format; restore with roost restore)\n", file.display()));
    }
    let store = Store::connect_with(url, pool).await?;
    let info = store.backup_sqlite(file).await;
    store.close().await;
    let info = info?;
    Ok(format!("backup written: {} (schema version {}, {} orgs)\n", file.display(), info.schema_version, info.orgs))
}

/// Replaces the database at `url` with the backup `file`; refuses a database that holds roost
/// data unless `force`.
pub async fn restore(url: &str, file: &Path, force: bool) -> anyhow::Result<String> {
    if !file.is_file() {
        bail!("{}: no such backup file", file.display());
    }
    if is_postgres(url) {
        let mut conn =
            sqlx::PgConnection::connect(url).await.with_context(|| format!("cannot connect to {}", redact(url)))?;
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'roost_migrations')",
        )
        .fetch_optional(&mut conn)
        .await?;
        let _ = conn.close().await;
        if live.unwrap_or(0) > 0 && !force {
            bail!(
                "{} already holds a roost database: stop the servers using it and add --force to replace it",
                redact(url)
            );
        }
        run_tool(
            Command::new("pg_restore")
                .args(["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error", "--dbname"])
                .arg(url)
                .arg(file),
        )?;
        return Ok(format!("restored {} into {}\n", file.display(), redact(url)));
    }
    let (url, file) = (url.to_string(), PathBuf::from(file));
    let info = tokio::task::spawn_blocking(move || roost_store::restore_sqlite(&url, &file, force)).await??;
    Ok(format!("restored: schema version {}, {} orgs\n", info.schema_version, info.orgs))
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// Runs a PostgreSQL client tool, naming what to install when it is missing.
fn run_tool(cmd: &mut Command) -> anyhow::Result<()> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = match cmd.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{name} is not installed: install the PostgreSQL client tools (Debian: postgresql-client, the server's major version or newer)"
        ),
        other => other.with_context(|| format!("cannot run {name}"))?,
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{name} failed ({}): {}", out.status, stderr.trim());
    }
    Ok(())
}
