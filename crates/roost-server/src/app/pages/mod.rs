//! The dashboard's pages, one module per area, and what they share: the layout (topbar, workspace
//! switcher, navigation), form feedback, and clear messages for the API's problem codes.

pub mod account;
pub mod audit;
pub mod auth;
pub mod credits;
pub mod invoices;
pub mod members;
pub mod orgs;
pub mod reset;
pub mod signals;
pub mod sso;
pub mod two_factor;
pub mod webhooks;
pub mod workspace;
pub mod ws_admin;

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::call::Problem;
use super::session::Session;
use crate::AppState;

/// What every signed-in page shows around its content.
pub struct Layout {
    pub title: String,
    pub product: String,
    pub logo_url: Option<String>,
    pub user_name: String,
    pub csrf: String,
    /// The workspace switcher: personal first, then each org's workspaces.
    pub groups: Vec<SwitchGroup>,
    /// Links for the org of the page.
    pub nav: Vec<Nav>,
    /// A one-line confirmation of what was just done.
    pub notice: Option<String>,
}

/// One org in the switcher.
pub struct SwitchGroup {
    pub label: String,
    pub options: Vec<SwitchOpt>,
}

/// One workspace in the switcher.
pub struct SwitchOpt {
    pub id: String,
    pub name: String,
    pub current: bool,
}

/// A navigation link.
pub struct Nav {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

impl Layout {
    /// The layout of a page titled `title` about `org` (the active workspace's org when `None`);
    /// `here` is the page's path, to mark its link.
    pub fn new(st: &AppState, s: &Session, title: &str, org: Option<&str>, here: &str) -> Self {
        let me = &s.me;
        let active = &me.active_workspace_id;
        let mut ms: Vec<_> = me.memberships.iter().collect();
        // Personal first; the rest keep the API's order.
        ms.sort_by_key(|m| !m.personal());
        let groups = ms
            .iter()
            .filter(|m| !m.workspaces.is_empty())
            .map(|m| SwitchGroup {
                label: if m.personal() { "Personal".into() } else { m.org_name.clone() },
                options: m
                    .workspaces
                    .iter()
                    .map(|w| SwitchOpt { id: w.id.clone(), name: w.name.clone(), current: &w.id == active })
                    .collect(),
            })
            .collect();
        let org = org.map(str::to_string).or_else(|| me.ws(active).map(|(m, _)| m.org_id.clone()));
        let mut nav = vec![Nav { href: format!("/app/w/{active}"), label: "Workspace", current: false }];
        if let Some(o) = &org {
            for (path, label) in
                [("", "Organization"), ("/members", "Members"), ("/credits", "Credits"), ("/audit", "Audit log")]
            {
                nav.push(Nav { href: format!("/app/o/{o}{path}"), label, current: false });
            }
            // Invoices with billing on, for owner and billing (the page would only refuse anyone else).
            if st.settings.billing_on() && me.org(o).is_some_and(|m| m.may(roost_domain::Permission::ManageBilling)) {
                nav.push(Nav { href: format!("/app/o/{o}/invoices"), label: "Invoices", current: false });
            }
            // Webhooks only for who may manage them (the page would only refuse anyone else).
            if me.org(o).is_some_and(|m| m.may(roost_domain::Permission::ManageWebhooks)) {
                nav.push(Nav { href: format!("/app/o/{o}/webhooks"), label: "Webhooks", current: false });
            }
        }
        nav.push(Nav { href: "/app/orgs/new".into(), label: "New organization", current: false });
        nav.push(Nav { href: "/app/account".into(), label: "Account", current: false });
        for n in &mut nav {
            n.current = n.href == here;
        }
        let d = &st.settings.dashboard;
        Self {
            title: title.to_string(),
            product: d.product_name.clone(),
            logo_url: d.logo_url.clone(),
            user_name: me.user.name.clone(),
            csrf: s.csrf.clone(),
            groups,
            nav,
            notice: None,
        }
    }

    /// Adds a confirmation line.
    pub fn notice(mut self, n: Option<String>) -> Self {
        self.notice = n;
        self
    }
}

/// A refusal to show next to the form (`form`) that caused it.
#[derive(Default)]
pub struct Flash {
    pub form: &'static str,
    pub problem: Option<Problem>,
}

impl Flash {
    /// The refusal of `form`, if it caused one.
    pub fn for_form(form: &'static str, p: Problem) -> Self {
        Self { form, problem: Some(p) }
    }

    /// The message for `form`, when it is the one refused.
    pub fn msg(&self, form: &str) -> Option<String> {
        self.problem.as_ref().filter(|_| self.form == form).map(human)
    }

    /// The message for one field of `form`.
    pub fn field(&self, form: &str, field: &str) -> Option<String> {
        self.problem.as_ref().filter(|_| self.form == form).and_then(|p| p.field(field))
    }

    /// The HTTP status the page answers with: the refusal's, else 200.
    pub fn status(&self) -> StatusCode {
        self.problem.as_ref().map_or(StatusCode::OK, |p| p.status)
    }
}

/// A clear sentence for a problem code.
pub fn human(p: &Problem) -> String {
    let b = &p.body;
    match p.code.as_str() {
        "invalid_request" => format!("Please check the highlighted fields: {}.", p.detail),
        "insufficient_credits" => format!("Not enough credits: {} available.", b["available"]),
        "budget_exceeded" => format!(
            "A {} budget is reached ({} of {} used); it resets {}.",
            b["scope"].as_str().unwrap_or(""),
            b["used"],
            b["limit"],
            b["resets_at"].as_str().unwrap_or("next cycle")
        ),
        "plan_limit" => format!(
            "Your plan's limit ({}) is reached. Upgrade the plan to add more.",
            b["limit"].as_str().unwrap_or("a limit")
        ),
        "forbidden" => "Your role does not allow this.".into(),
        "not_found" => "That does not exist, or you cannot see it.".into(),
        "paid_plan_required" => "Organizations need a paid plan: pick one, or start its free trial.".into(),
        "trial_used" => "This organization has already had its trial.".into(),
        "email_taken" => "An account with this email already exists. Sign in instead.".into(),
        "invalid_credentials" => "Wrong email or password.".into(),
        "owner_cannot_be_removed" => "The owner cannot be removed. Transfer ownership first.".into(),
        "personal_org" => "A personal organization cannot do this: create an organization for a team.".into(),
        "workspace_protected" => "The primary and personal workspaces cannot be deleted.".into(),
        "invitation_invalid" => "This invitation was used, revoked or has expired. Ask for a new one.".into(),
        "invitation_email_mismatch" => {
            "This invitation was sent to another email address. Sign in with that address to accept it.".into()
        }
        "transfer_not_allowed" => "Resources cannot move from an organization into a personal workspace.".into(),
        "idempotency_conflict" => "This form was already sent with other values. Reload the page.".into(),
        "rate_limited" => "Too many requests. Wait a moment and try again.".into(),
        "totp_required" => "Enter the code from your authenticator app.".into(),
        "two_factor_required" => {
            "Two-factor sign-in is required here. Turn it on in your account settings, then come back.".into()
        }
        "totp_enabled" => "Two-factor sign-in is already on.".into(),
        "totp_not_started" => "Two-factor sign-in is off: turn it on first.".into(),
        "token_invalid" => "This link was used already or has expired. Ask for a new one.".into(),
        "webhook_url_private" => "That address is private or local: webhooks go to public addresses only.".into(),
        "webhook_url_unresolvable" => "That address could not be found. Check the host name.".into(),
        _ => p.detail.clone(),
    }
}

/// A page that only says what went wrong (an unknown page, a refused form, a server error).
#[derive(Template, WebTemplate)]
#[template(path = "app/error.html")]
pub struct ErrorPage {
    pub message: String,
    pub status: u16,
    /// The org requires two-factor and the person has it off: the page says where to turn it on.
    pub two_factor: bool,
}

/// The error page with `status`.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    (status, ErrorPage { message: message.to_string(), status: status.as_u16(), two_factor: false }).into_response()
}

/// The error page for a problem from the API (404 for other tenants' things, as the API answers).
pub fn problem_page(p: &Problem) -> Response {
    let two_factor = p.code == "two_factor_required";
    (p.status, ErrorPage { message: human(p), status: p.status.as_u16(), two_factor }).into_response()
}

/// Whether a refusal replaces the whole page rather than sitting next to its form: another
/// tenant's thing (404, as the API answers) or an action the person's role does not allow (a
/// form the page never offered them, so there is nowhere to put the message).
pub fn whole_page(p: &Problem) -> bool {
    p.status == StatusCode::NOT_FOUND || p.code == "forbidden"
}

/// A `<select>` or checkbox value from a form as the API's boolean.
pub fn on(v: &str) -> bool {
    matches!(v, "on" | "true" | "1" | "yes")
}

/// 303 to `path` after a form succeeded, with a confirmation from a fixed list (`?done=`).
pub fn done(path: &str, what: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={what}")).into_response()
}

/// The confirmation line for `?done=` (only known words: nothing a link can inject).
pub fn notice_for(done: Option<&str>) -> Option<String> {
    let s = match done? {
        "switched" => "Switched workspace.",
        "org" => "Organization created.",
        "workspace" => "Workspace created.",
        "role" => "Role changed.",
        "removed" => "Member removed.",
        "owner" => "Ownership transferred.",
        "revoked" => "Revoked.",
        "rotated" => "Key rotated.",
        "resource" => "Resource created.",
        "deleted" => "Deleted.",
        "budget" => "Budget saved.",
        "topup" => "Credits added.",
        "joined" => "Invitation accepted: welcome!",
        "renamed" => "Saved.",
        "plan" => "Plan changed.",
        "password" => "Password changed. Your other sessions have ended.",
        "your_name" => "Name changed.",
        "totp_off" => "Two-factor sign-in is off.",
        "session_ended" => "That session has ended.",
        "verification_sent" => "A verification link is on its way to your email address.",
        "verified" => "Your email address is verified.",
        "require_2fa" => "Two-factor setting saved.",
        "alerts" => "Low-balance alert saved.",
        "auto_reload" => "Auto-reload saved.",
        "webhook_deleted" => "Webhook endpoint deleted.",
        "webhook_updated" => "Webhook endpoint updated.",
        _ => return None,
    };
    Some(s.to_string())
}

/// A query string of the non-empty `pairs`, for links that keep a page's filters.
pub fn qs(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().filter(|(_, v)| !v.is_empty()).copied().collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// The `?key=` value of a query string.
pub fn query(q: &Option<String>, key: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.as_deref()?).ok()?;
    pairs.into_iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v)
}
