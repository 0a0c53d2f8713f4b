//! Mail: what roost writes to people (rendered here, plain text and HTML), queued in the store's
//! outbox inside the transaction of its cause, and sent after commit by [`sender::run`].

pub mod alerts;
pub mod sender;

use roost_domain::IdKind;
use roost_store::NewMail;

pub use sender::Mailer;

use crate::Settings;

/// A rendered mail, ready for the outbox.
#[derive(Debug, Clone)]
pub struct Mail {
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    /// The outbox row for this mail, with a fresh id.
    pub fn into_outbox(self) -> NewMail {
        NewMail {
            id: IdKind::Mail.generate(),
            kind: self.kind.into(),
            to: self.to,
            subject: self.subject,
            text: self.text,
            html: self.html,
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link into the dashboard: `public_url` + `path` (which starts with `/app/`).
pub fn link(settings: &Settings, path: &str) -> String {
    format!("{}{path}", settings.public_url)
}

/// One mail in both forms from the same parts: a greeting line, what happened, one action
/// (label and link) and a closing note.
struct Parts<'a> {
    lead: String,
    action: &'a str,
    url: &'a str,
    note: String,
}

fn render(settings: &Settings, kind: &'static str, to: &str, subject: String, p: Parts<'_>) -> Mail {
    let product = &settings.product_name;
    let text = format!("{}\n\n{}:\n{}\n\n{}\n\n— {product}\n", p.lead, p.action, p.url, p.note);
    let html = format!(
        "<!doctype html>\n<html><body style=\"font-family: sans-serif\">\n<p>{}</p>\n<p><a href=\"{}\">{}</a></p>\n<p style=\"color: #555\">{}</p>\n<p>— {}</p>\n</body></html>\n",
        escape(&p.lead),
        escape(p.url),
        escape(p.action),
        escape(&p.note),
        escape(product)
    );
    Mail { kind, to: to.into(), subject: format!("[{product}] {subject}"), text, html }
}

/// The mail that invites `to` into an org, with the accept link.
pub fn invitation(settings: &Settings, to: &str, inviter: &str, org: &str, token: &str, expires: &str) -> Mail {
    let url = link(settings, &format!("/app/invitations/accept?token={token}"));
    let parts = Parts {
        lead: format!("{inviter} invited you to join {org} on {}.", settings.product_name),
        action: "Accept the invitation",
        url: &url,
        note: format!("The invitation expires at {expires}. If you did not expect it, ignore this mail."),
    };
    render(settings, "invitation", to, format!("{inviter} invited you to {org}"), parts)
}

/// The mail that proves `to` receives mail: a link with an `rsv_` token.
pub fn email_verification(settings: &Settings, to: &str, name: &str, token: &str) -> Mail {
    let url = link(settings, &format!("/app/verify-email?token={token}"));
    let parts = Parts {
        lead: format!("Hello {name}, please confirm that {to} is your address on {}.", settings.product_name),
        action: "Confirm your email address",
        url: &url,
        note: "The link works once, for one hour. If you did not ask for it, ignore this mail.".into(),
    };
    render(settings, "email_verification", to, "Confirm your email address".into(), parts)
}

/// The mail that lets the owner of `to` set a new password: a link with an `rsr_` token.
pub fn password_reset(settings: &Settings, to: &str, token: &str) -> Mail {
    let url = link(settings, &format!("/app/reset-password?token={token}"));
    let parts = Parts {
        lead: format!("Someone asked to reset the password of {to} on {}.", settings.product_name),
        action: "Choose a new password",
        url: &url,
        note: "The link works once, for one hour, and signs you out everywhere. If you did not ask for it, ignore this mail: your password stays as it is.".into(),
    };
    render(settings, "password_reset", to, "Reset your password".into(), parts)
}

/// The notice that two-factor was turned on or off for the account at `to`.
pub fn two_factor_changed(settings: &Settings, to: &str, on: bool) -> Mail {
    let url = link(settings, "/app/account");
    let (what, subject) = if on {
        (
            "turned on: signing in now also asks for a code from your authenticator app",
            "Two-factor authentication is on",
        )
    } else {
        ("turned off: signing in asks for your password only", "Two-factor authentication is off")
    };
    let parts = Parts {
        lead: format!("Two-factor authentication for {to} on {} was {what}.", settings.product_name),
        action: "Review your account",
        url: &url,
        note: "If this was not you, reset your password at once and turn two-factor on again.".into(),
    };
    render(settings, "two_factor", to, subject.into(), parts)
}

/// The notice that the account at `to` was signed in to from an IP address and user agent it
/// was never signed in from before.
pub fn new_sign_in(settings: &Settings, to: &str, ip: Option<&str>, user_agent: Option<&str>, at: &str) -> Mail {
    let url = link(settings, "/app/account");
    let parts = Parts {
        lead: format!(
            "Someone signed in to {to} on {} from a new place: IP address {}, {} at {at}.",
            settings.product_name,
            ip.unwrap_or("unknown"),
            user_agent.map_or_else(|| "an unknown client".to_string(), |ua| format!("client \"{ua}\"")),
        ),
        action: "Review your sessions",
        url: &url,
        note: "If this was you, there is nothing to do. If not, end that session and change your password at once."
            .into(),
    };
    render(settings, "new_sign_in", to, "New sign-in to your account".into(), parts)
}
