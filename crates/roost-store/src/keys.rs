//! Workspace API keys. Only SHA-256 hashes of secrets are stored, in `api_key_secrets`; a key
//! has one current secret and, during a rotation's grace period, the previous one too.

use crate::events::insert_event;
use crate::scope::{Owner, Scope};
use roost_domain::ledger::EventType;
use serde_json::json;
use sqlx::AnyConnection;
use sqlx::Row;

use crate::audit::{Entry, record};
use crate::models::key_cols;
use crate::{ApiKey, Ctx, Page, Result, Store, StoreError, finish_page, page};

/// A key as authentication finds it: the key and until when this secret is valid.
#[derive(Debug, Clone)]
pub struct KeyAuth {
    pub key: ApiKey,
    /// Set while an old secret is in its rotation grace period.
    pub secret_valid_until: Option<i64>,
}

impl Store {
    /// Stores a new key with the hash of its secret, if its creator may still use the workspace
    /// (checked under the org lock: a creator being removed at this moment gets NotFound).
    pub async fn create_key(&self, k: &ApiKey, secret_hash: &str, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&k.org_id)).await?;
        self.lock_org(&mut tx, &k.org_id).await?;
        let inserted = sqlx::query(
            "INSERT INTO api_keys (org_id, id, workspace_id, name, prefix, created_by, created_at, expires_at, spend_limit, rpm) \
             SELECT w.org_id, $2, w.id, $4, $5, $6, $7, $8, $9, $10 FROM workspaces w \
             WHERE w.org_id = $1 AND w.id = $3 AND ( \
               EXISTS (SELECT 1 FROM org_members m WHERE m.org_id = w.org_id AND m.user_id = $6 AND m.role IN ('owner', 'admin')) \
               OR EXISTS (SELECT 1 FROM workspace_members wm WHERE wm.org_id = w.org_id AND wm.workspace_id = w.id \
                          AND wm.user_id = $6 AND wm.role IN ('admin', 'member') \
                          AND EXISTS (SELECT 1 FROM org_members m2 WHERE m2.org_id = w.org_id AND m2.user_id = $6)))",
        )
        .bind(&k.org_id)
        .bind(&k.id)
        .bind(&k.workspace_id)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.created_by)
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.spend_limit)
        .bind(k.rpm)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT INTO api_key_secrets (secret_hash, org_id, key_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(secret_hash)
            .bind(&k.org_id)
            .bind(&k.id)
            .bind(ctx.now)
            .execute(&mut *tx)
            .await?;
        let detail = json!({"name": k.name, "prefix": k.prefix, "expires_at": k.expires_at, "spend_limit": k.spend_limit, "rpm": k.rpm});
        let e = Entry {
            org_id: &k.org_id,
            action: "key.created",
            workspace_id: Some(&k.workspace_id),
            target: Some(("key", &k.id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        let data = json!({"key_id": k.id, "name": k.name, "prefix": k.prefix, "created_by": k.created_by});
        insert_event(&mut tx, &k.org_id, EventType::KeyCreated, Some(&k.workspace_id), data, ctx.now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A workspace's keys that are not revoked, by id.
    pub async fn list_keys(&self, workspace_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<ApiKey>> {
        let mut c = self.scoped(Scope::Of(Owner::Workspace, workspace_id)).await?;
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_cols!(),
            " FROM api_keys k WHERE k.workspace_id = $1 AND k.revoked_at IS NULL AND k.id > $2 ORDER BY k.id LIMIT $3"
        ))
        .bind(workspace_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(ApiKey::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |k| k.id.clone()))
    }

    /// A key by id, revoked or not.
    pub async fn key_by_id(&self, id: &str) -> Result<Option<ApiKey>> {
        let mut c = self.scoped(Scope::Of(Owner::Key, id)).await?;
        let row = sqlx::query(concat!("SELECT ", key_cols!(), " FROM api_keys k WHERE k.id = $1"))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        c.done().await?;
        Ok(row.as_ref().map(ApiKey::from_row).transpose()?)
    }

    /// The live (not revoked, not expired) key whose secret hashes to `secret_hash`.
    pub async fn key_by_secret(&self, secret_hash: &str, now: i64) -> Result<Option<KeyAuth>> {
        let mut c = self.scoped(Scope::Of(Owner::KeySecret, secret_hash)).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            key_cols!(),
            ", s.valid_until FROM api_key_secrets s JOIN api_keys k ON k.id = s.key_id \
             JOIN orgs o ON o.id = k.org_id AND o.deleted_at IS NULL \
             WHERE s.secret_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2) \
             AND (s.valid_until IS NULL OR s.valid_until > $2)"
        ))
        .bind(secret_hash)
        .bind(now)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        row.map(|r| Ok(KeyAuth { key: ApiKey::from_row(&r)?, secret_valid_until: r.try_get("valid_until")? }))
            .transpose()
    }

    /// Gives a key a new secret. The old ones stay valid until `grace_until` (or stop now).
    pub async fn rotate_key(&self, key: &ApiKey, new_hash: &str, grace_until: Option<i64>, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&key.org_id)).await?;
        // Concurrent rotations of one key take turns: each ends the secrets before it.
        self.lock_org(&mut tx, &key.org_id).await?;
        let live: Option<i64> =
            sqlx::query_scalar("SELECT created_at FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
                .bind(&key.id)
                .fetch_optional(&mut *tx)
                .await?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        match grace_until {
            Some(until) => {
                sqlx::query(
                    "UPDATE api_key_secrets SET valid_until = $1 WHERE key_id = $2 AND (valid_until IS NULL OR valid_until > $1)",
                )
                .bind(until)
                .bind(&key.id)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM api_key_secrets WHERE key_id = $1").bind(&key.id).execute(&mut *tx).await?;
            }
        }
        sqlx::query("INSERT INTO api_key_secrets (secret_hash, org_id, key_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(new_hash)
            .bind(&key.org_id)
            .bind(&key.id)
            .bind(ctx.now)
            .execute(&mut *tx)
            .await?;
        self.notify_key_change(&mut tx, &key.id).await?;
        let detail = json!({"grace_until": grace_until});
        let e = Entry {
            org_id: &key.org_id,
            action: "key.rotated",
            workspace_id: Some(&key.workspace_id),
            target: Some(("key", &key.id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or clears) a live key's own rpm; other processes drop their cached copy of the key.
    /// NotFound if the key was revoked meanwhile.
    pub async fn set_key_rpm(&self, key: &ApiKey, rpm: Option<i64>, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&key.org_id)).await?;
        self.lock_org(&mut tx, &key.org_id).await?;
        let done = sqlx::query("UPDATE api_keys SET rpm = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(rpm)
            .bind(&key.org_id)
            .bind(&key.id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.notify_key_change(&mut tx, &key.id).await?;
        let e = Entry {
            org_id: &key.org_id,
            action: "key.updated",
            workspace_id: Some(&key.workspace_id),
            target: Some(("key", &key.id)),
            detail: json!({"rpm": rpm}),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes a key: every secret of it stops working. NotFound if it was already revoked.
    pub async fn revoke_key(&self, key: &ApiKey, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&key.org_id)).await?;
        self.lock_org(&mut tx, &key.org_id).await?;
        let revoked = self.revoke_keys(&mut tx, &key.org_id, std::slice::from_ref(&key.id), ctx).await?;
        if revoked.is_empty() {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Revokes keys and forgets their secrets, auditing each key actually revoked here (a key
    /// revoked concurrently is skipped). Returns the ids revoked.
    pub(crate) async fn revoke_keys(
        &self,
        tx: &mut AnyConnection,
        org_id: &str,
        ids: &[String],
        ctx: &Ctx,
    ) -> Result<Vec<String>> {
        let mut revoked = Vec::new();
        for id in ids {
            let workspace: Option<String> = sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL RETURNING workspace_id",
            )
            .bind(ctx.now)
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(workspace) = workspace else { continue };
            sqlx::query("DELETE FROM api_key_secrets WHERE key_id = $1").bind(id).execute(&mut *tx).await?;
            self.notify_key_change(tx, id).await?;
            let e = Entry {
                org_id,
                action: "key.revoked",
                workspace_id: Some(&workspace),
                target: Some(("key", id)),
                detail: json!({}),
            };
            record(tx, ctx, e).await?;
            insert_event(tx, org_id, EventType::KeyRevoked, Some(&workspace), json!({"key_id": id}), ctx.now).await?;
            revoked.push(id.clone());
        }
        Ok(revoked)
    }

    /// Revokes the keys `user_id` created in workspaces of `org_id` they may no longer use: a key
    /// acts with its creator's standing, so it must not outlive it. Returns the ids revoked.
    pub(crate) async fn revoke_lost_keys(
        &self,
        tx: &mut AnyConnection,
        org_id: &str,
        user_id: &str,
        ctx: &Ctx,
    ) -> Result<Vec<String>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT k.id FROM api_keys k WHERE k.org_id = $1 AND k.created_by = $2 AND k.revoked_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM org_members m WHERE m.org_id = k.org_id AND m.user_id = $2 AND m.role IN ('owner', 'admin')) \
             AND NOT EXISTS (SELECT 1 FROM workspace_members wm WHERE wm.org_id = k.org_id AND wm.workspace_id = k.workspace_id \
                             AND wm.user_id = $2 AND wm.role IN ('admin', 'member'))",
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        self.revoke_keys(tx, org_id, &ids, ctx).await
    }

    /// Queues the cross-process notice that a key changed (PostgreSQL), inside `tx`.
    pub(crate) async fn notify_key_change(&self, tx: &mut AnyConnection, key_id: &str) -> Result<()> {
        if let Some(sql) = self.dialect.notify_key_change() {
            sqlx::query(sql).bind(key_id).execute(&mut *tx).await?;
        }
        Ok(())
    }
}
