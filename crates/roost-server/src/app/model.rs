//! What the dashboard reads from the API: the parts of its JSON answers that pages show.

use roost_domain::{OrgRole, Permission, WsRole};
use serde::{Deserialize, Deserializer};

/// An RFC 3339 time from the API as people read it: `2026-11-24 20:14 UTC`.
pub fn readable(t: &str) -> String {
    match (t.get(..10), t.get(11..16)) {
        (Some(d), Some(hm)) if t.as_bytes().get(10) == Some(&b'T') => format!("{d} {hm} UTC"),
        _ => t.to_string(),
    }
}

pub(crate) fn when<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|t| readable(&t))
}

pub(crate) fn when_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d).map(|t| t.map(|t| readable(&t)))
}

/// `GET /v1/me` for a user.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub user: UserRef,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub totp_enabled: bool,
    pub active_workspace_id: String,
    pub memberships: Vec<Membership>,
}

/// A user as the API shows one.
#[derive(Debug, Clone, Deserialize)]
pub struct UserRef {
    pub id: String,
    pub email: String,
    pub name: String,
}

/// One org the person belongs to, with the workspaces they can enter.
#[derive(Debug, Clone, Deserialize)]
pub struct Membership {
    pub org_id: String,
    pub org_name: String,
    pub org_kind: String,
    pub org_role: String,
    pub workspaces: Vec<WsBrief>,
}

/// A workspace in `/v1/me`, with the person's role in it.
#[derive(Debug, Clone, Deserialize)]
pub struct WsBrief {
    pub id: String,
    pub name: String,
    pub role: String,
}

impl Membership {
    /// Whether the person's org role allows `p` (the one role matrix, `roost_domain::roles`).
    pub fn may(&self, p: Permission) -> bool {
        OrgRole::parse(&self.org_role).is_some_and(|r| r.allows(p))
    }

    /// Whether this is a personal org.
    pub fn personal(&self) -> bool {
        self.org_kind == "personal"
    }
}

impl Me {
    /// The membership of `org`, if the person belongs to it.
    pub fn org(&self, org: &str) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.org_id == org)
    }

    /// The org and workspace entry of `ws`, if the person can enter it.
    pub fn ws(&self, ws: &str) -> Option<(&Membership, &WsBrief)> {
        self.memberships.iter().find_map(|m| m.workspaces.iter().find(|w| w.id == ws).map(|w| (m, w)))
    }

    /// Whether the person may do `p` in workspace `ws`: their org role, or their own role there.
    pub fn may_in(&self, ws: &str, p: Permission) -> bool {
        let Some((m, w)) = self.ws(ws) else { return false };
        let own = WsRole::parse(&w.role);
        roost_domain::roles::allows_in_workspace(OrgRole::parse(&m.org_role), own, p)
    }
}

/// A list answer.
#[derive(Debug, Deserialize)]
pub struct List<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A plan of the catalog.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanInfo {
    pub id: String,
    pub name: String,
    pub paid: bool,
    pub seats_included: Option<u32>,
    pub max_seats: Option<u32>,
    pub extra_seat_price: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    pub max_workspaces: Option<u32>,
    pub monthly_credits: Option<i64>,
    #[serde(default)]
    pub resource_quotas: std::collections::BTreeMap<String, u32>,
    #[serde(default)]
    pub trial_days: Option<u32>,
    #[serde(default)]
    pub price: Option<i64>,
}

/// `GET /v1/orgs/{org}`.
#[derive(Debug, Deserialize)]
pub struct OrgDetail {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub plan: String,
    pub owner_id: String,
    #[serde(deserialize_with = "when_opt", default)]
    pub trial_ends_at: Option<String>,
    #[serde(default)]
    pub require_2fa: bool,
    pub seats: Seats,
    pub usage: OrgUsage,
}

/// Seats of an org against its plan.
#[derive(Debug, Deserialize)]
pub struct Seats {
    pub used: u32,
    pub included: Option<u32>,
    pub max: Option<u32>,
    pub billable_extra: u32,
    pub extra_seat_price: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
}

/// What an org uses against its plan.
#[derive(Debug, Deserialize)]
pub struct OrgUsage {
    pub workspaces: u32,
    pub max_workspaces: Option<u32>,
    pub resources: std::collections::BTreeMap<String, u32>,
}

/// A workspace.
#[derive(Debug, Clone, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub org_id: String,
    pub primary: bool,
    pub personal: bool,
}

/// An org member.
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub role: String,
}

/// A pending invitation.
#[derive(Debug, Deserialize)]
pub struct Invitation {
    pub id: String,
    pub email: String,
    pub role: String,
    pub status: String,
    #[serde(deserialize_with = "when")]
    pub expires_at: String,
}

/// An API key (never its secret, except once on creation and rotation).
#[derive(Debug, Deserialize)]
pub struct Key {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_by: String,
    #[serde(deserialize_with = "when")]
    pub created_at: String,
    #[serde(deserialize_with = "when_opt", default)]
    pub expires_at: Option<String>,
    pub spend_limit: Option<i64>,
}

/// A resource of a workspace.
#[derive(Debug, Deserialize)]
pub struct Resource {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub created_by: String,
}

/// A budget (workspace or member).
#[derive(Debug, Deserialize)]
pub struct Budget {
    pub limit: Option<i64>,
    pub used: i64,
    #[serde(deserialize_with = "when")]
    pub resets_at: String,
    #[serde(default)]
    pub alert_percents: Option<Vec<u32>>,
}

/// A wallet with its grants.
#[derive(Debug, Deserialize)]
pub struct Wallet {
    pub id: String,
    pub kind: String,
    pub balance: i64,
    pub held: i64,
    pub available: i64,
    pub grants: Vec<Grant>,
    #[serde(deserialize_with = "when_opt", default)]
    pub cycle_ends_at: Option<String>,
    /// The low-balance alert threshold (`None`: off).
    #[serde(default)]
    pub low_balance: Option<i64>,
}

/// A grant of credits.
#[derive(Debug, Deserialize)]
pub struct Grant {
    pub id: String,
    pub source: String,
    pub amount: i64,
    pub remaining: i64,
    #[serde(deserialize_with = "when_opt", default)]
    pub expires_at: Option<String>,
}

/// `GET /v1/orgs/{org}/usage`.
#[derive(Debug, Deserialize)]
pub struct Usage {
    pub total: i64,
    pub count: i64,
    pub groups: Vec<UsageGroup>,
}

/// One group of usage.
#[derive(Debug, Deserialize)]
pub struct UsageGroup {
    pub key: Option<String>,
    pub amount: i64,
    pub count: i64,
    pub share: f64,
}

/// An audit event.
#[derive(Debug, Deserialize)]
pub struct AuditEvent {
    #[serde(deserialize_with = "when")]
    pub at: String,
    pub actor: Ref,
    pub action: String,
    pub workspace_id: Option<String>,
    pub target: Option<Ref>,
    pub ip: Option<String>,
}

/// A typed reference (`{type, id}`).
#[derive(Debug, Deserialize)]
pub struct Ref {
    pub r#type: String,
    pub id: String,
}

/// One journal entry (`GET …/transactions`): a charge, a grant, an expiry or an adjustment.
#[derive(Debug, Deserialize)]
pub struct JournalEntry {
    pub r#type: String,
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub workspace_id: Option<String>,
    pub actor: Ref,
    pub balance_after: i64,
    #[serde(deserialize_with = "when")]
    pub at: String,
}

/// One of the person's sessions (`GET /v1/me/sessions`).
#[derive(Debug, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    #[serde(deserialize_with = "when")]
    pub created_at: String,
    #[serde(deserialize_with = "when")]
    pub last_used_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
}

/// A wallet's auto-reload (`GET …/auto-reload`).
#[derive(Debug, Deserialize)]
pub struct AutoReload {
    pub enabled: bool,
    pub threshold: i64,
    pub amount: i64,
    pub monthly_max: i64,
    pub reloaded_this_month: i64,
}

/// An org event (`GET /v1/orgs/{org}/events`).
#[derive(Debug, Deserialize)]
pub struct OrgEvent {
    pub id: String,
    pub r#type: String,
    #[serde(deserialize_with = "when")]
    pub created_at: String,
    pub workspace_id: Option<String>,
    pub data: serde_json::Value,
}

/// A webhook endpoint (its secret only once, on creation).
#[derive(Debug, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    #[serde(deserialize_with = "when")]
    pub created_at: String,
    /// Failed attempts at the event it is stuck on (0: nothing pending a retry).
    #[serde(default)]
    pub failed_attempts: i64,
    #[serde(deserialize_with = "when_opt", default)]
    pub next_retry_at: Option<String>,
}

/// One delivery attempt of a webhook.
#[derive(Debug, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    pub attempt: i64,
    #[serde(deserialize_with = "when")]
    pub at: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}
