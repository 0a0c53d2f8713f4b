//! The invariants themselves (listed in the [module docs](super)), over the tables as read.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::tables::{Entry, Grant, Hold, Tables};
use crate::splits;

pub(super) fn problems(t: &Tables) -> Result<Vec<String>, String> {
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
