//! Verified domains: an org claims a mail domain and proves it with a DNS TXT record; people whose
//! verified address is there join it on their first sign-in (`auto_join`, seats permitting) or
//! see it among their suggested orgs (`suggest`, and `auto_join` orgs that were full).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roost_domain::time::to_rfc3339;
use roost_domain::validate::Errors;
use roost_domain::{IdKind, Permission, domains, tokens};
use roost_store::{Ctx, Limit, OrgDomain, Rule, StoreError, User};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_id, org_ctx};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Params};
use crate::views::List;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_domain, list_domains))
        .routes(routes!(remove_domain))
        .routes(routes!(verify_domain))
        .routes(routes!(suggested_orgs))
        .routes(routes!(join_suggested))
}

/// The DNS record that proves control of a domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    /// Always `dns_txt`.
    r#type: &'static str,
    name: String,
    value: String,
}

/// An org's claim on a mail domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainView {
    id: String,
    domain: String,
    /// `auto_join` or `suggest`.
    mode: String,
    role: String,
    verified: bool,
    verified_at: Option<String>,
    created_at: String,
    verification: Verification,
}

impl From<OrgDomain> for DomainView {
    fn from(d: OrgDomain) -> Self {
        Self {
            verification: Verification {
                r#type: "dns_txt",
                name: domains::verification_name(&d.domain),
                value: domains::verification_value(&d.token),
            },
            id: d.id,
            domain: d.domain,
            mode: d.mode,
            role: d.role,
            verified: d.verified_at.is_some(),
            verified_at: d.verified_at.map(to_rfc3339),
            created_at: to_rfc3339(d.created_at),
        }
    }
}

/// Body of `POST /v1/orgs/{org}/domains`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    domain: String,
    /// `auto_join` or `suggest`.
    mode: String,
    /// The org role people join with: `member` (the default and, for now, the only one).
    role: Option<String>,
}

/// Claims a mail domain for the org (owner or admin); verify it with the TXT record in the answer.
#[utoipa::path(post, path = "/v1/orgs/{org}/domains", tag = "domains", security(("bearer" = [])), request_body = AddDomain,
    responses((status = 201, body = DomainView), (status = 403, description = "forbidden or personal_org", body = Problem),
              (status = 409, description = "domain_taken", body = Problem), (status = 422, description = "invalid_request", body = Problem)))]
async fn add_domain(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(b): ApiJson<AddDomain>,
) -> ApiResult<(StatusCode, Json<DomainView>)> {
    let o = org_ctx(&st, &caller, &org).await?;
    if o.org.is_personal() {
        return Err(ApiError::personal_org("claims no domains"));
    }
    o.require(Permission::ManageMembers)?;
    let mut e = Errors::default();
    let domain = domains::normalize(&b.domain);
    match &domain {
        None => e.add("domain", "must be a domain name such as example.com"),
        Some(d) if domains::is_public_mail_domain(d) => {
            e.add("domain", "is a public mail provider: its users are not one organization")
        }
        Some(_) => {}
    }
    if !matches!(b.mode.as_str(), "auto_join" | "suggest") {
        e.add("mode", "must be auto_join or suggest");
    }
    let role = b.role.unwrap_or_else(|| "member".into());
    if role != "member" {
        e.add("role", "must be member");
    }
    e.finish().map_err(ApiError::invalid)?;
    let now = st.clock.now_ms();
    let d = OrgDomain {
        id: IdKind::Domain.generate(),
        org_id: o.org.id.clone(),
        domain: domain.unwrap_or_default(),
        mode: b.mode,
        role,
        // Public by design (it is published in DNS); random so one org cannot guess another's.
        token: tokens::generate("").chars().take(24).collect(),
        verified_at: None,
        created_at: now,
    };
    st.store.add_domain(&d, &caller.ctx(now)).await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}

/// The org's domain claims (owner or admin).
#[utoipa::path(get, path = "/v1/orgs/{org}/domains", tag = "domains", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<DomainView>)))]
async fn list_domains(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<DomainView>>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageMembers)?;
    let (limit, cursor) = params.page(roost_domain::IdKind::Domain)?;
    let page = st.store.list_domains(&o.org.id, limit, cursor).await?;
    Ok(Json(List::from_page(page, DomainView::from)))
}

/// Removes a domain claim (owner or admin). Members who joined through it stay.
#[utoipa::path(delete, path = "/v1/orgs/{org}/domains/{id}", tag = "domains", security(("bearer" = [])),
    responses((status = 204), (status = 404, description = "not_found", body = Problem)))]
async fn remove_domain(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageMembers)?;
    check_id(IdKind::Domain, &id)?;
    st.store.remove_domain(&o.org.id, &id, &caller.ctx(st.clock.now_ms())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Looks the claim's TXT record up (through `dns_resolver` when set): 200 when it carries the
/// expected value, else 422 `domain_unverified`.
#[utoipa::path(post, path = "/v1/orgs/{org}/domains/{id}/verify", tag = "domains", security(("bearer" = [])),
    responses((status = 200, body = DomainView), (status = 404, description = "not_found", body = Problem),
              (status = 409, description = "domain_taken (verified by another org)", body = Problem),
              (status = 422, description = "domain_unverified", body = Problem)))]
async fn verify_domain(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Json<DomainView>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageMembers)?;
    check_id(IdKind::Domain, &id)?;
    let d = st.store.domain(&o.org.id, &id).await?.ok_or_else(ApiError::not_found)?;
    let (name, want) = (domains::verification_name(&d.domain), domains::verification_value(&d.token));
    if d.verified_at.is_none() {
        let unverified = |detail: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "domain_unverified", detail);
        let found = crate::dns::txt_values(&st.settings, &name).await.map_err(unverified)?;
        if !found.iter().any(|v| v.trim() == want) {
            // What DNS answered is public: show it, it is what an operator needs to fix the record.
            return Err(unverified(format!("no TXT record at {name} has the value {want} (found {found:?})")));
        }
        st.store.mark_domain_verified(&o.org.id, &id, &caller.ctx(st.clock.now_ms())).await?;
    }
    let d = st.store.domain(&o.org.id, &id).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(d.into()))
}

/// Joins the orgs whose verified domains take the user's verified address in (`auto_join`), once,
/// on their first sign-in with a verified address. A full org stays a suggestion.
pub(crate) async fn match_domains(st: &AppState, user: &User, ip: Option<String>) -> ApiResult<()> {
    let now = st.clock.now_ms();
    let Some(domain) = domains::of_email(&user.email) else { return Ok(()) };
    if user.email_verified_at.is_none() || !st.store.claim_domain_match(&user.id, now).await? {
        return Ok(());
    }
    let ctx = Ctx { actor: roost_store::Actor::user(&user.id), ip, now };
    for (org, d) in st.store.orgs_for_domain(&domain, &user.id).await? {
        if d.mode != "auto_join" {
            continue;
        }
        let via = json!({"method": "domain", "mode": "auto_join", "domain": d.domain});
        match st.store.join_by_domain(&org.id, &user.id, &d.role, via, &st.settings.catalog, &ctx).await {
            Ok(()) => crate::billing::members_changed(st, &org.id).await,
            Err(StoreError::Limit(Limit::MaxSeats)) | Err(StoreError::Rule(Rule::NotAllowed)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// An org the caller may join because their verified address is at one of its verified domains.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestedOrg {
    org_id: String,
    org_name: String,
    domain: String,
    mode: String,
    role: String,
}

async fn suggestions(st: &AppState, user: &User) -> ApiResult<Vec<SuggestedOrg>> {
    let Some(domain) = domains::of_email(&user.email).filter(|_| user.email_verified_at.is_some()) else {
        return Ok(Vec::new());
    };
    Ok(st
        .store
        .orgs_for_domain(&domain, &user.id)
        .await?
        .into_iter()
        .map(|(o, d)| SuggestedOrg { org_id: o.id, org_name: o.name, domain: d.domain, mode: d.mode, role: d.role })
        .collect())
}

/// Orgs the caller may join through their verified address's domain.
#[utoipa::path(get, path = "/v1/me/suggested-orgs", tag = "domains", security(("bearer" = [])),
    responses((status = 200, body = List<SuggestedOrg>)))]
async fn suggested_orgs(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<List<SuggestedOrg>>> {
    let items = suggestions(&st, caller.user()?).await?;
    Ok(Json(List { items, next_cursor: None }))
}

/// Joins a suggested org (seats permitting); anything not suggested to the caller is not found.
#[utoipa::path(post, path = "/v1/me/suggested-orgs/{org}/join", tag = "domains", security(("bearer" = [])),
    responses((status = 200, body = SuggestedOrg), (status = 403, description = "plan_limit", body = Problem),
              (status = 404, description = "not_found", body = Problem)))]
async fn join_suggested(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<SuggestedOrg>> {
    let user = caller.user()?;
    check_id(IdKind::Org, &org)?;
    let s = suggestions(&st, user).await?.into_iter().find(|s| s.org_id == org).ok_or_else(ApiError::not_found)?;
    let via = json!({"method": "domain", "mode": s.mode, "domain": s.domain});
    let ctx = caller.ctx(st.clock.now_ms());
    st.store.join_by_domain(&s.org_id, &user.id, &s.role, via, &st.settings.catalog, &ctx).await?;
    crate::billing::members_changed(&st, &s.org_id).await;
    Ok(Json(s))
}
