//! Alert mails: `credits.low_balance`, `credits.depleted`, `budget.threshold` and
//! `budget.exceeded` events are mailed to their org's owners and billing members. The events are
//! written by the ledger in the charge's own transaction; this reader finds them afterwards, past a
//! cursor stored in the database, so the charge path never waits for (or knows of) mail. Each mail
//! is queued once per event and recipient (a unique key in the outbox), so a second replica
//! reading the same events, or a restart before the cursor moved, queues nothing twice.

use roost_domain::IdKind;
use roost_domain::ledger::EventType;
use roost_store::{AlertRecipient, EventRow, KeyedMail, StoreError};
use serde_json::Value;

use super::{Mail, Parts, link, render};
use crate::{AppState, Settings};

/// The cursor's name in `event_cursors`.
const CURSOR: &str = "alert_mail";
/// Events read at once.
const BATCH: i64 = 100;

/// Queues the mails of every alert event written since the last run (and settled: older than
/// `webhooks_settle_ms`, so an event still committing is not passed over); answers how many
/// mails were queued.
pub async fn queue_new(st: &AppState) -> Result<usize, StoreError> {
    let mut cursor = match st.store.event_cursor(CURSOR).await? {
        Some(c) => c,
        // The first run starts now: events from before alert mail existed are not mailed.
        None => st.store.start_event_cursor(CURSOR, &IdKind::Event.floor_ms_ago(0)).await?,
    };
    let mut queued = 0;
    loop {
        let bound = IdKind::Event.floor_ms_ago(st.settings.webhooks_settle_ms);
        let events = st.store.alert_events_after(&cursor, &bound, BATCH).await?;
        let Some(last) = events.last().map(|e| e.id.clone()) else { return Ok(queued) };
        let mut mails = Vec::new();
        for e in &events {
            let Some((org_name, people)) = st.store.alert_recipients(&e.org_id).await? else { continue };
            for p in &people {
                if let Some(mail) = alert(&st.settings, e, &org_name, p) {
                    mails.push(KeyedMail { key: format!("alert:{}:{}", e.id, p.user_id), mail: mail.into_outbox() });
                }
            }
        }
        queued += st.store.queue_event_mails(CURSOR, &last, &mails, st.clock.now_ms()).await?;
        cursor = last;
    }
}

/// The mail telling `to` about event `e` of the org named `org`; `None` for other event types.
pub fn alert(settings: &Settings, e: &EventRow, org: &str, to: &AlertRecipient) -> Option<Mail> {
    let d: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    let s = |k: &str| match d.get(k) {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(v) => v.to_string(),
    };
    let credits_url = link(settings, &format!("/app/o/{}/credits", e.org_id));
    let ws_url = link(settings, &format!("/app/w/{}", e.workspace_id.as_deref().unwrap_or("")));
    let (subject, lead, action, url, note) = match e.kind {
        EventType::LowBalance => (
            format!("{org}: credits are running low"),
            format!(
                "The {} wallet of {org} has {} credits available, below its alert threshold of {}.",
                s("kind"),
                s("available"),
                s("threshold")
            ),
            "Top up credits",
            credits_url,
            "Charges are refused once the credits run out.".to_string(),
        ),
        EventType::Depleted => (
            format!("{org}: out of credits"),
            format!(
                "A charge in {org} needed {} {} credits, but only {} were available, so it was refused.",
                s("needed"),
                s("kind"),
                s("available")
            ),
            "Top up credits",
            credits_url,
            "Charges keep being refused until the wallet is topped up.".to_string(),
        ),
        EventType::BudgetThreshold => (
            format!("{org}: {}% of a budget used", s("percent")),
            format!(
                "Workspace {} of {org} has used {} of its budget of {} credits this cycle ({}%).",
                s("workspace_id"),
                s("used"),
                s("limit"),
                s("percent")
            ),
            "Review the budget",
            ws_url,
            format!("The budget resets at {}.", s("resets_at")),
        ),
        EventType::BudgetExceeded => (
            format!("{org}: a budget was exceeded"),
            format!(
                "A charge in workspace {} of {org} was refused by the {} budget of {} ({} of {} credits used).",
                s("workspace_id"),
                s("scope"),
                s("subject"),
                s("used"),
                s("limit")
            ),
            "Review the budget",
            ws_url,
            format!("Charges under this budget are refused until it resets at {}.", s("resets_at")),
        ),
        _ => return None,
    };
    let lead = format!("Hello {}, {lead}", to.name);
    let note = format!("{note} You get this mail as an owner or billing member of {org}.");
    Some(render(settings, e.kind.as_str(), &to.email, subject, Parts { lead, action, url: &url, note }))
}
