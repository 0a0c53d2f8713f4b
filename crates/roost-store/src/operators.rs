//! Operator keys (`rso_`): whoever runs roost acts across every org through them. Made and
//! revoked against the database by `roost operator create-key|revoke-key`; only a hash is kept.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, Store, StoreError};

/// An operator key (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorKey {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn from_row(r: &AnyRow) -> Result<OperatorKey, sqlx::Error> {
    Ok(OperatorKey {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Store {
    /// Stores a new operator key by the hash of its secret.
    pub async fn create_operator_key(&self, id: &str, name: &str, hash: &str, now: i64) -> Result<OperatorKey> {
        sqlx::query("INSERT INTO operator_keys (id, name, key_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(name)
            .bind(hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(OperatorKey { id: id.into(), name: name.into(), created_at: now, revoked_at: None })
    }

    /// Revokes an operator key: the next request with it is refused. Not found if unknown or
    /// already revoked.
    pub async fn revoke_operator_key(&self, id: &str, now: i64) -> Result<()> {
        let n = sqlx::query("UPDATE operator_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// The live operator key whose secret hashes to `hash`. Read on every request: a revoked key
    /// fails on the very next one.
    pub async fn operator_by_hash(&self, hash: &str) -> Result<Option<OperatorKey>> {
        let r = sqlx::query(
            "SELECT id, name, created_at, revoked_at FROM operator_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().map(from_row).transpose()?)
    }

    /// Every operator key, newest first.
    pub async fn operator_keys(&self) -> Result<Vec<OperatorKey>> {
        let rows = sqlx::query("SELECT id, name, created_at, revoked_at FROM operator_keys ORDER BY id DESC")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?)
    }
}
