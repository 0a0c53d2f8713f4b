//! What a batch writes, table by table, as rows of plain values: one plan, carried out by two
//! writers — multi-row statements through sqlx ([`super::bulk`]) and per-row cached statements on
//! SQLite's own writer thread ([`super::native`]).

use std::collections::HashMap;

use crate::audit_chain::Chain;

use super::rows::{BUDGET_COLS, ENTRY_COLS, GRANT_COLS, HOLD_COLS, LedgerWrites, WALLET_COLS, encode_percents};

/// The retention bucket of a charge's idempotency key on its entry (`idem_day`): one day.
const IDEM_DAY_MS: i64 = 86_400_000;

/// A bindable value.
pub(super) enum V<'a> {
    I(i64),
    OI(Option<i64>),
    T(&'a str),
    OT(Option<&'a str>),
    /// Text made for this row (an encoded list).
    S(String),
}

impl V<'_> {
    /// Whether the column holds integers.
    pub(super) fn is_int(&self) -> bool {
        matches!(self, V::I(_) | V::OI(_))
    }
}

/// How a part's rows reach their table.
pub(super) enum Op {
    /// Inserted.
    Insert,
    /// Keyed by the first `keys` columns: a row that exists gets the `set` columns (`true`: added
    /// to the stored value, else replaced), the others are inserted.
    Merge { keys: usize, set: Vec<(&'static str, bool)> },
    /// Deleted, by all of their columns.
    Delete,
}

/// The rows of one table and what to do with them.
pub(super) struct Part<'a> {
    pub table: &'static str,
    /// Column names, `, `-separated, in the order of each row's values.
    pub cols: String,
    pub op: Op,
    pub rows: Vec<Vec<V<'a>>>,
}

impl<'a> Part<'a> {
    fn new(table: &'static str, cols: &str, op: Op, rows: Vec<Vec<V<'a>>>) -> Self {
        Self { table, cols: cols.to_string(), op, rows }
    }

    /// The column names.
    pub(super) fn names(&self) -> Vec<&str> {
        self.cols.split(", ").collect()
    }
}

/// A merge keyed by the first `keys` columns that replaces the `set` columns.
fn replace(keys: usize, set: &[&'static str]) -> Op {
    Op::Merge { keys, set: set.iter().map(|c| (*c, false)).collect() }
}

/// The batch's writes in the order they are carried out (deletions first). `bumped`: heads whose
/// version the org lock already raised, as `(version, next_event_at)`; such a head is written only
/// if its next event changed. `chain`: the links of the audit events, in their order.
pub(super) fn plan<'a>(
    w: &'a LedgerWrites,
    bumped: &HashMap<String, (i64, Option<i64>)>,
    chain: &'a Chain,
) -> Vec<Part<'a>> {
    let mut parts = Vec::new();
    let removed = w.budgets_removed.iter().map(|(o, s, ws, u)| vec![V::T(o), V::T(s.as_str()), V::T(ws), V::T(u)]);
    parts.push(Part::new("budgets", "org_id, scope, workspace_id, user_id", Op::Delete, removed.collect()));

    let heads: Vec<_> =
        w.heads.iter().filter(|h| bumped.get(&h.org_id) != Some(&(h.version, h.next_event_at))).collect();
    let set: &[_] = if heads.iter().all(|h| bumped.get(&h.org_id).is_some_and(|b| b.0 == h.version)) {
        &["next_event_at"]
    } else {
        &["version", "next_event_at"]
    };
    let rows = heads.iter().map(|h| vec![V::T(&h.org_id), V::I(h.version), V::OI(h.next_event_at)]).collect();
    parts.push(Part::new("ledger_heads", "org_id, version, next_event_at", replace(1, set), rows));

    let set = [
        "balance",
        "held",
        "granted",
        "charged",
        "expired",
        "anchor_at",
        "cycle",
        "allowance",
        "low_balance",
        "depleted",
        "reload_enabled",
        "reload_threshold",
        "reload_amount",
        "reload_monthly_max",
        "reload_month",
        "reload_month_total",
        "reload_armed",
        "reload_paused",
    ];
    let rows = w.wallets.iter().map(|x| {
        vec![
            V::T(&x.org_id),
            V::T(&x.id),
            V::T(&x.kind),
            V::I(x.balance),
            V::I(x.held),
            V::I(x.granted),
            V::I(x.charged),
            V::I(x.expired),
            V::I(x.anchor_at),
            V::I(x.cycle),
            V::I(x.allowance),
            V::I(x.created_at),
            V::OI(x.low_balance),
            V::I(i64::from(x.depleted)),
            V::I(i64::from(x.reload.enabled)),
            V::I(x.reload.threshold),
            V::I(x.reload.amount),
            V::I(x.reload.monthly_max),
            V::I(x.reload.month),
            V::I(x.reload.month_total),
            V::I(i64::from(x.reload.armed)),
            V::OT(x.reload.paused.as_deref()),
        ]
    });
    parts.push(Part::new("wallets", WALLET_COLS, replace(2, &set), rows.collect()));

    let set = ["remaining", "reserved", "expired", "expires_at"];
    let rows = w.grants.iter().map(|g| {
        vec![
            V::T(&g.org_id),
            V::T(&g.id),
            V::T(&g.wallet_id),
            V::T(g.source.as_str()),
            V::I(g.amount),
            V::I(g.remaining),
            V::I(g.reserved),
            V::I(g.expired),
            V::I(g.effective_at),
            V::OI(g.expires_at),
            V::I(g.created_at),
            V::OT(g.cycle_key.as_deref()),
            V::OT(g.reason.as_deref()),
            V::T(g.actor_type.as_str()),
            V::T(&g.actor_id),
        ]
    });
    parts.push(Part::new("grants", GRANT_COLS, replace(2, &set), rows.collect()));

    let rows = w.entries.iter().map(|e| {
        vec![
            V::T(&e.org_id),
            V::T(&e.id),
            V::T(e.kind.as_str()),
            V::T(&e.wallet_id),
            V::T(&e.workspace_id),
            V::T(e.actor_type.as_str()),
            V::T(&e.actor_id),
            V::T(&e.member_id),
            V::T(&e.key_id),
            V::I(e.amount),
            V::T(&e.action),
            V::OT(e.metadata.as_deref()),
            V::S(e.splits.encode()),
            V::OT(e.hold_id.as_deref()),
            V::I(e.balance_after),
            V::I(e.at),
            V::I(e.seq),
            V::OT(e.headroom.as_deref()),
            V::OT(e.idem_key.as_deref()),
            V::OT(e.idem_fp.as_deref()),
            V::OI(e.idem_key.as_ref().map(|_| e.at.div_euclid(IDEM_DAY_MS))),
        ]
    });
    let cols = format!("{ENTRY_COLS}, idem_key, idem_fp, idem_day");
    parts.push(Part::new("ledger_entries", &cols, Op::Insert, rows.collect()));

    let set = ["status", "closed_at", "charge_id"];
    let rows = w.holds.iter().map(|h| {
        vec![
            V::T(&h.org_id),
            V::T(&h.id),
            V::T(&h.wallet_id),
            V::T(&h.workspace_id),
            V::T(h.actor_type.as_str()),
            V::T(&h.actor_id),
            V::T(&h.member_id),
            V::T(&h.key_id),
            V::T(&h.action),
            V::I(h.amount),
            V::S(h.splits.encode()),
            V::T(h.status.as_str()),
            V::I(h.period_start),
            V::I(h.expires_at),
            V::I(h.created_at),
            V::OI(h.closed_at),
            V::OT(h.charge_id.as_deref()),
        ]
    });
    parts.push(Part::new("holds", HOLD_COLS, replace(2, &set), rows.collect()));

    let set = ["amount_limit", "alert_percents", "updated_at"];
    let rows = w.budgets.iter().map(|b| {
        vec![
            V::T(&b.org_id),
            V::T(b.scope.as_str()),
            V::T(&b.workspace_id),
            V::T(&b.user_id),
            V::I(b.limit),
            V::S(encode_percents(&b.alert_percents)),
            V::I(b.updated_at),
        ]
    });
    parts.push(Part::new("budgets", BUDGET_COLS, replace(4, &set), rows.collect()));

    let rows = w
        .usage
        .iter()
        .filter(|(_, d)| **d != 0)
        .map(|(k, d)| vec![V::T(&k.0), V::T(k.1.as_str()), V::T(&k.2), V::I(k.3), V::I(*d)]);
    let add_used = Op::Merge { keys: 4, set: vec![("used", true)] };
    parts.push(Part::new("budget_usage", "org_id, scope, subject, period_start, used", add_used, rows.collect()));

    let rows = w.rollups.iter().map(|(k, (a, c))| {
        vec![V::T(&k.0), V::I(k.1), V::T(&k.2), V::T(&k.3), V::T(&k.4), V::T(&k.5), V::T(&k.6), V::I(*a), V::I(*c)]
    });
    let add = Op::Merge { keys: 7, set: vec![("amount", true), ("count", true)] };
    let cols = "org_id, hour, wallet_id, workspace_id, member_id, key_id, action, amount, count";
    parts.push(Part::new("usage_rollups", cols, add, rows.collect()));

    let rows = w.idempotency.iter().map(|r| {
        vec![V::T(&r.org_id), V::T(&r.key), V::T(&r.fingerprint), V::I(0), V::T(&r.record), V::I(r.created_at)]
    });
    let cols = "org_id, key, fingerprint, status, response, created_at";
    parts.push(Part::new("idempotency", cols, Op::Insert, rows.collect()));

    debug_assert_eq!(w.audit.len(), chain.links.len(), "every audit event is chained");
    let rows = w.audit.iter().zip(&chain.links).map(|(a, l)| {
        vec![
            V::T(&a.org_id),
            V::T(&a.id),
            V::I(a.at),
            V::T(a.actor_type.as_str()),
            V::T(&a.actor_id),
            V::T(&a.action),
            V::OT(a.workspace_id.as_deref()),
            V::OT(a.target_type.as_deref()),
            V::OT(a.target_id.as_deref()),
            V::OT(a.ip.as_deref()),
            V::T(&a.detail),
            V::I(l.seq),
            V::T(&l.prev_hash),
            V::T(&l.hash),
        ]
    });
    let cols = "org_id, id, at, actor_type, actor_id, action, workspace_id, target_type, target_id, ip, detail, \
                seq, prev_hash, hash";
    parts.push(Part::new("audit_events", cols, Op::Insert, rows.collect()));
    let rows = chain.heads.iter().map(|(o, seq, hash)| vec![V::T(o), V::I(*seq), V::T(hash)]);
    parts.push(Part::new("audit_heads", "org_id, seq, hash", replace(1, &["seq", "hash"]), rows.collect()));

    let rows = w.events.iter().map(|e| {
        vec![
            V::T(&e.org_id),
            V::T(&e.id),
            V::T(e.kind.as_str()),
            V::OT(e.workspace_id.as_deref()),
            V::T(&e.data),
            V::I(e.created_at),
        ]
    });
    let cols = "org_id, id, type, workspace_id, data, created_at";
    parts.push(Part::new("events", cols, Op::Insert, rows.collect()));

    let rows =
        w.exceeded.iter().map(|(o, scope, subject, p)| vec![V::T(o), V::T(scope.as_str()), V::T(subject), V::I(*p)]);
    parts.push(Part::new("budget_exceeded", "org_id, scope, subject, period_start", Op::Insert, rows.collect()));

    parts.retain(|p| !p.rows.is_empty());
    parts
}
