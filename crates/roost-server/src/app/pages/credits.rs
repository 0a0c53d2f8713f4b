//! Credits of an org: wallets and their grants, top-up, the journal (paging, filters), and usage
//! charts by member, workspace, key or action over a chosen range, with each group's share.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roost_domain::time::{DAY_MS, to_rfc3339};
use roost_domain::{Permission, tokens};
use serde_json::{Value, json};

use super::signals::{self, Signals};
use super::workspace::num;
use super::{Flash, Layout, done, notice_for, problem_page, qs, query, whole_page};
use crate::AppState;
use crate::app::call::{Call, Problem};
use crate::app::chart::{Bar, bars};
use crate::app::model::{JournalEntry, Key, List, Member, Usage, Wallet, Workspace};
use crate::app::session::{Posted, Session};

/// The credits routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/app/o/{org}/credits", get(show)).route("/app/o/{org}/wallets/{wallet}/topup", post(topup))
}

/// A row of the usage table.
pub struct UsageRow {
    pub label: String,
    pub amount: i64,
    pub count: i64,
    pub percent: String,
}

/// The credits page.
#[derive(Template, WebTemplate)]
#[template(path = "app/credits.html")]
pub struct CreditsPage {
    l: Layout,
    org_id: String,
    wallets: Vec<Wallet>,
    may_topup: bool,
    may_usage: bool,
    /// A fresh idempotency key for the top-up forms: sending a form twice adds credits once.
    idem: String,
    workspaces: Vec<Workspace>,
    /// Journal filters and page.
    f_ws: String,
    f_actor: String,
    journal: Vec<JournalEntry>,
    journal_error: Option<String>,
    older: Option<String>,
    /// Usage.
    group_by: String,
    range: String,
    from: String,
    to: String,
    usage_total: i64,
    usage_rows: Vec<UsageRow>,
    chart: String,
    usage_error: Option<String>,
    names: HashMap<String, String>,
    /// Alerts, auto-reload and events.
    sig: Signals,
    flash: Flash,
}

impl CreditsPage {
    /// A readable name for an id (a workspace, member or key), else the id.
    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }
}

/// Names of the org's workspaces, members and keys, for the journal and the charts.
async fn names(c: &Call<'_>, org: &str, workspaces: &[Workspace]) -> HashMap<String, String> {
    let mut n = HashMap::new();
    for w in workspaces {
        n.insert(w.id.clone(), w.name.clone());
        if let Ok(keys) = c.get::<List<Key>>(&format!("/v1/workspaces/{}/keys?limit=500", w.id)).await {
            for k in keys.items {
                n.insert(k.id, format!("key {}", k.name));
            }
        }
    }
    if let Ok(ms) = c.get::<List<Member>>(&format!("/v1/orgs/{org}/members?limit=500")).await {
        for m in ms.items {
            n.insert(m.user_id, m.email);
        }
    }
    n
}

/// The credits page of `org` with the query `q`, and a refusal to show.
pub(super) async fn render(st: &AppState, s: &Session, org: &str, q: &Option<String>, flash: Flash) -> Response {
    let c = s.call();
    let m = s.me.org(org);
    let may = |p| m.is_some_and(|m| m.may(p));
    let wallets: List<Wallet> = match c.get(&format!("/v1/orgs/{org}/wallets")).await {
        Ok(w) => w,
        Err(e) => return problem_page(&e),
    };
    let workspaces = c.get::<List<Workspace>>(&format!("/v1/orgs/{org}/workspaces?limit=500")).await;
    let workspaces = workspaces.map(|l| l.items).unwrap_or_default();
    let may_usage = may(Permission::ReadUsage);
    // The journal: the whole org's for who may read usage, else one workspace's.
    let f_ws = query(q, "ws").unwrap_or_else(|| {
        if may_usage {
            String::new()
        } else {
            let active = &s.me.active_workspace_id;
            workspaces.iter().find(|w| &w.id == active).or(workspaces.first()).map(|w| w.id.clone()).unwrap_or_default()
        }
    });
    let f_actor = query(q, "actor").unwrap_or_default();
    let cursor = query(q, "cursor").unwrap_or_default();
    let jq = qs(&[("actor", &f_actor), ("cursor", &cursor), ("limit", "25")]);
    let path = if f_ws.is_empty() {
        format!("/v1/orgs/{org}/transactions?{jq}")
    } else {
        format!("/v1/workspaces/{f_ws}/transactions?{jq}")
    };
    let (journal, journal_error, older) = match c.get::<List<JournalEntry>>(&path).await {
        Ok(l) => {
            let older = l.next_cursor.map(|n| qs(&[("ws", &f_ws), ("actor", &f_actor), ("cursor", &n)]));
            (l.items, None, older)
        }
        Err(e) if e.status == StatusCode::NOT_FOUND && !f_ws.is_empty() => return problem_page(&e),
        Err(e) => (vec![], Some(super::human(&e)), None),
    };
    // Usage over the chosen range.
    let group_by = query(q, "group_by").unwrap_or_else(|| "workspace".into());
    let range = query(q, "range").unwrap_or_else(|| "cycle".into());
    let (from, to) = (query(q, "from").unwrap_or_default(), query(q, "to").unwrap_or_default());
    let now = st.clock.now_ms();
    let (api_from, api_to) = match (range.as_str(), from.as_str(), to.as_str()) {
        ("custom", f, t) => (
            if f.is_empty() { String::new() } else { format!("{f}T00:00:00Z") },
            if t.is_empty() { String::new() } else { format!("{t}T23:59:59.999Z") },
        ),
        ("7d", ..) => (to_rfc3339(now - 7 * DAY_MS), String::new()),
        ("30d", ..) => (to_rfc3339(now - 30 * DAY_MS), String::new()),
        _ => (String::new(), String::new()),
    };
    let names = names(&c, org, &workspaces).await;
    let (mut usage_total, mut usage_rows, mut chart, mut usage_error) = (0, vec![], String::new(), None);
    if may_usage {
        let uq = qs(&[("group_by", &group_by), ("from", &api_from), ("to", &api_to)]);
        match c.get::<Usage>(&format!("/v1/orgs/{org}/usage?{uq}")).await {
            Ok(u) => {
                usage_total = u.total;
                let label = |k: &Option<String>| match k {
                    Some(k) => names.get(k).cloned().unwrap_or_else(|| k.clone()),
                    None => "(none)".into(),
                };
                let b: Vec<Bar> =
                    u.groups.iter().map(|g| Bar { label: label(&g.key), amount: g.amount, share: g.share }).collect();
                if !b.is_empty() {
                    chart = bars(&format!("Credits used by {group_by}"), &b);
                }
                usage_rows = u
                    .groups
                    .iter()
                    .map(|g| UsageRow {
                        label: label(&g.key),
                        amount: g.amount,
                        count: g.count,
                        percent: format!("{:.1}%", g.share * 100.0),
                    })
                    .collect();
            }
            Err(e) => usage_error = Some(super::human(&e)),
        }
    }
    let sig = signals::load(
        &c,
        org,
        &wallets.items,
        &names,
        may(Permission::WatchCredits),
        may(Permission::ManageBilling),
        q,
    )
    .await;
    let here = format!("/app/o/{org}/credits");
    let l = Layout::new(st, s, "Credits", Some(org), &here).notice(notice_for(query(q, "done").as_deref()));
    let page = CreditsPage {
        l,
        org_id: org.to_string(),
        wallets: wallets.items,
        may_topup: may(Permission::ManageBilling),
        may_usage,
        idem: tokens::generate("dash_"),
        workspaces,
        f_ws,
        f_actor,
        journal,
        journal_error,
        older,
        group_by,
        range,
        from,
        to,
        usage_total,
        usage_rows,
        chart,
        usage_error,
        names,
        sig,
        flash,
    };
    (page.flash.status(), page).into_response()
}

async fn show(State(st): State<AppState>, s: Session, Path(org): Path<String>, RawQuery(q): RawQuery) -> Response {
    render(&st, &s, &org, &q, Flash::default()).await
}

async fn topup(State(st): State<AppState>, Path((org, wallet)): Path<(String, String)>, p: Posted) -> Response {
    let body = json!({"amount": num(p.f.get("amount"))});
    let path = format!("/v1/orgs/{org}/wallets/{wallet}/topups");
    let idem = p.f.opt("idempotency_key").map(str::to_string).unwrap_or_else(|| tokens::generate("dash_"));
    let r: Result<Value, Problem> = p.s.call().send(Method::POST, &path, Some(body), Some(&idem)).await;
    match r {
        Ok(_) => done(&format!("/app/o/{org}/credits"), "topup"),
        Err(e) if whole_page(&e) => problem_page(&e),
        Err(e) => render(&st, &p.s, &org, &None, Flash::for_form("topup", e)).await,
    }
}
