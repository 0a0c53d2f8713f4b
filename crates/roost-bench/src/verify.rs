//! The books after the runs: what each of the engine, the baseline and the floor charged.

use roost_store::Store;
use sqlx::AssertSqlSafe;

use crate::setup::Target;
use crate::{AMOUNT, FUNDS};

/// Checks the engine's books after the runs: every wallet's balance equals what its grants hold
/// and what the journal says was charged, and the charged total is what was acknowledged.
pub(crate) async fn verify_engine(store: &Store, targets: &[Target], charged: u64) -> anyhow::Result<()> {
    let mut total = 0i64;
    for t in targets {
        let org = &t.org;
        let (wallets, grants) = store.wallets_of(org).await?;
        for w in &wallets {
            let held: i64 = grants.iter().filter(|g| g.wallet_id == w.id).map(|g| g.remaining + g.reserved).sum();
            anyhow::ensure!(w.granted - w.charged - w.expired == w.balance, "wallet totals disagree in {org}");
            anyhow::ensure!(held == w.balance, "grants disagree with the balance in {org}");
            total += w.charged;
        }
    }
    let acked = i64::try_from(charged)? * AMOUNT;
    anyhow::ensure!(total == acked, "engine: charged {total}, acknowledged {acked}");
    Ok(())
}

/// Checks the baseline's or the floor's books: the balances fell by exactly the charge rows, which
/// are exactly the acknowledged charges.
pub(crate) async fn verify_table(
    store: &Store,
    wallets: &str,
    charges: &str,
    n: usize,
    charged: u64,
) -> anyhow::Result<()> {
    let left: i64 =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM {wallets}")))
            .fetch_one(store.pool())
            .await?;
    let rows: i64 =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM {charges}")))
            .fetch_one(store.pool())
            .await?;
    let spent = i64::try_from(n)? * FUNDS - left;
    let acked = i64::try_from(charged)? * AMOUNT;
    anyhow::ensure!(
        spent == rows && rows == acked,
        "{charges}: balances fell by {spent}, rows {rows}, acknowledged {acked}"
    );
    Ok(())
}
