//! Idempotency keys in their two places: a charge answered with success keeps its key on its
//! journal entry, every other answer is a row of `idempotency`. One lookup reads both.

use sqlx::{AssertSqlSafe, Row};

use super::bulk::in_list;
use super::rows::{ENTRY_COLS, IdemRow, entry_from};
use super::tx::LedgerTx;
use crate::Result;

impl LedgerTx {
    /// Stored idempotency records for `(org, key)` pairs, from both places a record lives: a
    /// charge answered with success is its journal entry (`idem_key`, presented as the record
    /// `{"$entry": id}` with the entry's time; entries before the purge horizon are forgotten),
    /// every other answer is a row of the `idempotency` table. The entries found are kept for
    /// [`LedgerTx::entries`], so replaying them costs no second read.
    pub async fn idempotency(&mut self, pairs: &[(String, String)]) -> Result<Vec<IdemRow>> {
        let mut out = Vec::new();
        for chunk in pairs.chunks(1000) {
            // One statement for every org of the batch, answered from the unique index
            // (org_id, idem_key, idem_day) and the primary key (org_id, key); pairs that cross
            // (another org's key) are dropped below.
            let mut orgs: Vec<&str> = chunk.iter().map(|(o, _)| o.as_str()).collect();
            orgs.sort_unstable();
            orgs.dedup();
            let sql = idempotency_sql(orgs.len(), chunk.len());
            // Planned afresh each time: a generic plan made while the tables were small could keep
            // scanning them whole once they are large.
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
            for o in &orgs {
                q = q.bind(*o);
            }
            for (_, k) in chunk {
                q = q.bind(k.as_str());
            }
            let (mut on_entries, mut in_table) = (Vec::new(), Vec::new());
            for r in q.fetch_all(&mut *self.tx).await? {
                let org_id: String = r.try_get("o")?;
                let key: String = r.try_get("k")?;
                if !chunk.iter().any(|(o, k)| *o == org_id && *k == key) {
                    continue;
                }
                let (fingerprint, created_at) = (r.try_get("fp")?, r.try_get("t")?);
                if r.try_get::<String, _>("src")? == "t" {
                    in_table.push(IdemRow { org_id, key, fingerprint, record: r.try_get("response")?, created_at });
                    continue;
                }
                let e = entry_from(&r)?;
                let record = serde_json::json!({ "$entry": e.id }).to_string();
                on_entries.push(IdemRow { org_id, key, fingerprint, record, created_at });
                self.found.insert((e.org_id.clone(), e.id.clone()), e);
            }
            // A key is in one place only. Should both hold it (a bug), the entry wins.
            for t in in_table {
                if on_entries.iter().any(|e| e.org_id == t.org_id && e.key == t.key) {
                    tracing::warn!(org = %t.org_id, key = %t.key, "an idempotency key is both on an entry and in the table");
                } else {
                    out.push(t);
                }
            }
            out.append(&mut on_entries);
        }
        Ok(out)
    }
}

/// The lookup of idempotency keys in both their places, for `orgs` orgs (`$1…`) and `keys` keys
/// (after them). The horizon is compared as `+at`, which no index serves: otherwise SQLite walks
/// the journal by `(org_id, at)` from the horizon on — every entry of the org — instead of
/// probing `ledger_entries_idem` for each key.
fn idempotency_sql(orgs: usize, keys: usize) -> String {
    let (o, k) = (in_list(1, orgs), in_list(orgs + 1, keys));
    let nulls = ENTRY_COLS.split(", ").map(|_| "NULL").collect::<Vec<_>>().join(", ");
    format!(
        "SELECT 'e' AS src, org_id AS o, idem_key AS k, idem_fp AS fp, at AS t, CAST(NULL AS TEXT) AS response, \
         {ENTRY_COLS} FROM ledger_entries WHERE org_id IN ({o}) AND idem_key IN ({k}) AND idem_key IS NOT NULL \
         AND +at >= (SELECT forget_before FROM idempotency_horizon WHERE id = 1) \
         UNION ALL SELECT 't', org_id, key, fingerprint, created_at, response, {nulls} FROM idempotency \
         WHERE org_id IN ({o}) AND key IN ({k})"
    )
}

#[cfg(test)]
mod tests {
    use super::idempotency_sql;
    use crate::Store;

    /// A regression: the lookup walked every journal entry of the org on SQLite (by
    /// `ledger_entries_at`), so each batch got slower as the journal grew.
    #[tokio::test]
    async fn idempotency_lookup_probes_the_key_index() {
        let path = std::env::temp_dir().join(format!("roost-idem-plan-{}.db", roost_domain::IdKind::Org.generate()));
        let store = Store::connect(&format!("sqlite://{}", path.display())).await.expect("connect");
        store.migrate().await.expect("migrate");
        let sql = format!("EXPLAIN QUERY PLAN {}", idempotency_sql(2, 3));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in ["org_a", "org_b", "k1", "k2", "k3"] {
            q = q.bind(v);
        }
        let plan: Vec<String> = q
            .fetch_all(store.pool())
            .await
            .expect("plan")
            .iter()
            .map(|r| sqlx::Row::try_get::<String, _>(r, "detail").unwrap_or_default())
            .collect();
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut f = path.clone().into_os_string();
            f.push(suffix);
            let _ = std::fs::remove_file(f);
        }
        let journal: Vec<&String> = plan.iter().filter(|d| d.contains("ledger_entries")).collect();
        assert!(
            journal.iter().all(|d| d.contains("ledger_entries_idem")),
            "the journal is searched by the key index: {plan:?}"
        );
    }
}
