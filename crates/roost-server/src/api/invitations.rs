//! Invitations: an owner or admin invites an email address; its holder accepts with the token.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roost_domain::time::DAY_MS;
use roost_domain::tokens::{self, INVITATION_PREFIX};
use roost_domain::validate::Errors;
use roost_domain::{IdKind, OrgRole, Permission, WsRole};
use roost_store::NewInvitation;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_id, org_ctx};
use crate::AppState;
use crate::auth::{Caller, revoking};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Params};
use crate::views::{InvitationView, List};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_invitation, list_invitations))
        .routes(routes!(revoke_invitation))
        .routes(routes!(accept_invitation))
}

/// A workspace the invitee joins on acceptance.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceGrant {
    workspace_id: String,
    /// `admin`, `member` or `viewer`.
    role: String,
}

/// Body of `POST /v1/orgs/{org}/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    email: String,
    /// `admin`, `billing` or `member` (default).
    role: Option<String>,
    #[serde(default)]
    workspaces: Vec<WorkspaceGrant>,
}

/// Invites an email address to the org (owner or admin), while a seat is free.
#[utoipa::path(post, path = "/v1/orgs/{org}/invitations", tag = "invitations", security(("bearer" = [])), request_body = CreateInvitation,
    responses((status = 201, body = InvitationView), (status = 403, description = "forbidden, personal_org or plan_limit", body = Problem)))]
async fn create_invitation(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(b): ApiJson<CreateInvitation>,
) -> ApiResult<(StatusCode, Json<InvitationView>)> {
    let o = org_ctx(&st, &caller, &org).await?;
    if o.org.is_personal() {
        return Err(ApiError::personal_org("takes no members or invitations"));
    }
    o.require(Permission::ManageMembers)?;
    let mut e = Errors::default();
    let email = e.email("email", &b.email);
    let role = match b.role.as_deref().map(OrgRole::parse) {
        None => Some(OrgRole::Member),
        Some(Some(OrgRole::Owner)) | Some(None) => {
            e.add("role", "must be one of admin, billing, member");
            None
        }
        Some(r) => r,
    };
    if b.workspaces.len() > 100 {
        e.add("workspaces", "at most 100 workspaces");
    }
    for (i, g) in b.workspaces.iter().enumerate() {
        if WsRole::parse(&g.role).is_none() {
            e.add(&format!("workspaces[{i}].role"), "must be one of admin, member, viewer");
        }
        let in_org = IdKind::Workspace.is_valid(&g.workspace_id)
            && st.store.workspace_by_id(&g.workspace_id).await?.is_some_and(|(w, _)| w.org_id == o.org.id);
        if !in_org {
            e.add(&format!("workspaces[{i}].workspace_id"), "is not a workspace of this organization");
        }
    }
    e.finish().map_err(ApiError::invalid)?;
    let role = role.unwrap_or(OrgRole::Member);
    if role != OrgRole::Member && o.role != OrgRole::Owner {
        return Err(ApiError::forbidden("only the owner invites admins and billing members"));
    }
    let now = st.clock.now_ms();
    let token = tokens::generate(INVITATION_PREFIX);
    let inv = NewInvitation {
        id: IdKind::Invitation.generate(),
        org_id: o.org.id.clone(),
        email,
        role: role.as_str().into(),
        workspaces: json!(b.workspaces).to_string(),
        token_hash: tokens::hash(&token),
        expires_at: now + i64::from(st.settings.invitation_ttl_days) * DAY_MS,
    };
    let inviter = caller.user()?.name.clone();
    let expires = roost_domain::time::to_rfc3339(inv.expires_at);
    let mail = crate::mail::invitation(&st.settings, &inv.email, &inviter, &o.org.name, &token, &expires);
    st.store
        .create_invitation_with_mail(&inv, Some(&mail.into_outbox()), &st.settings.catalog, &caller.ctx(now))
        .await?;
    st.mailer.wake();
    let view = InvitationView {
        id: inv.id,
        org_id: inv.org_id,
        email: inv.email,
        role: inv.role,
        workspaces: json!(b.workspaces),
        status: "pending".into(),
        invited_by: caller.user()?.id.clone(),
        created_at: roost_domain::time::to_rfc3339(now),
        expires_at: roost_domain::time::to_rfc3339(inv.expires_at),
        token: Some(token),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// The org's pending invitations (owner or admin).
#[utoipa::path(get, path = "/v1/orgs/{org}/invitations", tag = "invitations", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<InvitationView>)))]
async fn list_invitations(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<InvitationView>>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageMembers)?;
    let (limit, cursor) = params.page(IdKind::Invitation)?;
    let page = st.store.list_invitations(&o.org.id, st.clock.now_ms(), limit, cursor).await?;
    Ok(Json(List::from_page(page, InvitationView::from)))
}

/// Revokes a pending invitation (owner or admin).
#[utoipa::path(delete, path = "/v1/orgs/{org}/invitations/{id}", tag = "invitations", security(("bearer" = [])),
    responses((status = 204), (status = 404, description = "not_found", body = Problem)))]
async fn revoke_invitation(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageMembers)?;
    check_id(IdKind::Invitation, &id)?;
    st.store.revoke_invitation(&o.org.id, &id, &caller.ctx(st.clock.now_ms())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/invitations/accept`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    token: String,
}

/// What accepting joined.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    org_id: String,
    workspace_ids: Vec<String>,
}

/// Accepts an invitation sent to the caller's email address.
#[utoipa::path(post, path = "/v1/invitations/accept", tag = "invitations", security(("bearer" = [])), request_body = AcceptInvitation,
    responses((status = 200, body = Accepted), (status = 403, description = "invitation_email_mismatch or plan_limit", body = Problem),
              (status = 410, description = "invitation_invalid", body = Problem)))]
async fn accept_invitation(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<AcceptInvitation>,
) -> ApiResult<Json<Accepted>> {
    let user = caller.user()?;
    if b.token.len() > 200 {
        return Err(ApiError::from(roost_store::StoreError::Rule(roost_store::Rule::InvitationInvalid)));
    }
    let (hash, user_id, email, ctx) =
        (tokens::hash(b.token.trim()), user.id.clone(), user.email.clone(), caller.ctx(st.clock.now_ms()));
    // Through `revoking`: a workspace grant may lower a role the user had, and end their keys there.
    let a = revoking(&st, move |st| async move {
        st.store.accept_invitation(&hash, &user_id, &email, &st.settings.catalog, &ctx).await
    })
    .await?;
    crate::billing::members_changed(&st, &a.org_id).await;
    Ok(Json(Accepted { org_id: a.org_id, workspace_ids: a.workspace_ids }))
}
