//! What the API returns: the JSON shapes of API.md, each built from a store row.

use roost_domain::time::to_rfc3339;
use roost_store::{ApiKey, AuditEvent, Invitation, Member, Org, Page, Resource, User, Workspace};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A list page: `{items, next_cursor}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// Converts a store page.
    pub fn from_page<U>(p: Page<U>, f: impl Fn(U) -> T) -> Self {
        Self { items: p.items.into_iter().map(f).collect(), next_cursor: p.next_cursor }
    }
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self { id: u.id.clone(), email: u.email.clone(), name: u.name.clone() }
    }
}

/// An organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    /// `personal` or `org`.
    pub kind: String,
    pub plan: String,
    pub owner_id: String,
    /// The caller's role, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// End of the trial, if the org is on one.
    pub trial_ends_at: Option<String>,
    pub created_at: String,
    /// Members without two-factor may not use the org's workspaces.
    pub require_2fa: bool,
}

impl OrgView {
    /// The org as seen by a member with `role`.
    pub fn new(o: &Org, role: Option<&str>) -> Self {
        Self {
            id: o.id.clone(),
            name: o.name.clone(),
            kind: o.kind.clone(),
            plan: o.plan.clone(),
            owner_id: o.owner_id.clone(),
            role: role.map(str::to_string),
            trial_ends_at: o.trial_ends_at.map(to_rfc3339),
            created_at: to_rfc3339(o.created_at),
            require_2fa: o.require_2fa,
        }
    }
}

/// A workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    pub org_id: String,
    pub primary: bool,
    pub personal: bool,
    pub created_at: String,
}

impl From<&Workspace> for WorkspaceView {
    fn from(w: &Workspace) -> Self {
        Self {
            id: w.id.clone(),
            name: w.name.clone(),
            org_id: w.org_id.clone(),
            primary: w.primary,
            personal: w.personal,
            created_at: to_rfc3339(w.created_at),
        }
    }
}

/// A member of an org or a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self { user_id: m.user_id, email: m.email, name: m.name, role: m.role }
    }
}

/// An invitation. `token` is present only in the response that created it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: String,
    pub workspaces: Value,
    pub status: String,
    pub invited_by: String,
    pub created_at: String,
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<Invitation> for InvitationView {
    fn from(i: Invitation) -> Self {
        Self {
            id: i.id,
            org_id: i.org_id,
            email: i.email,
            role: i.role,
            workspaces: serde_json::from_str(&i.workspaces).unwrap_or(Value::Array(vec![])),
            status: i.status,
            invited_by: i.invited_by,
            created_at: to_rfc3339(i.created_at),
            expires_at: to_rfc3339(i.expires_at),
            token: None,
        }
    }
}

/// An API key. `secret` is present only in the response that created it.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    /// The first characters of the secret, to recognise it by.
    pub prefix: String,
    pub workspace_id: String,
    pub org_id: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub spend_limit: Option<i64>,
    /// The key's own requests per minute (the org plan's `rpm` applies too).
    pub rpm: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            workspace_id: k.workspace_id,
            org_id: k.org_id,
            created_by: k.created_by,
            created_at: to_rfc3339(k.created_at),
            expires_at: k.expires_at.map(to_rfc3339),
            rpm: k.rpm,
            spend_limit: k.spend_limit,
            secret: None,
        }
    }
}

/// A resource kept by a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub workspace_id: String,
    pub org_id: String,
    pub created_by: String,
    pub created_at: String,
}

impl From<Resource> for ResourceView {
    fn from(r: Resource) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            name: r.name,
            workspace_id: r.workspace_id,
            org_id: r.org_id,
            created_by: r.created_by,
            created_at: to_rfc3339(r.created_at),
        }
    }
}

/// A reference to a user, key or other object: `{type, id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ref {
    pub r#type: String,
    pub id: String,
}

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    pub at: String,
    pub actor: Ref,
    pub action: String,
    pub org_id: String,
    pub workspace_id: Option<String>,
    pub target: Option<Ref>,
    pub ip: Option<String>,
    pub detail: Value,
}

impl From<AuditEvent> for AuditView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            at: to_rfc3339(e.at),
            actor: Ref { r#type: e.actor_type, id: e.actor_id },
            action: e.action,
            org_id: e.org_id,
            workspace_id: e.workspace_id,
            target: e.target_type.zip(e.target_id).map(|(t, id)| Ref { r#type: t, id }),
            ip: e.ip,
            detail: serde_json::from_str(&e.detail).unwrap_or(Value::Null),
        }
    }
}

/// The verdict on an org's audit hash chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerifyView {
    /// Whether every event is as written and none is missing.
    pub ok: bool,
    /// How many events the org's log holds.
    pub events: u64,
    /// The first place the chain breaks; `null` when `ok`.
    pub first_bad: Option<AuditBadLinkView>,
    /// The hash of the newest event as recorded (`null` before the first event): keep it somewhere
    /// else to notice later a rewrite of the whole chain.
    pub head: Option<String>,
}

/// Where an audit chain breaks.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditBadLinkView {
    /// The event's place in the org's chain, from 1.
    pub seq: i64,
    /// The event's id; `null` when the event is missing.
    pub id: Option<String>,
    /// `changed` (its content or hash differs from what was chained) or `missing` (removed).
    pub problem: String,
}

impl From<roost_store::ChainReport> for AuditVerifyView {
    fn from(r: roost_store::ChainReport) -> Self {
        Self {
            ok: r.ok,
            events: r.events,
            first_bad: r.first_bad.map(|b| AuditBadLinkView { seq: b.seq, id: b.id, problem: b.problem.to_string() }),
            head: r.head,
        }
    }
}
