//! An org's webhooks (owner, admin): its endpoints, a new one (its secret shown once), rotating a
//! secret, a test event, turning an endpoint off and on, deleting it, and each endpoint's
//! deliveries with paging.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roost_domain::ledger::EventType;
use serde_json::{Value, json};

use super::workspace::Shown;
use super::{Flash, Layout, done, error_page, notice_for, on, problem_page, qs, query, whole_page};
use crate::AppState;
use crate::app::call::Problem;
use crate::app::model::{Delivery, List, Webhook};
use crate::app::session::{Posted, Session};

/// The webhook routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/o/{org}/webhooks", get(show).post(create))
        .route("/app/o/{org}/webhooks/{id}", get(detail))
        .route("/app/o/{org}/webhooks/{id}/rotate", post(rotate))
        .route("/app/o/{org}/webhooks/{id}/test", post(test))
        .route("/app/o/{org}/webhooks/{id}/enabled", post(set_enabled))
        .route("/app/o/{org}/webhooks/{id}/delete", post(delete))
}

/// The event types an endpoint may ask for (the test event is sent on request only).
fn types() -> Vec<&'static str> {
    EventType::ALL.iter().filter(|t| **t != EventType::WebhookTest).map(|t| t.as_str()).collect()
}

/// The webhooks page.
#[derive(Template, WebTemplate)]
#[template(path = "app/webhooks.html")]
pub struct WebhooksPage {
    l: Layout,
    org_id: String,
    hooks: Vec<Webhook>,
    types: Vec<&'static str>,
    /// The create form as sent (kept after a refusal).
    url: String,
    description: String,
    chosen: Vec<String>,
    shown: Option<Shown>,
    flash: Flash,
}

impl WebhooksPage {
    /// Whether the create form had event type `t` ticked.
    fn picked(&self, t: &str) -> bool {
        self.chosen.iter().any(|c| c == t)
    }
}

/// What an action leaves on the page.
#[derive(Default)]
struct After {
    flash: Flash,
    notice: Option<String>,
    shown: Option<Shown>,
    form: Option<(String, String, Vec<String>)>,
}

async fn render(st: &AppState, s: &Session, org: &str, a: After) -> Response {
    let hooks: List<Webhook> = match s.call().get(&format!("/v1/orgs/{org}/webhooks?limit=200")).await {
        Ok(h) => h,
        Err(e) => return problem_page(&e),
    };
    let here = format!("/app/o/{org}/webhooks");
    let l = Layout::new(st, s, "Webhooks", Some(org), &here).notice(a.notice);
    let (url, description, chosen) = a.form.unwrap_or_default();
    let page = WebhooksPage {
        l,
        org_id: org.to_string(),
        hooks: hooks.items,
        types: types(),
        url,
        description,
        chosen,
        shown: a.shown,
        flash: a.flash,
    };
    (page.flash.status(), page).into_response()
}

async fn show(State(st): State<AppState>, s: Session, Path(org): Path<String>, RawQuery(q): RawQuery) -> Response {
    render(&st, &s, &org, After { notice: notice_for(query(&q, "done").as_deref()), ..After::default() }).await
}

/// The page again after an action on `form`: the refusal beside it (whole-page for 404 and roles).
async fn refused(st: &AppState, s: &Session, org: &str, form: &'static str, e: Problem, kept: After) -> Response {
    if whole_page(&e) {
        return problem_page(&e);
    }
    render(st, s, org, After { flash: Flash::for_form(form, e), ..kept }).await
}

/// `POST /v1/orgs/{org}/webhooks`; the secret is shown this once.
async fn create(State(st): State<AppState>, Path(org): Path<String>, p: Posted) -> Response {
    let f = &p.f;
    let chosen: Vec<String> = f.all("events").into_iter().map(String::from).collect();
    let events: Vec<&str> =
        if f.get("scope") == "some" { chosen.iter().map(String::as_str).collect() } else { vec!["*"] };
    let mut body = json!({"url": f.get("url"), "events": events});
    if let Some(d) = f.opt("description") {
        body["description"] = d.into();
    }
    let r: Result<Value, Problem> =
        p.s.call().send(Method::POST, &format!("/v1/orgs/{org}/webhooks"), Some(body), None).await;
    match r {
        Ok(v) => {
            let shown = Shown { what: "endpoint's signing secret", secret: v["secret"].as_str().unwrap_or("").into() };
            let notice = Some("Webhook endpoint created.".to_string());
            render(&st, &p.s, &org, After { shown: Some(shown), notice, ..After::default() }).await
        }
        Err(e) => {
            let kept =
                After { form: Some((f.get("url").into(), f.get("description").into(), chosen)), ..After::default() };
            refused(&st, &p.s, &org, "create", e, kept).await
        }
    }
}

/// `POST /v1/webhooks/{id}/rotate-secret`; the new secret is shown this once.
async fn rotate(State(st): State<AppState>, Path((org, id)): Path<(String, String)>, p: Posted) -> Response {
    let r: Result<Value, Problem> =
        p.s.call().send(Method::POST, &format!("/v1/webhooks/{id}/rotate-secret"), None, None).await;
    match r {
        Ok(v) => {
            let shown = Shown { what: "signing secret", secret: v["secret"].as_str().unwrap_or("").into() };
            let until = v["old_secret_valid_until"].as_str().map(crate::app::model::readable).unwrap_or_default();
            let notice = Some(format!("Secret rotated. The old secret keeps signing alongside until {until}."));
            render(&st, &p.s, &org, After { shown: Some(shown), notice, ..After::default() }).await
        }
        Err(e) => refused(&st, &p.s, &org, "hooks", e, After::default()).await,
    }
}

/// `POST /v1/webhooks/{id}/test`: how the endpoint answered, as a notice.
async fn test(State(st): State<AppState>, Path((org, id)): Path<(String, String)>, p: Posted) -> Response {
    let r: Result<Delivery, Problem> =
        p.s.call().send(Method::POST, &format!("/v1/webhooks/{id}/test"), None, None).await;
    match r {
        Ok(d) => {
            let notice = match (d.status_code, d.error) {
                (Some(c), _) if (200..300).contains(&c) => {
                    format!("Test event delivered: the endpoint answered {c} in {} ms.", d.duration_ms)
                }
                (Some(c), _) => format!("Test event sent, but the endpoint answered {c} (2xx means delivered)."),
                (None, Some(e)) => format!("Test event not delivered: {e}."),
                (None, None) => "Test event not delivered.".to_string(),
            };
            render(&st, &p.s, &org, After { notice: Some(notice), ..After::default() }).await
        }
        Err(e) => refused(&st, &p.s, &org, "hooks", e, After::default()).await,
    }
}

/// `PATCH /v1/webhooks/{id} {enabled}` (turning it on again retries the event it stopped at).
async fn set_enabled(State(st): State<AppState>, Path((org, id)): Path<(String, String)>, p: Posted) -> Response {
    let body = json!({"enabled": on(p.f.get("enabled"))});
    let r: Result<Value, Problem> =
        p.s.call().send(Method::PATCH, &format!("/v1/webhooks/{id}"), Some(body), None).await;
    match r {
        Ok(_) => done(&format!("/app/o/{org}/webhooks"), "webhook_updated"),
        Err(e) => refused(&st, &p.s, &org, "hooks", e, After::default()).await,
    }
}

/// `DELETE /v1/webhooks/{id}`.
async fn delete(State(st): State<AppState>, Path((org, id)): Path<(String, String)>, p: Posted) -> Response {
    let r: Result<Value, Problem> = p.s.call().send(Method::DELETE, &format!("/v1/webhooks/{id}"), None, None).await;
    match r {
        Ok(_) => done(&format!("/app/o/{org}/webhooks"), "webhook_deleted"),
        Err(e) => refused(&st, &p.s, &org, "hooks", e, After::default()).await,
    }
}

/// One endpoint with its deliveries.
#[derive(Template, WebTemplate)]
#[template(path = "app/webhook.html")]
pub struct WebhookPage {
    l: Layout,
    org_id: String,
    hook: Webhook,
    deliveries: Vec<Delivery>,
    older: Option<String>,
}

async fn detail(
    State(st): State<AppState>,
    s: Session,
    Path((org, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let c = s.call();
    let hook: Webhook = match c.get(&format!("/v1/webhooks/{id}")).await {
        Ok(h) => h,
        Err(e) => return problem_page(&e),
    };
    // Another org's endpoint under this org's path: not here.
    if hook.org_id != org {
        return error_page(StatusCode::NOT_FOUND, "That does not exist, or you cannot see it.");
    }
    let dq = qs(&[("cursor", &query(&q, "cursor").unwrap_or_default()), ("limit", "25")]);
    let list: List<Delivery> = match c.get(&format!("/v1/webhooks/{id}/deliveries?{dq}")).await {
        Ok(l) => l,
        Err(e) => return problem_page(&e),
    };
    let here = format!("/app/o/{org}/webhooks");
    let l = Layout::new(&st, &s, "Webhook deliveries", Some(&org), &here);
    let older = list.next_cursor.map(|n| qs(&[("cursor", &n)]));
    (WebhookPage { l, org_id: org, hook, deliveries: list.items, older }).into_response()
}
