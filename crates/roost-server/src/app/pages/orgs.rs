//! Organizations: create one (plan picker, trial), its overview (plan, seats, workspaces, usage
//! against quotas), rename, change plan, new workspace.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roost_domain::Permission;
use serde_json::{Value, json};

use super::{Flash, Layout, done, notice_for, problem_page, query, whole_page};
use crate::AppState;
use crate::app::call::Problem;
use crate::app::model::{List, OrgDetail, PlanInfo, Workspace};
use crate::app::session::{Posted, Session};

/// The org routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/orgs/new", get(new_org_page))
        .route("/app/orgs", post(create_org))
        .route("/app/o/{org}", get(show))
        .route("/app/o/{org}/workspaces", post(create_workspace))
        .route("/app/o/{org}/rename", post(rename))
        .route("/app/o/{org}/plan", post(change_plan))
        .route("/app/o/{org}/two-factor", post(require_2fa))
        .route("/app/o/{org}/delete", post(delete_org))
}

/// A plan as the picker shows it.
pub struct PlanRow {
    pub p: PlanInfo,
    pub seats: String,
    pub workspaces: String,
    pub price: String,
}

fn plan_rows(plans: Vec<PlanInfo>) -> Vec<PlanRow> {
    let n = |v: Option<u32>| v.map_or("unlimited".to_string(), |x| x.to_string());
    plans
        .into_iter()
        .map(|p| PlanRow {
            seats: format!("{} included, cap {}", n(p.seats_included), n(p.max_seats)),
            workspaces: n(p.max_workspaces),
            price: match (p.price, p.extra_seat_price) {
                (Some(pr), Some(x)) => {
                    let c = p.currency.clone().unwrap_or_default();
                    format!("{pr} {c} per cycle, extra seats {x} {c} each")
                }
                (Some(pr), None) => format!("{pr} {} per cycle", p.currency.clone().unwrap_or_default()),
                (None, Some(x)) => format!("extra seats {x} {} each", p.currency.clone().unwrap_or_default()),
                (None, None) if p.paid => "paid plan".into(),
                (None, None) => "free".into(),
            },
            p,
        })
        .collect()
}

/// The "new organization" page.
#[derive(Template, WebTemplate)]
#[template(path = "app/org_new.html")]
pub struct NewOrgPage {
    l: Layout,
    plans: Vec<PlanRow>,
    name: String,
    chosen: String,
    flash: Flash,
}

async fn new_org(st: &AppState, s: &Session, name: &str, chosen: &str, flash: Flash) -> Response {
    let plans: Vec<PlanInfo> = match s.call().get("/v1/plans").await {
        Ok(p) => p,
        Err(e) => return problem_page(&e),
    };
    // Organizations are for paid plans (or their trials): the free plan is for personal use.
    let plans: Vec<PlanInfo> = plans.into_iter().filter(|p| p.paid).collect();
    let chosen =
        if chosen.is_empty() { plans.first().map(|p| p.id.clone()).unwrap_or_default() } else { chosen.into() };
    let l = Layout::new(st, s, "New organization", None, "/app/orgs/new");
    let page = NewOrgPage { l, plans: plan_rows(plans), name: name.into(), chosen, flash };
    (page.flash.status(), page).into_response()
}

async fn new_org_page(State(st): State<AppState>, s: Session) -> Response {
    new_org(&st, &s, "", "", Flash::default()).await
}

async fn create_org(State(st): State<AppState>, p: Posted) -> Response {
    let f = &p.f;
    let body = json!({"name": f.get("name"), "plan": f.get("plan"), "trial": f.get("trial") == "on"});
    let r: Result<Value, Problem> = p.s.call().send(Method::POST, "/v1/orgs", Some(body), None).await;
    match r {
        Ok(v) => done(&format!("/app/o/{}", v["org"]["id"].as_str().unwrap_or("")), "org"),
        Err(e) => new_org(&st, &p.s, f.get("name"), f.get("plan"), Flash::for_form("org", e)).await,
    }
}

/// A quota line of the overview.
pub struct Quota {
    pub what: String,
    pub used: u32,
    pub limit: String,
}

/// The org overview.
#[derive(Template, WebTemplate)]
#[template(path = "app/org.html")]
pub struct OrgPage {
    l: Layout,
    org: OrgDetail,
    role: String,
    workspaces: Vec<Workspace>,
    quotas: Vec<Quota>,
    plans: Vec<PlanInfo>,
    may_create_ws: bool,
    may_rename: bool,
    may_bill: bool,
    may_delete: bool,
    /// Only the owner requires two-factor of the members.
    may_require_2fa: bool,
    /// Whether the person has two-factor on (the owner must, to require it).
    my_totp: bool,
    flash: Flash,
}

async fn render(st: &AppState, s: &Session, org_id: &str, flash: Flash, notice: Option<String>) -> Response {
    let c = s.call();
    let org: OrgDetail = match c.get(&format!("/v1/orgs/{org_id}")).await {
        Ok(o) => o,
        Err(e) => return problem_page(&e),
    };
    let ws: List<Workspace> = match c.get(&format!("/v1/orgs/{}/workspaces?limit=500", org.id)).await {
        Ok(w) => w,
        Err(e) => return problem_page(&e),
    };
    let plans: Vec<PlanInfo> = c.get("/v1/plans").await.unwrap_or_default();
    let quotas_of = plans.iter().find(|p| p.id == org.plan).map(|p| p.resource_quotas.clone()).unwrap_or_default();
    let n = |v: Option<u32>| v.map_or("unlimited".to_string(), |x| x.to_string());
    let mut quotas =
        vec![Quota { what: "workspaces".into(), used: org.usage.workspaces, limit: n(org.usage.max_workspaces) }];
    let mut kinds: Vec<&String> = quotas_of.keys().chain(org.usage.resources.keys()).collect();
    kinds.sort();
    kinds.dedup();
    for k in kinds {
        let used = org.usage.resources.get(k).copied().unwrap_or(0);
        quotas.push(Quota { what: format!("{k} resources"), used, limit: n(quotas_of.get(k).copied()) });
    }
    let m = s.me.org(&org.id);
    let may = |p| m.is_some_and(|m| m.may(p));
    let personal = org.kind == "personal";
    let here = format!("/app/o/{}", org.id);
    let l = Layout::new(st, s, &org.name, Some(&org.id), &here).notice(notice);
    let page = OrgPage {
        l,
        role: m.map(|m| m.org_role.clone()).unwrap_or_default(),
        may_create_ws: may(Permission::CreateWorkspace) && !personal,
        may_rename: may(Permission::UpdateOrg),
        may_bill: may(Permission::ManageBilling),
        may_delete: may(Permission::DeleteOrg) && !personal,
        may_require_2fa: m.is_some_and(|m| m.org_role == "owner") && !personal,
        my_totp: s.me.totp_enabled,
        workspaces: ws.items,
        quotas,
        plans,
        org,
        flash,
    };
    (page.flash.status(), page).into_response()
}

async fn show(State(st): State<AppState>, s: Session, Path(org): Path<String>, RawQuery(q): RawQuery) -> Response {
    render(&st, &s, &org, Flash::default(), notice_for(query(&q, "done").as_deref())).await
}

async fn act(
    st: &AppState,
    s: &Session,
    org: &str,
    form: &'static str,
    r: Result<Value, Problem>,
    what: &str,
) -> Response {
    match r {
        Ok(_) => done(&format!("/app/o/{org}"), what),
        Err(e) if whole_page(&e) => problem_page(&e),
        Err(e) => render(st, s, org, Flash::for_form(form, e), None).await,
    }
}

async fn create_workspace(State(st): State<AppState>, Path(org): Path<String>, p: Posted) -> Response {
    let body = json!({"name": p.f.get("name")});
    let r = p.s.call().send(Method::POST, &format!("/v1/orgs/{org}/workspaces"), Some(body), None).await;
    act(&st, &p.s, &org, "workspace", r, "workspace").await
}

async fn rename(State(st): State<AppState>, Path(org): Path<String>, p: Posted) -> Response {
    let body = json!({"name": p.f.get("name")});
    let r = p.s.call().send(Method::PATCH, &format!("/v1/orgs/{org}"), Some(body), None).await;
    act(&st, &p.s, &org, "rename", r, "renamed").await
}

async fn change_plan(State(st): State<AppState>, Path(org): Path<String>, p: Posted) -> Response {
    let body = json!({"plan": p.f.get("plan")});
    let r = p.s.call().send(Method::PUT, &format!("/v1/orgs/{org}/plan"), Some(body), None).await;
    act(&st, &p.s, &org, "plan", r, "plan").await
}

/// Requires two-factor of the org's members, or stops requiring it (`PATCH /v1/orgs/{org}
/// {require_2fa}`, owner only; the owner must have it on).
async fn require_2fa(State(st): State<AppState>, Path(org): Path<String>, p: Posted) -> Response {
    let body = json!({"require_2fa": super::on(p.f.get("require_2fa"))});
    let r = p.s.call().send(Method::PATCH, &format!("/v1/orgs/{org}"), Some(body), None).await;
    act(&st, &p.s, &org, "require_2fa", r, "require_2fa").await
}

/// Deletes the org (owner; never a personal one), then back to the person's own workspace.
async fn delete_org(State(st): State<AppState>, Path(org): Path<String>, p: Posted) -> Response {
    let r: Result<Value, Problem> = p.s.call().send(Method::DELETE, &format!("/v1/orgs/{org}"), None, None).await;
    match r {
        Ok(_) => done("/app", "deleted"),
        Err(e) => act(&st, &p.s, &org, "delete", Err(e), "").await,
    }
}
