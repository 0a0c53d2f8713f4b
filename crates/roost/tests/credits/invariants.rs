//! The ledger's invariants (ARCHITECTURE.md, "The ledger engine"), read straight from the database.

use std::collections::HashMap;

use sqlx::Row;

use crate::harness::TestServer;

/// A sum of a BIGINT column that decodes as `i64` on both backends.
async fn sum(pool: &sqlx::AnyPool, sql: &'static str, org: &str, wallet: &str) -> i64 {
    sqlx::query(sql).bind(org).bind(wallet).fetch_one(pool).await.unwrap().try_get::<i64, _>(0).unwrap()
}

/// Checks, for every wallet in the database:
/// - granted − charged − expired = balance, and granted = Σ grant amounts, expired = Σ grant expired;
/// - balance = Σ remaining + Σ reserved of its grants, every grant ≥ 0 in each part;
/// - held = Σ amount of its open holds = Σ reserved of its grants;
/// - available = balance − held ≥ 0;
/// - charged = Σ journal charges and debit adjustments;
/// - each grant: amount = remaining + reserved + expired + Σ journal splits drawn from it;
/// - every charge with a `hold_id` is ≤ that hold's amount, and the hold is settled with that charge;
/// - usage rollups add up to the journal's charges.
pub(crate) async fn check(s: &TestServer) {
    let store = roost_store::Store::connect(&s.database_url).await.expect("connect for invariants");
    let pool = store.pool();
    let wallets = sqlx::query("SELECT org_id, id, kind, balance, held, granted, charged, expired FROM wallets")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(!wallets.is_empty(), "no wallets at all: the scenario did not reach the ledger");
    let mut problems = Vec::new();
    for w in &wallets {
        let org: String = w.try_get("org_id").unwrap();
        let id: String = w.try_get("id").unwrap();
        let g = |c: &str| w.try_get::<i64, _>(c).unwrap();
        let (balance, held, granted, charged, expired) =
            (g("balance"), g("held"), g("granted"), g("charged"), g("expired"));
        let tag = format!("wallet {id} of {org}");
        if granted - charged - expired != balance {
            problems
                .push(format!("{tag}: granted {granted} − charged {charged} − expired {expired} ≠ balance {balance}"));
        }
        if balance - held < 0 {
            problems.push(format!("{tag}: available {} < 0", balance - held));
        }
        let remaining = sum(
            pool,
            "SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM grants WHERE org_id = $1 AND wallet_id = $2",
            &org,
            &id,
        )
        .await;
        let reserved = sum(
            pool,
            "SELECT CAST(COALESCE(SUM(reserved), 0) AS BIGINT) FROM grants WHERE org_id = $1 AND wallet_id = $2",
            &org,
            &id,
        )
        .await;
        let g_amount = sum(
            pool,
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM grants WHERE org_id = $1 AND wallet_id = $2",
            &org,
            &id,
        )
        .await;
        let g_expired = sum(
            pool,
            "SELECT CAST(COALESCE(SUM(expired), 0) AS BIGINT) FROM grants WHERE org_id = $1 AND wallet_id = $2",
            &org,
            &id,
        )
        .await;
        let open_held = sum(
            pool,
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM holds WHERE org_id = $1 AND wallet_id = $2 AND status = 'open'",
            &org,
            &id,
        )
        .await;
        let journal_charged = sum(
            pool,
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_entries \
             WHERE org_id = $1 AND wallet_id = $2 AND type IN ('charge', 'adjustment')",
            &org,
            &id,
        )
        .await;
        if remaining + reserved != balance {
            problems.push(format!("{tag}: Σ remaining {remaining} + Σ reserved {reserved} ≠ balance {balance}"));
        }
        if open_held != held {
            problems.push(format!("{tag}: Σ open holds {open_held} ≠ held {held}"));
        }
        if reserved != held {
            problems.push(format!("{tag}: Σ reserved {reserved} ≠ held {held}"));
        }
        if g_amount != granted {
            problems.push(format!("{tag}: Σ grant amounts {g_amount} ≠ granted {granted}"));
        }
        if g_expired != expired {
            problems.push(format!("{tag}: Σ grant expired {g_expired} ≠ expired {expired}"));
        }
        if journal_charged != charged {
            problems.push(format!("{tag}: Σ journal charges {journal_charged} ≠ charged {charged}"));
        }
    }

    // Per grant: what was drawn from it (journal splits of charges and debit adjustments).
    let entries = sqlx::query("SELECT org_id, splits FROM ledger_entries WHERE type IN ('charge', 'adjustment')")
        .fetch_all(pool)
        .await
        .unwrap();
    let mut drawn: HashMap<(String, String), i64> = HashMap::new();
    for e in &entries {
        let org: String = e.try_get("org_id").unwrap();
        let splits: String = e.try_get("splits").unwrap();
        for part in splits.split(',').filter(|p| !p.is_empty()) {
            let (g, a) = part.split_once(':').unwrap_or_else(|| panic!("bad splits `{splits}`"));
            *drawn.entry((org.clone(), g.to_string())).or_default() += a.parse::<i64>().unwrap();
        }
    }
    let grants = sqlx::query("SELECT org_id, id, amount, remaining, reserved, expired FROM grants")
        .fetch_all(pool)
        .await
        .unwrap();
    for g in &grants {
        let org: String = g.try_get("org_id").unwrap();
        let id: String = g.try_get("id").unwrap();
        let n = |c: &str| g.try_get::<i64, _>(c).unwrap();
        let (amount, remaining, reserved, expired) = (n("amount"), n("remaining"), n("reserved"), n("expired"));
        if remaining < 0 || reserved < 0 || expired < 0 {
            problems.push(format!(
                "grant {id}: negative part: remaining {remaining}, reserved {reserved}, expired {expired}"
            ));
        }
        let d = drawn.get(&(org, id.clone())).copied().unwrap_or(0);
        if amount != remaining + reserved + expired + d {
            problems.push(format!(
                "grant {id}: amount {amount} ≠ remaining {remaining} + reserved {reserved} + expired {expired} + drawn {d}"
            ));
        }
    }

    // Settlements never take more than was held.
    let settled = sqlx::query(
        "SELECT e.id AS eid, e.amount AS charged, h.amount AS held, h.status AS status, h.charge_id AS charge_id \
         FROM ledger_entries e LEFT JOIN holds h ON h.org_id = e.org_id AND h.id = e.hold_id \
         WHERE e.hold_id IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for r in &settled {
        let eid: String = r.try_get("eid").unwrap();
        let charged: i64 = r.try_get("charged").unwrap();
        let held: Option<i64> = r.try_get("held").unwrap();
        let status: Option<String> = r.try_get("status").unwrap();
        let charge_id: Option<String> = r.try_get("charge_id").unwrap();
        match held {
            None => problems.push(format!("charge {eid} names a hold that does not exist")),
            Some(h) if charged > h => problems.push(format!("charge {eid}: settled {charged} > held {h}")),
            Some(_) => {}
        }
        if status.as_deref() != Some("settled") || charge_id.as_deref() != Some(eid.as_str()) {
            problems.push(format!("charge {eid}: its hold is {status:?} with charge_id {charge_id:?}"));
        }
    }

    // Usage rollups are the journal's charges, summed.
    let rolled = sqlx::query(
        "SELECT org_id, CAST(SUM(amount) AS BIGINT) AS a, CAST(SUM(count) AS BIGINT) AS c FROM usage_rollups GROUP BY org_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for r in &rolled {
        let org: String = r.try_get("org_id").unwrap();
        let (a, c): (i64, i64) = (r.try_get("a").unwrap(), r.try_get("c").unwrap());
        let j = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS a, COUNT(*) AS c FROM ledger_entries \
             WHERE org_id = $1 AND type = 'charge'",
        )
        .bind(&org)
        .fetch_one(pool)
        .await
        .unwrap();
        let (ja, jc): (i64, i64) = (j.try_get("a").unwrap(), j.try_get("c").unwrap());
        if (a, c) != (ja, jc) {
            problems.push(format!("org {org}: rollups {a} in {c} charges ≠ journal {ja} in {jc}"));
        }
    }
    store.close().await;
    assert!(problems.is_empty(), "ledger invariants broken:\n{}", problems.join("\n"));
}

/// Σ of the journal's `expiry` entries of `org` = Σ grants' `expired`: every expiry is journaled.
pub(crate) async fn expiries_journaled(s: &TestServer, org: &str) -> (i64, i64) {
    let store = roost_store::Store::connect(&s.database_url).await.unwrap();
    let pool = store.pool();
    let j: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_entries WHERE org_id = $1 AND type = 'expiry'",
    )
    .bind(org)
    .fetch_one(pool)
    .await
    .unwrap()
    .try_get(0)
    .unwrap();
    let g: i64 = sqlx::query("SELECT CAST(COALESCE(SUM(expired), 0) AS BIGINT) FROM grants WHERE org_id = $1")
        .bind(org)
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    store.close().await;
    (j, g)
}
