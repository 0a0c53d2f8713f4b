//! What the credits page adds for people who watch the money: each wallet's low-balance alert
//! (owner, admin, billing), its auto-reload (owner, billing) and the org's recent events with a type
//! filter and paging (owner, admin, billing).

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::post;
use roost_domain::ledger::EventType;
use serde_json::{Value, json};

use super::credits::render;
use super::workspace::num;
use super::{Flash, done, on, problem_page, qs, query, whole_page};
use crate::AppState;
use crate::app::call::{Call, Problem};
use crate::app::model::{AutoReload, List, OrgEvent, Wallet};
use crate::app::session::Posted;

/// The routes of the alert and auto-reload forms.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/o/{org}/wallets/{wallet}/alerts", post(set_alerts))
        .route("/app/o/{org}/wallets/{wallet}/auto-reload", post(set_auto_reload))
}

/// One event as the page lists it.
pub struct EventLine {
    pub kind: String,
    pub at: String,
    pub workspace_id: Option<String>,
    pub summary: String,
}

/// The alerts, auto-reloads and events of an org, as far as the person may see them.
#[derive(Default)]
pub struct Signals {
    /// May set alerts and read events (owner, admin, billing).
    pub may_watch: bool,
    /// Auto-reload per wallet id (loaded only for owner and billing).
    pub reloads: Vec<(String, AutoReload)>,
    pub events: Vec<EventLine>,
    pub events_error: Option<String>,
    /// The type filter (`""`: all).
    pub ev_type: String,
    /// The query string of the next (older) page of events.
    pub ev_older: Option<String>,
    /// Every event type, for the filter.
    pub types: Vec<&'static str>,
}

impl Signals {
    /// The auto-reload of wallet `id`, if the person may manage it.
    pub fn reload(&self, id: &str) -> Option<&AutoReload> {
        self.reloads.iter().find(|(w, _)| w == id).map(|(_, r)| r)
    }
}

/// A short, readable line of an event's data: its plain values (ids as the names in `names`),
/// nested ones compact.
pub fn summary(data: &Value, names: &HashMap<String, String>) -> String {
    let Some(obj) = data.as_object() else { return String::new() };
    let parts: Vec<String> = obj
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {}", names.get(s).unwrap_or(s)),
            Value::Null => format!("{k}: none"),
            other => format!("{k}: {other}"),
        })
        .collect();
    let s = parts.join(", ");
    if s.chars().count() > 200 { format!("{}…", s.chars().take(200).collect::<String>()) } else { s }
}

/// Reads what the person may see; `ev_type` and `ev_cursor` in the page's query `q` page the events.
pub async fn load(
    c: &Call<'_>,
    org: &str,
    wallets: &[Wallet],
    names: &HashMap<String, String>,
    may_watch: bool,
    may_reload: bool,
    q: &Option<String>,
) -> Signals {
    let ev_type = query(q, "ev_type").unwrap_or_default();
    let q_cursor = query(q, "ev_cursor").unwrap_or_default();
    let mut s = Signals { may_watch, ev_type, ..Signals::default() };
    if may_reload {
        for w in wallets {
            if let Ok(r) = c.get::<AutoReload>(&format!("/v1/orgs/{org}/wallets/{}/auto-reload", w.id)).await {
                s.reloads.push((w.id.clone(), r));
            }
        }
    }
    if !may_watch {
        return s;
    }
    // `webhook.test` is sent on request to one endpoint, never kept among the org's events.
    s.types = EventType::ALL.iter().filter(|t| **t != EventType::WebhookTest).map(|t| t.as_str()).collect();
    let eq = qs(&[("type", &s.ev_type), ("cursor", &q_cursor), ("limit", "20")]);
    match c.get::<List<OrgEvent>>(&format!("/v1/orgs/{org}/events?{eq}")).await {
        Ok(l) => {
            s.ev_older = l.next_cursor.map(|n| qs(&[("ev_type", &s.ev_type), ("ev_cursor", &n)]));
            s.events = l
                .items
                .into_iter()
                .map(|e| EventLine {
                    summary: summary(&e.data, names),
                    kind: e.r#type,
                    at: e.created_at,
                    workspace_id: e.workspace_id,
                })
                .collect();
        }
        Err(e) => s.events_error = Some(super::human(&e)),
    }
    s
}

/// After a settings form: back to the credits page, or the page with the refusal.
async fn after(
    st: &AppState,
    p: &Posted,
    org: &str,
    form: &'static str,
    r: Result<Value, Problem>,
    what: &str,
) -> Response {
    match r {
        Ok(_) => done(&format!("/app/o/{org}/credits"), what),
        Err(e) if whole_page(&e) => problem_page(&e),
        Err(e) => render(st, &p.s, org, &None, Flash::for_form(form, e)).await,
    }
}

/// `PUT …/alerts {low_balance}`; an empty threshold turns the alert off.
async fn set_alerts(State(st): State<AppState>, Path((org, wallet)): Path<(String, String)>, p: Posted) -> Response {
    let body = json!({"low_balance": num(p.f.get("low_balance"))});
    let path = format!("/v1/orgs/{org}/wallets/{wallet}/alerts");
    let r = p.s.call().send(Method::PUT, &path, Some(body), None).await;
    after(&st, &p, &org, "alerts", r, "alerts").await
}

/// `PUT …/auto-reload {enabled, threshold, amount, monthly_max}`.
async fn set_auto_reload(
    State(st): State<AppState>,
    Path((org, wallet)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let f = &p.f;
    let body = json!({
        "enabled": on(f.get("enabled")),
        "threshold": num(f.get("threshold")),
        "amount": num(f.get("amount")),
        "monthly_max": num(f.get("monthly_max")),
    });
    let path = format!("/v1/orgs/{org}/wallets/{wallet}/auto-reload");
    let r = p.s.call().send(Method::PUT, &path, Some(body), None).await;
    after(&st, &p, &org, "auto_reload", r, "auto_reload").await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::summary;
    use serde_json::json;

    #[test]
    fn a_summary_lists_plain_values_and_stays_short() {
        let names = HashMap::from([("usr_1".to_string(), "ann@example.org".to_string())]);
        let s = summary(&json!({"available": 40, "by": "usr_1", "kind": "credits", "threshold": null}), &names);
        assert_eq!(s, "available: 40, by: ann@example.org, kind: credits, threshold: none");
        let long = summary(&json!({"text": "x".repeat(500)}), &names);
        assert_eq!(long.chars().count(), 201);
        assert_eq!(summary(&json!("not an object"), &names), "");
    }
}
