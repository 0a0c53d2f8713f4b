//! Resources: things a product keeps per workspace.

use serde_json::json;

use roost_domain::Catalog;

use crate::audit::{Entry, record};
use crate::plans::plan_in_tx;
use crate::scope::{Owner, Scope};
use crate::workspaces::workspace_exists;
use crate::{Ctx, Limit, Page, Resource, Result, Store, StoreError, Workspace, finish_page, page};

impl Store {
    /// Creates a resource in a workspace that still exists, unless the org's plan allows no more
    /// of its kind (both decided under the org lock).
    pub async fn create_resource(&self, r: &Resource, catalog: &Catalog, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&r.org_id)).await?;
        self.lock_org(&mut tx, &r.org_id).await?;
        let quota = plan_in_tx(&mut tx, &r.org_id, catalog).await?.resource_quotas.get(&r.kind).copied();
        check_quota(&mut tx, &r.org_id, &r.kind, quota).await?;
        let inserted = sqlx::query(
            "INSERT INTO resources (org_id, id, workspace_id, kind, name, created_by, created_at) \
             SELECT org_id, $2, id, $4, $5, $6, $7 FROM workspaces WHERE org_id = $1 AND id = $3",
        )
        .bind(&r.org_id)
        .bind(&r.id)
        .bind(&r.workspace_id)
        .bind(&r.kind)
        .bind(&r.name)
        .bind(&r.created_by)
        .bind(r.created_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let detail = json!({"kind": r.kind, "name": r.name});
        let e = Entry {
            org_id: &r.org_id,
            action: "resource.created",
            workspace_id: Some(&r.workspace_id),
            target: Some(("resource", &r.id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A workspace's resources, by id.
    pub async fn list_resources(&self, workspace_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Resource>> {
        let mut c = self.scoped(Scope::Of(Owner::Workspace, workspace_id)).await?;
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(concat!(
            "SELECT id, org_id, workspace_id, kind, name, created_by, created_at FROM resources",
            " WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(workspace_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(Resource::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |r| r.id.clone()))
    }

    /// A resource by id.
    pub async fn resource_by_id(&self, id: &str) -> Result<Option<Resource>> {
        let mut c = self.scoped(Scope::Of(Owner::Resource, id)).await?;
        let row = sqlx::query(concat!(
            "SELECT id, org_id, workspace_id, kind, name, created_by, created_at FROM resources",
            " WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        Ok(row.as_ref().map(Resource::from_row).transpose()?)
    }

    /// Deletes a resource.
    pub async fn delete_resource(&self, r: &Resource, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&r.org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, &r.org_id).await?;
        sqlx::query("DELETE FROM resources WHERE org_id = $1 AND id = $2")
            .bind(&r.org_id)
            .bind(&r.id)
            .execute(&mut *tx)
            .await?;
        let detail = json!({"kind": r.kind, "name": r.name});
        let e = Entry {
            org_id: &r.org_id,
            action: "resource.deleted",
            workspace_id: Some(&r.workspace_id),
            target: Some(("resource", &r.id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a resource into another workspace, possibly of another org, within that org's
    /// `quota` for the resource's kind.
    pub async fn transfer_resource(&self, r: &Resource, to: &Workspace, catalog: &Catalog, ctx: &Ctx) -> Result<()> {
        // The row leaves one org for the other: the scope names both.
        let orgs = [r.org_id.clone(), to.org_id.clone()];
        let mut tx = self.write_in(Scope::Orgs(&orgs)).await?;
        self.lock_org(&mut tx, &to.org_id).await?;
        if to.org_id != r.org_id {
            let quota = plan_in_tx(&mut tx, &to.org_id, catalog).await?.resource_quotas.get(&r.kind).copied();
            check_quota(&mut tx, &to.org_id, &r.kind, quota).await?;
        }
        workspace_exists(&mut tx, &to.org_id, &to.id).await?;
        let done = sqlx::query("UPDATE resources SET org_id = $1, workspace_id = $2 WHERE org_id = $3 AND id = $4")
            .bind(&to.org_id)
            .bind(&to.id)
            .bind(&r.org_id)
            .bind(&r.id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let detail =
            json!({"from_workspace": r.workspace_id, "to_workspace": to.id, "from_org": r.org_id, "to_org": to.org_id});
        let orgs: Vec<&str> = if to.org_id == r.org_id { vec![&to.org_id] } else { vec![&r.org_id, &to.org_id] };
        for org_id in orgs {
            let e = Entry {
                org_id,
                action: "resource.transferred",
                workspace_id: Some(&to.id),
                target: Some(("resource", &r.id)),
                detail: detail.clone(),
            };
            record(&mut tx, ctx, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Refuses one more resource of `kind` in `org_id` when the org already has `quota` of them.
async fn check_quota(tx: &mut sqlx::AnyConnection, org_id: &str, kind: &str, quota: Option<u32>) -> Result<()> {
    let Some(q) = quota else { return Ok(()) };
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM resources WHERE org_id = $1 AND kind = $2")
        .bind(org_id)
        .bind(kind)
        .fetch_one(&mut *tx)
        .await?;
    if n >= i64::from(q) { Err(StoreError::Limit(Limit::ResourceQuota(kind.to_string()))) } else { Ok(()) }
}
