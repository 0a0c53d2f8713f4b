//! The routes of API v1, one module per resource, and the access checks they share.

mod accounts;
mod admin;
mod audit;
pub(crate) mod billing;
pub mod contract;
pub mod credits;
mod domains;
mod events;
mod identity;
mod invitations;
mod keys;
mod limits;
mod oidc;
mod orgs;
mod plans;
pub(crate) mod records;
mod resources;
mod sessions;
mod totp;
mod webhooks;
mod workspaces;

use axum::http::HeaderMap;
use roost_domain::roles::allows_in_workspace;
use roost_domain::{IdKind, OrgRole, Permission, WsRole};
use roost_store::{ApiKey, Org, Workspace};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::auth::{Caller, Who};
use crate::error::{ApiError, ApiResult};

/// Every route of the API, with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(accounts::router())
        .merge(identity::router())
        .merge(sessions::router())
        .merge(totp::router())
        .merge(oidc::router())
        .merge(domains::router())
        .merge(plans::router())
        .merge(orgs::router())
        .merge(workspaces::router())
        .merge(invitations::router())
        .merge(keys::router())
        .merge(limits::router())
        .merge(resources::router())
        .merge(records::router())
        .merge(audit::router())
        .merge(events::router())
        .merge(credits::router())
        .merge(webhooks::router())
        .merge(billing::router())
        .merge(admin::router())
}

/// Adds the document's title and the bearer security scheme, names the catalog's `plans` and the
/// `wallet_kinds`, and completes every operation's responses (see [`contract`]).
pub fn finish_openapi(mut doc: OpenApi, plans: &[&str], wallet_kinds: &[String]) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("roost API")
        .version("1")
        .description(Some("Tenancy and prepaid credits for SaaS products. The contract is docs/api.md."))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A user token (rsu_…) or a workspace API key (rsk_…)"))
                .build(),
        ),
    );
    contract::describe_itself(&mut doc);
    contract::name_the_catalog(&mut doc, plans, wallet_kinds);
    utoipa::Modify::modify(&contract::Contract, &mut doc);
    doc
}

/// Checks a path id's shape; a malformed id is simply not found.
pub(crate) fn check_id(kind: IdKind, id: &str) -> ApiResult<()> {
    if kind.is_valid(id) { Ok(()) } else { Err(ApiError::not_found()) }
}

/// A `{user}` path segment: `me` means the caller; anything else must be shaped like a user id.
pub(crate) fn user_param(caller: &Caller, user: &str) -> ApiResult<String> {
    let id = if user == "me" { caller.user()?.id.clone() } else { user.to_string() };
    check_id(IdKind::User, &id)?;
    Ok(id)
}

/// An org and the calling user's role in it. API keys act in their workspace, not on their org.
pub(crate) struct OrgCtx {
    pub org: Org,
    pub role: OrgRole,
}

impl OrgCtx {
    /// 403 unless the role allows `p`.
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("your role `{}` may not do this", self.role.as_str())))
        }
    }
}

/// The org `org_id` as the caller may see it: 404 unless the caller is a member; 403
/// `two_factor_required` when the org requires two-factor and the caller has not turned it on
/// (found by review: it used to hold them out of the org's workspaces only, not the org's own
/// routes — its audit log, members, webhooks, invitations).
pub(crate) async fn org_ctx(st: &AppState, caller: &Caller, org_id: &str) -> ApiResult<OrgCtx> {
    let o = org_ctx_without_2fa(st, caller, org_id).await?;
    if o.org.require_2fa && caller.user()?.totp_enabled_at.is_none() {
        return Err(ApiError::two_factor_required());
    }
    Ok(o)
}

/// [`org_ctx`] without the two-factor requirement: for what a member held out by it may still do
/// (see the org, leave it).
pub(crate) async fn org_ctx_without_2fa(st: &AppState, caller: &Caller, org_id: &str) -> ApiResult<OrgCtx> {
    check_id(IdKind::Org, org_id)?;
    let user = match &caller.who {
        Who::User(u) => u,
        Who::Key(k) if k.org_id == org_id => {
            return Err(ApiError::forbidden("API keys act in their workspace, not on the organization"));
        }
        Who::Key(_) => return Err(ApiError::not_found()),
    };
    let m = st.store.org_access(org_id, &user.id).await?.ok_or_else(ApiError::not_found)?;
    let role = OrgRole::parse(&m.role).ok_or_else(|| ApiError::internal(format!("stored org role `{}`", m.role)))?;
    Ok(OrgCtx { org: m.org, role })
}

/// A workspace and what the caller is in it.
pub(crate) struct WsCtx {
    pub ws: Workspace,
    pub org: Org,
    pub org_role: Option<OrgRole>,
    pub ws_role: Option<WsRole>,
}

impl WsCtx {
    /// Whether the caller may do `p` here.
    pub fn allows(&self, p: Permission) -> bool {
        allows_in_workspace(self.org_role, self.ws_role, p)
    }

    /// 403 unless the caller may do `p` here.
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        if self.allows(p) {
            Ok(())
        } else {
            Err(ApiError::forbidden("your role in this workspace does not allow this"))
        }
    }
}

/// The workspace `ws_id` as the caller may see it. Users see the workspaces they were added to,
/// and all of them if their org role allows; a key sees only its own. Anything else: 404.
pub(crate) async fn ws_ctx(st: &AppState, caller: &Caller, ws_id: &str) -> ApiResult<WsCtx> {
    check_id(IdKind::Workspace, ws_id)?;
    match &caller.who {
        Who::Key(k) => {
            if k.workspace_id != ws_id {
                return Err(ApiError::not_found());
            }
            let (ws, org) = st.store.workspace_by_id(ws_id).await?.ok_or_else(ApiError::not_found)?;
            Ok(WsCtx { ws, org, org_role: None, ws_role: Some(KEY_WS_ROLE) })
        }
        Who::User(u) => {
            let a = st.store.workspace_access(ws_id, &u.id).await?.ok_or_else(ApiError::not_found)?;
            let org_role = OrgRole::parse(&a.org_role);
            let ws_role = a.ws_role.as_deref().and_then(WsRole::parse);
            if ws_role.is_none() && !org_role.is_some_and(|r| r.allows(Permission::SeeAllWorkspaces)) {
                return Err(ApiError::not_found());
            }
            // After the visibility check: an outsider still learns nothing about the org.
            if a.org.require_2fa && u.totp_enabled_at.is_none() {
                return Err(ApiError::two_factor_required());
            }
            Ok(WsCtx { ws: a.workspace, org: a.org, org_role, ws_role })
        }
    }
}

/// Answers 404 for an object that does not exist after the same work as for one that exists in
/// another tenant (looking up a workspace's access), so that timing tells nothing about other
/// tenants' ids (API.md, Conventions).
pub(crate) async fn not_found_after_access_check<T>(st: &AppState, caller: &Caller) -> ApiResult<T> {
    /// Well-formed, never issued: UUIDv7 ids never start with eight zero bits.
    const NO_WORKSPACE: &str = "ws_00000000000000000000000000";
    let _ = ws_ctx(st, caller, NO_WORKSPACE).await;
    Err(ApiError::not_found())
}

/// The header that names the workspace a user token acts in for one request.
pub const WORKSPACE_HEADER: &str = "roost-workspace";

/// The workspace a workspace-scoped call acts in: the key's own; for a user, the one named by the
/// `Roost-Workspace` header, else the active one, else the personal one.
pub(crate) async fn acting_ws(st: &AppState, caller: &Caller, headers: &HeaderMap) -> ApiResult<WsCtx> {
    let named = named_workspace(headers)?;
    match &caller.who {
        Who::Key(k) => {
            key_may_act_in(k, named)?;
            ws_ctx(st, caller, &k.workspace_id.clone()).await
        }
        Who::User(u) => {
            if let Some(n) = named {
                return ws_ctx(st, caller, n).await;
            }
            if let Some(active) = &u.active_workspace_id {
                match ws_ctx(st, caller, active).await {
                    Err(e) if e.code == "not_found" => {}
                    other => return other,
                }
            }
            let personal = st.store.personal_workspace(&u.id).await?.ok_or_else(ApiError::not_found)?;
            ws_ctx(st, caller, &personal).await
        }
    }
}

/// The workspace the `Roost-Workspace` header names, if any (not valid text: 404).
fn named_workspace(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    match headers.get(WORKSPACE_HEADER) {
        Some(v) => Ok(Some(v.to_str().map_err(|_| ApiError::not_found())?.trim())),
        None => Ok(None),
    }
}

/// 403 if the header names a workspace other than the key's own: a key never moves.
fn key_may_act_in(k: &ApiKey, named: Option<&str>) -> ApiResult<()> {
    if named.is_some_and(|n| n != k.workspace_id) {
        return Err(ApiError::forbidden("an API key acts only in its own workspace"));
    }
    Ok(())
}

/// What an API key is in its workspace.
const KEY_WS_ROLE: WsRole = WsRole::Member;

/// Where a draw on the org's credits happens: the workspace and its org, by id, for a caller
/// who may do what was asked there.
pub(crate) struct WsScope {
    pub org_id: String,
    pub workspace_id: String,
}

/// The scope of a key in its own workspace, from the key alone, with no database read. A key
/// names its workspace and org for good (neither ever moves), and it does not outlive them:
/// deleting a workspace or an org revokes its keys, which drops them from the key cache here at
/// once and on other replicas through `NOTIFY` (see `auth`). The ledger itself refuses any draw
/// on a deleted org under the org's lock, which is the check that counts. Nothing else about the
/// workspace or the org (names, plan) matters to a draw.
fn key_scope(k: &ApiKey, p: Permission) -> ApiResult<WsScope> {
    if !allows_in_workspace(None, Some(KEY_WS_ROLE), p) {
        return Err(ApiError::forbidden("your role in this workspace does not allow this"));
    }
    Ok(WsScope { org_id: k.org_id.clone(), workspace_id: k.workspace_id.clone() })
}

/// Like [`ws_ctx`] followed by [`WsCtx::require`], with the same answers, for calls that need only
/// the ids: for an API key no database read (see [`key_scope`]).
pub(crate) async fn ws_scope(st: &AppState, caller: &Caller, ws_id: &str, p: Permission) -> ApiResult<WsScope> {
    match &caller.who {
        Who::Key(k) => {
            check_id(IdKind::Workspace, ws_id)?;
            if k.workspace_id != ws_id {
                return Err(ApiError::not_found());
            }
            key_scope(k, p)
        }
        Who::User(_) => scope_of(ws_ctx(st, caller, ws_id).await?, p),
    }
}

/// Like [`acting_ws`] followed by [`WsCtx::require`], with the same answers (the `Roost-Workspace`
/// rules included), for calls that need only the ids: for an API key no database read.
pub(crate) async fn acting_scope(
    st: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    p: Permission,
) -> ApiResult<WsScope> {
    match &caller.who {
        Who::Key(k) => {
            key_may_act_in(k, named_workspace(headers)?)?;
            key_scope(k, p)
        }
        Who::User(_) => scope_of(acting_ws(st, caller, headers).await?, p),
    }
}

fn scope_of(w: WsCtx, p: Permission) -> ApiResult<WsScope> {
    w.require(p)?;
    Ok(WsScope { org_id: w.org.id, workspace_id: w.ws.id })
}
