//! The rows the store hands out.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::flag;

/// One page of a list, with the cursor of the next page if there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub use roost_domain::ledger::Actor;

/// A user account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub active_workspace_id: Option<String>,
    pub created_at: i64,
    /// When the user proved they receive mail at `email` (a verification or reset link).
    pub email_verified_at: Option<i64>,
    /// When two-factor (TOTP) was turned on; `None` while it is off.
    pub totp_enabled_at: Option<i64>,
}

impl User {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            password_hash: r.try_get("password_hash")?,
            active_workspace_id: r.try_get("active_workspace_id")?,
            created_at: r.try_get("created_at")?,
            email_verified_at: r.try_get("email_verified_at")?,
            totp_enabled_at: r.try_get("totp_enabled_at")?,
        })
    }
}

/// Columns of [`User`], for SELECTs that join `users u`.
macro_rules! user_cols {
    () => {
        "u.id, u.email, u.name, u.password_hash, u.active_workspace_id, u.created_at, u.email_verified_at, u.totp_enabled_at"
    };
}
pub(crate) use user_cols;

/// An organization: the billing entity.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub name: String,
    /// `personal` or `org`.
    pub kind: String,
    pub plan: String,
    pub owner_id: String,
    pub trial_used: bool,
    pub trial_ends_at: Option<i64>,
    pub plan_started_at: i64,
    pub created_at: i64,
    /// Members without two-factor may not use the org's workspaces.
    pub require_2fa: bool,
}

impl Org {
    /// Whether this is a user's personal org.
    pub fn is_personal(&self) -> bool {
        self.kind == "personal"
    }

    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            plan: r.try_get("plan")?,
            owner_id: r.try_get("owner_id")?,
            trial_used: flag(r, "trial_used")?,
            trial_ends_at: r.try_get("trial_ends_at")?,
            plan_started_at: r.try_get("plan_started_at")?,
            created_at: r.try_get("created_at")?,
            require_2fa: flag(r, "require_2fa")?,
        })
    }
}

/// Columns of [`Org`], for SELECTs that join `orgs o`.
macro_rules! org_cols {
    () => {
        "o.id, o.name, o.kind, o.plan, o.owner_id, o.trial_used, o.trial_ends_at, o.plan_started_at, o.created_at, o.require_2fa"
    };
}
pub(crate) use org_cols;

/// A workspace: the unit of isolation and attribution.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub primary: bool,
    pub personal: bool,
    pub created_at: i64,
}

impl Workspace {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("ws_id")?,
            org_id: r.try_get("ws_org_id")?,
            name: r.try_get("ws_name")?,
            primary: flag(r, "is_primary")?,
            personal: flag(r, "is_personal")?,
            created_at: r.try_get("ws_created_at")?,
        })
    }
}

/// Columns of [`Workspace`], for SELECTs that join `workspaces w`.
macro_rules! ws_cols {
    () => {
        "w.id AS ws_id, w.org_id AS ws_org_id, w.name AS ws_name, w.is_primary, w.is_personal, w.created_at AS ws_created_at"
    };
}
pub(crate) use ws_cols;

/// A member of an org or of a workspace, with the user's details.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
}

impl Member {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            user_id: r.try_get("user_id")?,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            role: r.try_get("role")?,
        })
    }
}

/// What a user is in an org, and in one of its workspaces.
#[derive(Debug, Clone)]
pub struct WorkspaceAccess {
    pub workspace: Workspace,
    pub org: Org,
    pub org_role: String,
    /// The user's own role in the workspace, if they were added to it.
    pub ws_role: Option<String>,
}

/// An invitation to join an org.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: String,
    /// `[{"workspace_id": …, "role": …}]` as JSON.
    pub workspaces: String,
    pub invited_by: String,
    /// `pending`, `accepted` or `revoked`.
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Invitation {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            email: r.try_get("email")?,
            role: r.try_get("role")?,
            workspaces: r.try_get("workspaces")?,
            invited_by: r.try_get("invited_by")?,
            status: r.try_get("status")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        })
    }
}

/// A workspace API key (never its secret).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub org_id: String,
    pub workspace_id: String,
    pub name: String,
    pub prefix: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub spend_limit: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The key's own requests per minute (never above its org plan's), if it has one.
    pub rpm: Option<i64>,
}

impl ApiKey {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            workspace_id: r.try_get("workspace_id")?,
            name: r.try_get("name")?,
            prefix: r.try_get("prefix")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            spend_limit: r.try_get("spend_limit")?,
            revoked_at: r.try_get("revoked_at")?,
            rpm: r.try_get("rpm")?,
        })
    }
}

/// Columns of [`ApiKey`], for SELECTs that join `api_keys k`.
macro_rules! key_cols {
    () => {
        "k.id, k.org_id, k.workspace_id, k.name, k.prefix, k.created_by, k.created_at, k.expires_at, k.spend_limit, k.revoked_at, k.rpm"
    };
}
pub(crate) use key_cols;

/// A thing a product keeps per workspace.
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: String,
    pub org_id: String,
    pub workspace_id: String,
    pub kind: String,
    pub name: String,
    pub created_by: String,
    pub created_at: i64,
}

impl Resource {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            workspace_id: r.try_get("workspace_id")?,
            kind: r.try_get("kind")?,
            name: r.try_get("name")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub org_id: String,
    pub at: i64,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub workspace_id: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    /// JSON object.
    pub detail: String,
}

impl AuditEvent {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            at: r.try_get("at")?,
            actor_type: r.try_get("actor_type")?,
            actor_id: r.try_get("actor_id")?,
            action: r.try_get("action")?,
            workspace_id: r.try_get("workspace_id")?,
            target_type: r.try_get("target_type")?,
            target_id: r.try_get("target_id")?,
            ip: r.try_get("ip")?,
            detail: r.try_get("detail")?,
        })
    }
}
