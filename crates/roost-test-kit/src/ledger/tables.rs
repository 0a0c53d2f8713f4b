//! The ledger's tables as the checks read them: wallets, grants, journal, holds, budget counters
//! and usage rollups, in one pass.

use std::collections::BTreeMap;

use roost_store::Store;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug)]
pub(super) struct Wallet {
    pub(super) org: String,
    pub(super) id: String,
    pub(super) balance: i64,
    pub(super) held: i64,
    pub(super) granted: i64,
    pub(super) charged: i64,
    pub(super) expired: i64,
}

#[derive(Debug)]
pub(super) struct Grant {
    pub(super) org: String,
    pub(super) id: String,
    pub(super) wallet: String,
    pub(super) amount: i64,
    pub(super) remaining: i64,
    pub(super) reserved: i64,
    pub(super) expired: i64,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) org: String,
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) wallet: String,
    pub(super) workspace: String,
    pub(super) member: String,
    pub(super) key: String,
    pub(super) amount: i64,
    pub(super) splits: String,
    pub(super) hold_id: Option<String>,
    pub(super) balance_after: i64,
    pub(super) seq: i64,
}

#[derive(Debug)]
pub(super) struct Hold {
    pub(super) org: String,
    pub(super) id: String,
    pub(super) wallet: String,
    pub(super) workspace: String,
    pub(super) member: String,
    pub(super) key: String,
    pub(super) amount: i64,
    pub(super) status: String,
    pub(super) splits: String,
    pub(super) charge_id: Option<String>,
}

/// Everything the checks read, in one pass over the tables.
pub(super) struct Tables {
    pub(super) wallets: Vec<Wallet>,
    pub(super) grants: Vec<Grant>,
    pub(super) entries: Vec<Entry>,
    pub(super) holds: Vec<Hold>,
    /// `(org, scope, subject, used)`.
    pub(super) usage: Vec<(String, String, String, i64)>,
    /// org → `(Σ amount, Σ count)` of its usage rollups.
    pub(super) rollups: BTreeMap<String, (i64, i64)>,
}

pub(super) async fn rows(store: &Store, sql: &'static str) -> Result<Vec<AnyRow>, String> {
    sqlx::query(sql).fetch_all(store.pool()).await.map_err(|e| format!("{sql}: {e}"))
}

pub(super) fn get<'r, T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>>(
    r: &'r AnyRow,
    col: &str,
) -> Result<T, String> {
    r.try_get(col).map_err(|e| format!("column {col}: {e}"))
}

impl Tables {
    pub(super) async fn read(store: &Store) -> Result<Self, String> {
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
