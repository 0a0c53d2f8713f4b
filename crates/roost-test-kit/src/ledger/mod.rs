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

mod invariants;
mod org;
mod tables;

use roost_store::{Store, redact};

use invariants::problems;
use tables::Tables;

pub use org::{OrgLedger, check_org};

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
