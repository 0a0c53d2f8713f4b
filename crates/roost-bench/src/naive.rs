//! The naive baseline's runs: one transaction per charge.

use std::sync::Arc;

use roost_domain::IdKind;
use roost_store::Store;

use crate::clients::{drive, pick};
use crate::report::Run;
use crate::setup::Target;
use crate::{AMOUNT, now_ms};

pub(crate) async fn run_naive(store: &Store, targets: &[Target], clients: usize, secs: f64) -> Run {
    let pool = store.pool().clone();
    let begin = if store.backend() == "sqlite" { "BEGIN IMMEDIATE" } else { "BEGIN" };
    let targets = Arc::new(targets.to_vec());
    drive(
        clients,
        secs,
        move |c, i| {
            let pool = pool.clone();
            let targets = targets.clone();
            async move {
                let (t, _) = pick(&targets, clients, c, i);
                let mut tx = pool.begin_with(begin).await?;
                let done =
                    sqlx::query("UPDATE naive_wallets SET balance = balance - $1 WHERE id = $2 AND balance >= $1")
                        .bind(AMOUNT)
                        .bind(t.org.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1;
                if done {
                    sqlx::query("INSERT INTO naive_charges (id, wallet_id, amount, at) VALUES ($1, $2, $3, $4)")
                        .bind(IdKind::Charge.generate())
                        .bind(t.org.as_str())
                        .bind(AMOUNT)
                        .bind(now_ms())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(done)
            }
        },
        || {},
    )
    .await
}
