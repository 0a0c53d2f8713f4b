//! Organizations: create, read, rename, plan, delete, members, ownership.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roost_domain::time::DAY_MS;
use roost_domain::validate::Errors;
use roost_domain::{IdKind, OrgRole, Permission};
use roost_store::NewOrg;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_id, org_ctx, org_ctx_without_2fa, user_param};
use crate::AppState;
use crate::auth::{Caller, revoking};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Params};
use crate::views::{List, MemberView, OrgView, WorkspaceView};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_org, list_orgs))
        .routes(routes!(get_org, update_org, delete_org))
        .routes(routes!(change_plan))
        .routes(routes!(list_members))
        .routes(routes!(update_member, remove_member))
        .routes(routes!(transfer_ownership))
}

/// Body of `POST /v1/orgs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    plan: String,
    /// Start the plan's trial instead of paying (once per org, ever).
    #[serde(default)]
    trial: bool,
}

/// A new org with its primary workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgCreated {
    org: OrgView,
    workspace: WorkspaceView,
}

fn paid_plan_required(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, "paid_plan_required", detail)
}

/// Creates an org on a paid plan (or its trial); the caller becomes its owner.
#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", security(("bearer" = [])), request_body = CreateOrg,
    responses((status = 201, body = OrgCreated), (status = 402, description = "paid_plan_required", body = Problem),
              (status = 422, description = "invalid_request", body = Problem)))]
async fn create_org(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, Json<OrgCreated>)> {
    let user = caller.user()?;
    let mut e = Errors::default();
    let name = e.name("name", &b.name);
    let plan = st.settings.catalog.get(&b.plan);
    if plan.is_none() {
        e.add("plan", "is not a plan of this server (see GET /v1/plans)");
    }
    e.finish().map_err(ApiError::invalid)?;
    let plan = plan.ok_or_else(ApiError::not_found)?;
    let now = st.clock.now_ms();
    let trial_ends_at = if b.trial {
        match plan.trial_days.filter(|d| *d > 0) {
            Some(days) => Some(now + i64::from(days) * DAY_MS),
            None => return Err(paid_plan_required(format!("plan `{}` offers no trial", plan.id))),
        }
    } else if !plan.paid {
        return Err(paid_plan_required(format!("organizations need a paid plan; `{}` is not one", plan.id)));
    } else {
        None
    };
    let o = NewOrg {
        id: IdKind::Org.generate(),
        name,
        plan: plan.id.clone(),
        owner_id: user.id.clone(),
        trial_ends_at,
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "Default".into(),
    };
    st.store.create_org(&o, &caller.ctx(now)).await?;
    crate::billing::members_changed(&st, &o.id).await;
    let org = st.store.org_by_id(&o.id).await?.ok_or_else(|| ApiError::internal("org vanished after creation"))?;
    let (ws, _) =
        st.store.workspace_by_id(&o.workspace_id).await?.ok_or_else(|| ApiError::internal("workspace vanished"))?;
    Ok((StatusCode::CREATED, Json(OrgCreated { org: OrgView::new(&org, Some("owner")), workspace: (&ws).into() })))
}

/// The orgs the caller belongs to.
#[utoipa::path(get, path = "/v1/orgs", tag = "orgs", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<OrgView>)))]
async fn list_orgs(State(st): State<AppState>, caller: Caller, params: Params) -> ApiResult<Json<List<OrgView>>> {
    let user = caller.user()?;
    let (limit, cursor) = params.page(IdKind::Org)?;
    let page = st.store.list_orgs(&user.id, limit, cursor).await?;
    Ok(Json(List::from_page(page, |m| OrgView::new(&m.org, Some(&m.role)))))
}

/// Seats of an org against its plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct Seats {
    /// Members now.
    used: u32,
    /// Seats the plan's price includes (`null`: all).
    included: Option<u32>,
    /// Hard cap (`null`: none).
    max: Option<u32>,
    /// Members beyond the included seats, each billed at `extra_seat_price`.
    billable_extra: u32,
    extra_seat_price: Option<i64>,
    currency: Option<String>,
}

/// What an org uses against its plan's limits.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgUsage {
    workspaces: u32,
    max_workspaces: Option<u32>,
    /// Resources per kind.
    resources: std::collections::BTreeMap<String, u32>,
}

/// An org with its seats and usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgDetail {
    #[serde(flatten)]
    org: OrgView,
    seats: Seats,
    usage: OrgUsage,
    /// `ok`, or `past_due` while an invoice is unpaid past the grace period (API.md "Billing").
    billing_status: &'static str,
    /// Where invoices go instead of the owner's address, if set.
    billing_email: Option<String>,
}

/// One org the caller belongs to, with its seats and usage against the plan.
#[utoipa::path(get, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    responses((status = 200, body = OrgDetail), (status = 404, description = "not_found", body = Problem)))]
async fn get_org(State(st): State<AppState>, caller: Caller, Path(org): Path<String>) -> ApiResult<Json<OrgDetail>> {
    // Also for a member held out by `require_2fa`: they see why.
    let o = org_ctx_without_2fa(&st, &caller, &org).await?;
    let plan = st
        .settings
        .catalog
        .get(&o.org.plan)
        .ok_or_else(|| ApiError::internal(format!("unknown plan {}", o.org.plan)))?;
    let u = st.store.org_usage(&o.org.id).await?;
    let seats = Seats {
        used: u.members,
        included: plan.seats_included,
        max: plan.max_seats,
        billable_extra: plan.seats_included.map_or(0, |inc| u.members.saturating_sub(inc)),
        extra_seat_price: plan.extra_seat_price,
        currency: plan.currency.clone(),
    };
    let usage = OrgUsage { workspaces: u.workspaces, max_workspaces: plan.max_workspaces, resources: u.resources };
    let billing_status = if crate::billing::past_due(&st, &o.org.id).await? { "past_due" } else { "ok" };
    let billing_email = st.store.billing_email(&o.org.id).await?;
    let org = OrgView::new(&o.org, Some(o.role.as_str()));
    Ok(Json(OrgDetail { org, seats, usage, billing_status, billing_email }))
}

/// Body of `PATCH /v1/orgs/{org}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: Option<String>,
    /// Members without two-factor may not use the org's workspaces (owner only; the owner must
    /// have two-factor on to turn it on).
    require_2fa: Option<bool>,
    /// Where invoices go instead of the owner's address (owner or billing); `null` clears it.
    #[serde(default, deserialize_with = "super::credits::present")]
    #[schema(value_type = Option<String>)]
    billing_email: Option<Option<String>>,
}

/// Renames an org (owner or admin), or requires two-factor of its members (owner).
#[utoipa::path(patch, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])), request_body = UpdateOrg,
    responses((status = 200, body = OrgView), (status = 403, description = "forbidden or two_factor_required", body = Problem),
              (status = 422, description = "invalid_request", body = Problem)))]
async fn update_org(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(b): ApiJson<UpdateOrg>,
) -> ApiResult<Json<OrgView>> {
    let o = org_ctx(&st, &caller, &org).await?;
    if b.name.is_some() || b.require_2fa.is_some() || b.billing_email.is_none() {
        o.require(Permission::UpdateOrg)?;
    }
    if b.billing_email.is_some() {
        o.require(Permission::ManageBilling)?;
    }
    let mut e = Errors::default();
    let name = b.name.as_deref().map(|n| e.name("name", n));
    if name.is_none() && b.require_2fa.is_none() && b.billing_email.is_none() {
        e.add("name", "give name, require_2fa or billing_email");
    }
    if let Some(Some(m)) = &b.billing_email
        && (m.len() > 254
            || m.chars().any(|c| c.is_whitespace() || c.is_control())
            || m.parse::<lettre::Address>().is_err())
    {
        e.add("billing_email", "must be an email address");
    }
    e.finish().map_err(ApiError::invalid)?;
    if let Some(on) = b.require_2fa {
        if o.role != OrgRole::Owner {
            return Err(ApiError::forbidden("only the owner requires two-factor"));
        }
        // The owner keeps their own way in.
        if on && caller.user()?.totp_enabled_at.is_none() {
            return Err(ApiError::two_factor_required());
        }
    }
    let ctx = caller.ctx(st.clock.now_ms());
    let mut org = o.org;
    if let Some(name) = name {
        st.store.rename_org(&org.id, &name, &ctx).await?;
        org.name = name;
    }
    if let Some(on) = b.require_2fa.filter(|&on| on != org.require_2fa) {
        st.store.set_require_2fa(&org.id, on, &ctx).await?;
        org.require_2fa = on;
    }
    if let Some(m) = &b.billing_email {
        st.store.set_billing_email(&org.id, m.as_deref(), &ctx).await?;
    }
    Ok(Json(OrgView::new(&org, Some(o.role.as_str()))))
}

/// Body of `PUT /v1/orgs/{org}/plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlan {
    plan: String,
    /// Start this plan's trial (only if the org never had one).
    #[serde(default)]
    trial: bool,
}

/// Moves the org to another plan (owner or billing).
#[utoipa::path(put, path = "/v1/orgs/{org}/plan", tag = "orgs", security(("bearer" = [])), request_body = ChangePlan,
    responses((status = 200, body = OrgView), (status = 402, description = "paid_plan_required", body = Problem),
              (status = 409, description = "plan_limit or trial_used", body = Problem)))]
async fn change_plan(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(b): ApiJson<ChangePlan>,
) -> ApiResult<Json<OrgView>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageBilling)?;
    let plan = st
        .settings
        .catalog
        .get(&b.plan)
        .ok_or_else(|| ApiError::invalid_field("plan", "is not a plan of this server"))?;
    if plan.id == o.org.plan && !b.trial {
        // The plan it already has: nothing changes (the cycle does not restart).
        return Ok(Json(OrgView::new(&o.org, Some(o.role.as_str()))));
    }
    let now = st.clock.now_ms();
    let trial_ends_at = if b.trial {
        if o.org.trial_used {
            // (Checked again under the org lock by the store: two trials may be asked for at once.)
            return Err(roost_store::StoreError::Rule(roost_store::Rule::TrialUsed).into());
        }
        let days = plan
            .trial_days
            .filter(|d| *d > 0)
            .ok_or_else(|| paid_plan_required(format!("plan `{}` offers no trial", plan.id)))?;
        Some(now + i64::from(days) * DAY_MS)
    } else {
        if !plan.paid && !o.org.is_personal() {
            return Err(paid_plan_required(format!("organizations need a paid plan; `{}` is not one", plan.id)));
        }
        None
    };
    // Past due, an org may not move to a dearer plan until it pays (API.md "Billing").
    let price = |id: &str| st.settings.catalog.get(id).and_then(|p| p.price).unwrap_or(0);
    if price(&plan.id) > price(&o.org.plan) && crate::billing::past_due(&st, &o.org.id).await? {
        return Err(crate::billing::payment_required());
    }
    match st.store.change_plan(&o.org.id, plan, trial_ends_at, &caller.ctx(now)).await {
        Err(roost_store::StoreError::Limit(l)) => return Err(ApiError::plan_limit(StatusCode::CONFLICT, &l)),
        other => other?,
    }
    crate::billing::plan_changed(&st, &o.org, &plan.id, trial_ends_at, false).await?;
    // The ledger restarts the org's cycle at the change (capped rollover, the new plan's
    // allocation): apply it now rather than at the next charge, so each change counts once.
    let tick = roost_ledger::Command {
        org_id: o.org.id.clone(),
        actor: roost_ledger::ActorRef::system(),
        op: roost_ledger::Op::Tick,
        idem: None,
    };
    if let Err(e) = st.ledger.submit(tick).await {
        tracing::warn!(error = %e, "the ledger will apply the plan change at its next batch");
    }
    let org = st.store.org_by_id(&o.org.id).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(OrgView::new(&org, Some(o.role.as_str()))))
}

/// Deletes an org (owner only; never a personal org).
#[utoipa::path(delete, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    responses((status = 204), (status = 403, description = "forbidden or personal_org", body = Problem)))]
async fn delete_org(State(st): State<AppState>, caller: Caller, Path(org): Path<String>) -> ApiResult<StatusCode> {
    let o = org_ctx(&st, &caller, &org).await?;
    if o.org.is_personal() {
        return Err(ApiError::personal_org("cannot be deleted"));
    }
    o.require(Permission::DeleteOrg)?;
    let (org_id, ctx) = (o.org.id, caller.ctx(st.clock.now_ms()));
    revoking(&st, move |st| async move { st.store.delete_org(&org_id, &ctx).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The org's members.
#[utoipa::path(get, path = "/v1/orgs/{org}/members", tag = "orgs", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<MemberView>)))]
async fn list_members(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<MemberView>>> {
    let o = org_ctx(&st, &caller, &org).await?;
    let (limit, cursor) = params.page(IdKind::User)?;
    Ok(Json(List::from_page(st.store.list_members(&o.org.id, limit, cursor).await?, MemberView::from)))
}

/// Body of `PATCH /v1/orgs/{org}/members/{user}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    /// `admin`, `billing` or `member`.
    role: String,
}

/// Changes a member's org role. Only the owner grants or takes away admin and billing.
#[utoipa::path(patch, path = "/v1/orgs/{org}/members/{user}", tag = "orgs", security(("bearer" = [])), request_body = UpdateMember,
    responses((status = 200, body = MemberView), (status = 409, description = "owner_cannot_be_removed", body = Problem)))]
async fn update_member(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
    ApiJson(b): ApiJson<UpdateMember>,
) -> ApiResult<Json<MemberView>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageMembers)?;
    let role = match OrgRole::parse(&b.role) {
        Some(OrgRole::Owner) => {
            return Err(ApiError::invalid_field("role", "ownership moves only by transfer-ownership"));
        }
        Some(r) => r,
        None => return Err(ApiError::invalid_field("role", "must be one of admin, billing, member")),
    };
    let user = user_param(&caller, &user)?;
    let target = st.store.org_member(&o.org.id, &user).await?.ok_or_else(ApiError::not_found)?;
    let by_owner = o.role == OrgRole::Owner;
    if !by_owner && matches!(role, OrgRole::Admin | OrgRole::Billing) {
        return Err(ApiError::forbidden("only the owner grants or takes away admin and billing"));
    }
    // The target's current role is checked again under the org lock (it may change meanwhile).
    let (org_id, target_id, ctx) = (o.org.id.clone(), user.clone(), caller.ctx(st.clock.now_ms()));
    revoking(&st, move |st| async move { st.store.set_member_role(&org_id, &target_id, role.as_str(), &ctx).await })
        .await?;
    Ok(Json(MemberView { role: role.as_str().into(), ..target.into() }))
}

/// Removes a member, or lets the caller leave (`me`). Their keys in this org are revoked.
#[utoipa::path(delete, path = "/v1/orgs/{org}/members/{user}", tag = "orgs", security(("bearer" = [])),
    responses((status = 204), (status = 403, description = "forbidden or personal_org", body = Problem),
              (status = 409, description = "owner_cannot_be_removed", body = Problem)))]
async fn remove_member(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let user = user_param(&caller, &user)?;
    // Leaving needs no second factor; removing someone else does.
    let o = if caller.user().is_ok_and(|u| u.id == user) {
        org_ctx_without_2fa(&st, &caller, &org).await?
    } else {
        org_ctx(&st, &caller, &org).await?
    };
    if o.org.is_personal() {
        return Err(ApiError::personal_org("cannot be left and has no other members"));
    }
    if caller.user()?.id != user {
        o.require(Permission::ManageMembers)?;
    }
    // Only the owner removes admins and billing members: checked again, with the caller's role as
    // it is then, under the org lock.
    let (org_id, ctx) = (o.org.id, caller.ctx(st.clock.now_ms()));
    revoking(&st, move |st| async move { st.store.remove_member(&org_id, &user, &ctx).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/orgs/{org}/transfer-ownership`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwnership {
    user_id: String,
}

/// Hands ownership to another member (owner only); the old owner becomes an admin.
#[utoipa::path(post, path = "/v1/orgs/{org}/transfer-ownership", tag = "orgs", security(("bearer" = [])), request_body = TransferOwnership,
    responses((status = 200, body = OrgView), (status = 404, description = "not_found", body = Problem)))]
async fn transfer_ownership(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(b): ApiJson<TransferOwnership>,
) -> ApiResult<Json<OrgView>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::TransferOwnership)?;
    check_id(IdKind::User, &b.user_id)?;
    st.store.transfer_ownership(&o.org.id, &b.user_id, &caller.ctx(st.clock.now_ms())).await?;
    let org = st.store.org_by_id(&o.org.id).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(OrgView::new(&org, Some("admin"))))
}
