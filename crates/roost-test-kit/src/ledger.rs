//! The ledger's invariants, checked straight in the database (ARCHITECTURE.md, "The ledger
//! engine"): one place for the server's scenarios, the load tests and the engine's properties.
//!
//! [`check`] reads every wallet of a [`Store`] and verifies, for each:
//! - `granted − charged − expired = balance` and `0 ≤ held ≤ balance` (so `available ≥ 0`);
//! - the totals recomputed from the journal: `granted = Σ grant entries`, `charged = Σ charge +
//!   adjustment entries`, `expired = Σ expiry entries`; and from the grants: `granted = Σ amount`,
//!   `expired = Σ expired`;
//! - the journal in `seq` order (each `seq` once per org) replays to every entry's `balance_after`
//!   and ends at the balance;
//! - `balance = Σ remaining + Σ reserved` of its grants, `held = Σ open holds = Σ reserved`;
//! - every grant: `0 ≤ remaining ≤ amount`, `reserved ≥ 0`, `expired ≥ 0`,
//!   `amount = remaining + reserved + expired + Σ charge/adjustment splits drawn from it`, its
//!   `expired` is what expiry entries name it for, its `reserved` what open holds name it for;
//! - every non-grant entry's and every open hold's splits add up to its amount;
//! - a charge with a `hold_id` is at most that hold's amount, the hold is `settled` naming that
//!   charge, each hold has at most one charge and every settled hold has one;
//!
//! and per org: hourly usage rollups add up to the journal's charges (amount and count), and the
//! budget counters (per workspace, member and key, Σ `used` over periods) are the charges plus the
//! open holds of that subject.

use std::collections::{BTreeMap, HashMap, HashSet};

use roost_store::{Store, redact};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::splits;

#[derive(Debug)]
struct Wallet {
    org: String,
    id: String,
    balance: i64,
    held: i64,
    granted: i64,
    charged: i64,
    expired: i64,
}

#[derive(Debug)]
struct Grant {
    org: String,
    id: String,
    wallet: String,
    amount: i64,
    remaining: i64,
    reserved: i64,
    expired: i64,
}

#[derive(Debug)]
struct Entry {
    org: String,
    id: String,
    kind: String,
    wallet: String,
    workspace: String,
    member: String,
    key: String,
    amount: i64,
    splits: String,
    hold_id: Option<String>,
    balance_after: i64,
    seq: i64,
}

#[derive(Debug)]
struct Hold {
    org: String,
    id: String,
    wallet: String,
    workspace: String,
    member: String,
    key: String,
    amount: i64,
    status: String,
    splits: String,
    charge_id: Option<String>,
}

/// Everything the checks read, in one pass over the tables.
struct Tables {
    wallets: Vec<Wallet>,
    grants: Vec<Grant>,
    entries: Vec<Entry>,
    holds: Vec<Hold>,
    /// `(org, scope, subject, used)`.
    usage: Vec<(String, String, String, i64)>,
    /// org → `(Σ amount, Σ count)` of its usage rollups.
    rollups: BTreeMap<String, (i64, i64)>,
}

async fn rows(store: &Store, sql: &'static str) -> Result<Vec<AnyRow>, String> {
    sqlx::query(sql).fetch_all(store.pool()).await.map_err(|e| format!("{sql}: {e}"))
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>>(r: &'r AnyRow, col: &str) -> Result<T, String> {
    r.try_get(col).map_err(|e| format!("column {col}: {e}"))
}

impl Tables {
    async fn read(store: &Store) -> Result<Self, String> {
        let mut t = Tables {
            wallets: Vec::new(),
            grants: Vec::new(),
            entries: Vec::new(),
            holds: Vec::new(),
            usage: Vec::new(),
            rollups: BTreeMap::new(),
        };
        for r in rows(store, "SELECT org_id, id, balance, held, granted, charged, expired FROM wallets").await? {
            t.wallets.push(Wallet {
                org: get(&r, "org_id")?,
                id: get(&r, "id")?,
                balance: get(&r, "balance")?,
                held: get(&r, "held")?,
                granted: get(&r, "granted")?,
                charged: get(&r, "charged")?,
                expired: get(&r, "expired")?,
            });
        }
        for r in rows(store, "SELECT org_id, id, wallet_id, amount, remaining, reserved, expired FROM grants").await? {
            t.grants.push(Grant {
                org: get(&r, "org_id")?,
                id: get(&r, "id")?,
                wallet: get(&r, "wallet_id")?,
                amount: get(&r, "amount")?,
                remaining: get(&r, "remaining")?,
                reserved: get(&r, "reserved")?,
                expired: get(&r, "expired")?,
            });
        }
        let sql = "SELECT org_id, id, type, wallet_id, workspace_id, member_id, key_id, amount, splits, hold_id, \
                   balance_after, seq FROM ledger_entries ORDER BY org_id, seq";
        for r in rows(store, sql).await? {
            t.entries.push(Entry {
                org: get(&r, "org_id")?,
                id: get(&r, "id")?,
                kind: get(&r, "type")?,
                wallet: get(&r, "wallet_id")?,
                workspace: get(&r, "workspace_id")?,
                member: get(&r, "member_id")?,
                key: get(&r, "key_id")?,
                amount: get(&r, "amount")?,
                splits: get(&r, "splits")?,
                hold_id: get(&r, "hold_id")?,
                balance_after: get(&r, "balance_after")?,
                seq: get(&r, "seq")?,
            });
        }
        let sql = "SELECT org_id, id, wallet_id, workspace_id, member_id, key_id, amount, status, splits, charge_id FROM holds";
        for r in rows(store, sql).await? {
            t.holds.push(Hold {
                org: get(&r, "org_id")?,
                id: get(&r, "id")?,
                wallet: get(&r, "wallet_id")?,
                workspace: get(&r, "workspace_id")?,
                member: get(&r, "member_id")?,
                key: get(&r, "key_id")?,
                amount: get(&r, "amount")?,
                status: get(&r, "status")?,
                splits: get(&r, "splits")?,
                charge_id: get(&r, "charge_id")?,
            });
        }
        for r in rows(store, "SELECT org_id, scope, subject, used FROM budget_usage").await? {
            t.usage.push((get(&r, "org_id")?, get(&r, "scope")?, get(&r, "subject")?, get(&r, "used")?));
        }
        let sql = "SELECT org_id, CAST(SUM(amount) AS BIGINT) AS a, CAST(SUM(count) AS BIGINT) AS c \
                   FROM usage_rollups GROUP BY org_id";
        for r in rows(store, sql).await? {
            t.rollups.insert(get(&r, "org_id")?, (get(&r, "a")?, get(&r, "c")?));
        }
        Ok(t)
    }
}

/// Checks every invariant listed in the [module docs](self) for every wallet and org in `store`.
/// `Err` lists every broken one, one per line (or says which read failed).
pub async fn check(store: &Store) -> Result<(), String> {
    checked(store).await.map(|_| ())
}

async fn checked(store: &Store) -> Result<Tables, String> {
    let t = Tables::read(store).await?;
    let problems = problems(&t)?;
    if problems.is_empty() { Ok(t) } else { Err(format!("ledger invariants broken:\n{}", problems.join("\n"))) }
}

/// Connects to `url`, runs [`check`], and panics listing every broken invariant.
pub async fn assert_ledger(url: &str) {
    let store = Store::connect(url).await.unwrap_or_else(|e| panic!("connect to {}: {e}", redact(url)));
    let checked = check(&store).await;
    store.close().await;
    if let Err(e) = checked {
        panic!("{e}");
    }
}

fn problems(t: &Tables) -> Result<Vec<String>, String> {
    let mut p = Vec::new();
    let holds_by_id: HashMap<(&str, &str), &Hold> =
        t.holds.iter().map(|h| ((h.org.as_str(), h.id.as_str()), h)).collect();

    // Splits, decoded once: what was drawn from, expired from and reserved on each grant.
    let mut drawn: HashMap<(&str, String), i64> = HashMap::new();
    let mut expired_from: HashMap<(&str, String), i64> = HashMap::new();
    let mut reserved_by_holds: HashMap<(&str, String), i64> = HashMap::new();
    for e in t.entries.iter().filter(|e| e.kind != "grant") {
        let parts = splits::decode(&e.splits).map_err(|m| format!("{} {}: {m}", e.kind, e.id))?;
        let total: i64 = parts.iter().map(|p| p.1).sum();
        if total != e.amount {
            p.push(format!("{} {}: splits add up to {total}, not its amount {}", e.kind, e.id, e.amount));
        }
        let into = match e.kind.as_str() {
            "charge" | "adjustment" => &mut drawn,
            "expiry" => &mut expired_from,
            _ => continue,
        };
        for (g, a) in parts {
            *into.entry((e.org.as_str(), g)).or_default() += a;
        }
    }
    for h in t.holds.iter().filter(|h| h.status == "open") {
        let parts = splits::decode(&h.splits).map_err(|m| format!("hold {}: {m}", h.id))?;
        let total: i64 = parts.iter().map(|p| p.1).sum();
        if total != h.amount {
            p.push(format!("hold {}: splits add up to {total}, not its amount {}", h.id, h.amount));
        }
        for (g, a) in parts {
            *reserved_by_holds.entry((h.org.as_str(), g)).or_default() += a;
        }
    }

    for w in &t.wallets {
        let tag = format!("wallet {} of {}", w.id, w.org);
        let (balance, held) = (w.balance, w.held);
        if w.granted - w.charged - w.expired != balance {
            p.push(format!(
                "{tag}: granted {} − charged {} − expired {} ≠ balance {balance}",
                w.granted, w.charged, w.expired
            ));
        }
        if !(0 <= held && held <= balance) {
            p.push(format!("{tag}: held {held} outside 0..=balance {balance} (available {})", balance - held));
        }
        let entries: Vec<&Entry> = t.entries.iter().filter(|e| e.org == w.org && e.wallet == w.id).collect();
        let sum_of =
            |kinds: &[&str]| entries.iter().filter(|e| kinds.contains(&e.kind.as_str())).map(|e| e.amount).sum::<i64>();
        for (what, journal, total) in [
            ("Σ grant entries", sum_of(&["grant"]), w.granted),
            ("Σ charge and adjustment entries", sum_of(&["charge", "adjustment"]), w.charged),
            ("Σ expiry entries", sum_of(&["expiry"]), w.expired),
        ] {
            if journal != total {
                p.push(format!("{tag}: {what} {journal} ≠ {total} on the wallet"));
            }
        }
        // The journal in order: every entry's balance_after is the running balance (entries are
        // read sorted by seq within each org).
        let mut running = 0;
        for e in &entries {
            running += if e.kind == "grant" { e.amount } else { -e.amount };
            if e.balance_after != running {
                p.push(format!(
                    "{tag}: {} {} (seq {}) has balance_after {}, the journal says {running}",
                    e.kind, e.id, e.seq, e.balance_after
                ));
            }
        }
        if running != balance {
            p.push(format!("{tag}: the journal ends at {running}, not the balance {balance}"));
        }

        let grants: Vec<&Grant> = t.grants.iter().filter(|g| g.org == w.org && g.wallet == w.id).collect();
        let total = |f: fn(&Grant) -> i64| grants.iter().map(|g| f(g)).sum::<i64>();
        let (remaining, reserved) = (total(|g| g.remaining), total(|g| g.reserved));
        if remaining + reserved != balance {
            p.push(format!("{tag}: Σ remaining {remaining} + Σ reserved {reserved} ≠ balance {balance}"));
        }
        if total(|g| g.amount) != w.granted {
            p.push(format!("{tag}: Σ grant amounts {} ≠ granted {}", total(|g| g.amount), w.granted));
        }
        if total(|g| g.expired) != w.expired {
            p.push(format!("{tag}: Σ grant expired {} ≠ expired {}", total(|g| g.expired), w.expired));
        }
        let open: i64 =
            t.holds.iter().filter(|h| h.org == w.org && h.wallet == w.id && h.status == "open").map(|h| h.amount).sum();
        if open != held {
            p.push(format!("{tag}: Σ open holds {open} ≠ held {held}"));
        }
        if reserved != held {
            p.push(format!("{tag}: Σ reserved {reserved} ≠ held {held}"));
        }
    }

    let mut seqs = HashSet::new();
    for e in &t.entries {
        if !seqs.insert((e.org.as_str(), e.seq)) {
            p.push(format!("org {}: seq {} twice", e.org, e.seq));
        }
    }

    for g in &t.grants {
        let key = (g.org.as_str(), g.id.clone());
        if !(0 <= g.remaining && g.remaining <= g.amount && g.reserved >= 0 && g.expired >= 0) {
            p.push(format!("grant {g:?} out of bounds"));
        }
        let d = drawn.get(&key).copied().unwrap_or(0);
        if g.remaining + g.reserved + g.expired + d != g.amount {
            p.push(format!(
                "grant {}: remaining {} + reserved {} + expired {} + drawn {d} ≠ amount {}",
                g.id, g.remaining, g.reserved, g.expired, g.amount
            ));
        }
        let x = expired_from.get(&key).copied().unwrap_or(0);
        if g.expired != x {
            p.push(format!("grant {}: expired {} ≠ {x} named by expiry entries", g.id, g.expired));
        }
        let r = reserved_by_holds.get(&key).copied().unwrap_or(0);
        if g.reserved != r {
            p.push(format!("grant {}: reserved {} ≠ {r} named by open holds", g.id, g.reserved));
        }
    }

    // Settles never above their holds, one charge per hold, and a settled hold names it.
    let mut per_hold: HashMap<(&str, &str), usize> = HashMap::new();
    for e in t.entries.iter().filter(|e| e.hold_id.is_some()) {
        let hid = e.hold_id.as_deref().unwrap_or_default();
        match holds_by_id.get(&(e.org.as_str(), hid)) {
            None => p.push(format!("{} {} names hold {hid}, which does not exist", e.kind, e.id)),
            Some(h) => {
                if e.kind != "charge" {
                    p.push(format!("{} {} names hold {hid}: only charges settle holds", e.kind, e.id));
                }
                if e.amount > h.amount {
                    p.push(format!("charge {}: settled {} > held {}", e.id, e.amount, h.amount));
                }
                if h.status != "settled" || h.charge_id.as_deref() != Some(e.id.as_str()) {
                    p.push(format!("charge {}: its hold {hid} is {} with charge_id {:?}", e.id, h.status, h.charge_id));
                }
                *per_hold.entry((e.org.as_str(), hid)).or_default() += 1;
            }
        }
    }
    for (h, n) in per_hold.iter().filter(|(_, n)| **n > 1) {
        p.push(format!("hold {} of {} has {n} charges", h.1, h.0));
    }
    for h in t.holds.iter().filter(|h| h.status == "settled") {
        if !per_hold.contains_key(&(h.org.as_str(), h.id.as_str())) {
            p.push(format!("hold {} is settled without a charge naming it", h.id));
        }
    }

    // Per org: usage rollups are the journal's charges, summed; budget counters are the charges
    // and open holds of each subject.
    let mut journal: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut budgets: BTreeMap<String, BTreeMap<(String, String), i64>> = BTreeMap::new();
    let mut add = |org: &str, ws: &str, member: &str, key: &str, amount: i64| {
        let b = budgets.entry(org.to_string()).or_default();
        *b.entry(("workspace".into(), ws.into())).or_default() += amount;
        if !member.is_empty() {
            *b.entry(("member".into(), format!("{ws}:{member}"))).or_default() += amount;
        }
        if !key.is_empty() {
            *b.entry(("key".into(), key.into())).or_default() += amount;
        }
    };
    for e in t.entries.iter().filter(|e| e.kind == "charge") {
        let j = journal.entry(e.org.clone()).or_default();
        j.0 += e.amount;
        j.1 += 1;
        add(&e.org, &e.workspace, &e.member, &e.key, e.amount);
    }
    for h in t.holds.iter().filter(|h| h.status == "open") {
        add(&h.org, &h.workspace, &h.member, &h.key, h.amount);
    }
    let orgs: HashSet<&String> = journal.keys().chain(t.rollups.keys()).collect();
    for org in orgs {
        let (r, j) = (t.rollups.get(org).copied().unwrap_or_default(), journal.get(org).copied().unwrap_or_default());
        if r != j {
            p.push(format!("org {org}: rollups {} in {} charges ≠ journal {} in {} charges", r.0, r.1, j.0, j.1));
        }
    }
    let mut stored: BTreeMap<String, BTreeMap<(String, String), i64>> = BTreeMap::new();
    for (org, scope, subject, used) in &t.usage {
        *stored.entry(org.clone()).or_default().entry((scope.clone(), subject.clone())).or_default() += used;
    }
    for m in stored.values_mut().chain(budgets.values_mut()) {
        m.retain(|_, v| *v != 0);
    }
    stored.retain(|_, m| !m.is_empty());
    budgets.retain(|_, m| !m.is_empty());
    if stored != budgets {
        p.push(format!("budget counters ≠ charges + open holds:\n  stored   {stored:?}\n  expected {budgets:?}"));
    }
    Ok(p)
}

/// The credits wallet of one org as stored, read after [`check`] passed for the whole database.
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

/// The status the API answers a stored idempotency record with. The engine keeps outcomes and
/// refusals, not HTTP bodies; a record naming a journal entry is a charge (201).
fn api_status(record: &Value) -> i64 {
    match (record.get("$entry"), record["refused"]["refusal"].as_str()) {
        (Some(_), _) => 201,
        (None, Some("insufficient_credits")) => 402,
        (None, Some("budget_exceeded" | "forbidden")) => 403,
        (None, Some("not_found")) => 404,
        (None, Some("hold_closed" | "idempotency_conflict")) => 409,
        (None, Some(_)) => 422,
        (None, None) => match record["ok"]["outcome"].as_str() {
            Some("held" | "granted" | "debited") => 201,
            _ => 200,
        },
    }
}

/// Checks the whole database at `url` (panicking like [`assert_ledger`]) and returns what it
/// holds for `org`'s credits wallet.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::FreshDatabase;

    async fn exec(store: &Store, sql: &'static str) {
        sqlx::raw_sql(sql).execute(store.pool()).await.expect(sql);
    }

    /// The check is not vacuous: an empty ledger passes, a wallet whose totals disagree does not.
    #[tokio::test]
    async fn a_broken_wallet_fails_the_check() {
        let db = FreshDatabase::sqlite();
        let store = db.store().await;
        check(&store).await.expect("an empty ledger is consistent");
        exec(
            &store,
            "INSERT INTO wallets (org_id, id, kind, balance, held, granted, charged, expired, anchor_at, cycle, allowance, created_at) \
             VALUES ('org_x', 'wal_x', 'credits', 10, 0, 10, 0, 0, 0, 0, 0, 0)",
        )
        .await;
        let err = check(&store).await.expect_err("a wallet without grants or journal");
        assert!(err.contains("Σ grant entries 0 ≠ 10"), "{err}");
        assert!(err.contains("Σ remaining 0 + Σ reserved 0 ≠ balance 10"), "{err}");
        exec(
            &store,
            "INSERT INTO grants (org_id, id, wallet_id, source, amount, remaining, reserved, expired, effective_at, created_at, actor_type, actor_id) \
             VALUES ('org_x', 'grt_x', 'wal_x', 'topup', 10, 10, 0, 0, 0, 0, 'system', '')",
        )
        .await;
        exec(
            &store,
            "INSERT INTO ledger_entries (org_id, id, type, wallet_id, workspace_id, actor_type, actor_id, member_id, key_id, amount, action, splits, balance_after, at, seq) \
             VALUES ('org_x', 'led_x', 'grant', 'wal_x', '', 'system', '', '', '', 10, 'topup', '', 10, 0, 1)",
        )
        .await;
        check(&store).await.expect("granted, stored and journaled alike");
        exec(&store, "UPDATE grants SET remaining = 9").await;
        let err = check(&store).await.expect_err("a credit went missing from its grant");
        assert!(err.contains("grant grt_x: remaining 9"), "{err}");
        store.close().await;
    }
}
