//! One org's credits wallet as stored, read after the whole database passed the check.

use std::collections::HashMap;

use roost_ledger::{Answer, Outcome, Refusal};
use roost_store::{Store, redact};
use serde_json::Value;

use super::checked;
use super::tables::{Tables, get};

/// The credits wallet of one org as stored, read after [`check`](super::check) passed for the whole
/// database.
#[derive(Debug)]
pub struct OrgLedger {
    pub wallet_id: String,
    pub balance: i64,
    pub held: i64,
    pub granted: i64,
    pub charged: i64,
    pub expired: i64,
    /// `(id, amount, workspace_id)` of every `charge` entry.
    pub charges: Vec<(String, i64, String)>,
    /// `(id, amount, status)` of every hold.
    pub holds: Vec<(String, i64, String)>,
    /// Idempotency-Key → (status, stored response).
    pub idempotency: HashMap<String, (i64, Value)>,
}

/// The status the API answers a stored idempotency record with, rendered by the server's own
/// mapping. The engine keeps outcomes and refusals, not HTTP bodies; a record naming a journal
/// entry is a charge (201); a record neither can read is 0.
fn api_status(record: &Value) -> i64 {
    if record.get("$entry").is_some() {
        return 201;
    }
    let answer: Option<Answer> = match (record.get("refused"), record.get("ok")) {
        (Some(r), _) => serde_json::from_value::<Refusal>(r.clone()).ok().map(Err),
        (None, Some(o)) => serde_json::from_value::<Outcome>(o.clone()).ok().map(Ok),
        (None, None) => None,
    };
    answer.map_or(0, |a| i64::from(roost_server::api::credits::render(a).0))
}

/// Checks the whole database at `url` (panicking like [`assert_ledger`](super::assert_ledger)) and
/// returns what it holds for `org`'s credits wallet.
pub async fn check_org(url: &str, org: &str) -> OrgLedger {
    let store = Store::connect(url).await.unwrap_or_else(|e| panic!("connect to {}: {e}", redact(url)));
    let read = async {
        let t = checked(&store).await?;
        org_ledger(&store, &t, org).await
    };
    let got = read.await;
    store.close().await;
    got.unwrap_or_else(|e| panic!("{e}"))
}

async fn org_ledger(store: &Store, t: &Tables, org: &str) -> Result<OrgLedger, String> {
    let credits = sqlx::query("SELECT id FROM wallets WHERE org_id = $1 AND kind = 'credits'")
        .bind(org)
        .fetch_one(store.pool())
        .await
        .map_err(|e| format!("the credits wallet of {org}: {e}"))?;
    let wallet_id: String = get(&credits, "id")?;
    let w = t.wallets.iter().find(|w| w.org == org && w.id == wallet_id).ok_or("the wallet vanished")?;
    let mut idempotency = HashMap::new();
    let stored = sqlx::query("SELECT key, response FROM idempotency WHERE org_id = $1")
        .bind(org)
        .fetch_all(store.pool())
        .await
        .map_err(|e| format!("idempotency records: {e}"))?;
    for r in stored {
        let record: String = get(&r, "response")?;
        let record: Value = serde_json::from_str(&record).map_err(|e| format!("a stored record is not JSON: {e}"))?;
        idempotency.insert(get(&r, "key")?, (api_status(&record), record));
    }
    // A charge answered with success keeps its key on its journal entry instead.
    let on_entries = sqlx::query("SELECT idem_key, id FROM ledger_entries WHERE org_id = $1 AND idem_key IS NOT NULL")
        .bind(org)
        .fetch_all(store.pool())
        .await
        .map_err(|e| format!("idempotency keys of journal entries: {e}"))?;
    for r in on_entries {
        let record = serde_json::json!({ "$entry": get::<String>(&r, "id")? });
        idempotency.insert(get(&r, "idem_key")?, (api_status(&record), record));
    }
    let mine = |o: &str, wid: &str| o == org && wid == wallet_id;
    Ok(OrgLedger {
        wallet_id: wallet_id.clone(),
        balance: w.balance,
        held: w.held,
        granted: w.granted,
        charged: w.charged,
        expired: w.expired,
        charges: t
            .entries
            .iter()
            .filter(|e| mine(&e.org, &e.wallet) && e.kind == "charge")
            .map(|e| (e.id.clone(), e.amount, e.workspace.clone()))
            .collect(),
        holds: t
            .holds
            .iter()
            .filter(|h| mine(&h.org, &h.wallet))
            .map(|h| (h.id.clone(), h.amount, h.status.clone()))
            .collect(),
        idempotency,
    })
}
