//! Row-level security: which orgs' rows a transaction may see and write.
//!
//! On PostgreSQL every table with an `org_id` column has the policy `org_isolation`, which lets a
//! transaction see and write only the rows of the orgs named in its setting `roost.org_id` (one
//! id, or a comma-separated list). Every store function that touches such a table opens its
//! transaction with [`Store::scoped`] or [`Store::write_in`]: the setting is set in the same
//! round trip as `BEGIN`, so the scope costs no extra one. Where only an object's id is known (a
//! workspace, a key, a webhook …), the org is found inside that same statement by a narrow
//! `SECURITY DEFINER` function (`roost_org_of_*`). On SQLite there is no row-level security and
//! the scope is nothing.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Transaction};

use crate::{Result, Store};

/// The org of an object, as a `SECURITY DEFINER` function finds it from the object's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Workspace,
    Key,
    KeySecret,
    Resource,
    Webhook,
    Hold,
    InvitationToken,
}

impl Owner {
    fn function(self) -> &'static str {
        match self {
            Owner::Workspace => "roost_org_of_workspace",
            Owner::Key => "roost_org_of_key",
            Owner::KeySecret => "roost_org_of_key_secret",
            Owner::Resource => "roost_org_of_resource",
            Owner::Webhook => "roost_org_of_webhook",
            Owner::Hold => "roost_org_of_hold",
            Owner::InvitationToken => "roost_org_of_invitation_token",
        }
    }
}

/// Which orgs a transaction works on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// One org.
    Org(&'a str),
    /// Several orgs (a ledger batch).
    Orgs(&'a [String]),
    /// The org of an object (none if the object does not exist: then nothing is visible).
    Of(Owner, &'a str),
    /// Every org the user is a member of.
    UserOrgs(&'a str),
    /// The orgs with a verified claim on an email domain.
    DomainOrgs(&'a str),
}

/// `s` as a quoted SQL literal if it is made only of the characters of ids, hashes and domains;
/// otherwise a literal that names nothing. (Ids reach the store from URLs: they are never
/// trusted to be well formed.)
fn literal(s: &str) -> String {
    let clean = !s.is_empty()
        && s.len() <= 256
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '+'));
    if clean { format!("'{s}'") } else { "'-'".to_string() }
}

impl Scope<'_> {
    /// The SQL expression whose value is the setting.
    fn expr(&self) -> String {
        match self {
            Scope::Org(o) => literal(o),
            Scope::Orgs(os) => {
                let ids: Vec<String> =
                    os.iter().map(|o| literal(o)).map(|l| l.trim_matches('\'').to_string()).collect();
                format!("'{}'", ids.join(","))
            }
            Scope::Of(owner, id) => format!("{}({})", owner.function(), literal(id)),
            Scope::UserOrgs(u) => format!("roost_orgs_of_user({})", literal(u)),
            Scope::DomainOrgs(d) => format!("roost_orgs_of_domain({})", literal(d)),
        }
    }

    /// The statement that sets the scope for the rest of the transaction.
    pub(crate) fn set_sql(&self) -> String {
        format!("SELECT set_config('roost.org_id', coalesce({}, ''), true)", self.expr())
    }
}

/// A query that crosses orgs: on PostgreSQL a call of a `SECURITY DEFINER` function (the app
/// role sees no row of a tenant table outside its scope), on SQLite the plain SQL. Both texts
/// take the same parameters and give the same columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cross {
    /// An expression: the personal workspace of the `users` row being updated.
    PersonalWorkspace,
    /// `$1` now, `$2` wall, `$3` limit: ids of webhook endpoints with work due.
    WebhooksDue,
    /// Ends every webhook lease; one row, the number ended.
    ClearWebhookLeases,
    /// `$1` now, `$2` limit: orgs whose ledger has something due.
    LedgerDue,
    /// `$1` before: deletes older idempotency records; one row, the number deleted.
    PurgeIdempotency,
    /// `$1` after, `$2` before, `$3` limit: alert events of every org, oldest first.
    AlertEvents,
    /// `$1` cutoffs (`{"<plan id>": <oldest at kept, Unix ms>}` as JSON text), `$2` limit:
    /// `(org_id, workspace_id, cutoff)` of workspaces holding history older than their plan keeps.
    HistoryExpired,
    /// `$1` an invoice or purchase id: its org (no row, or NULL, if there is none).
    BillingOwner,
    /// `$1` webhook-id: the receipt of the payment report first received under it.
    PaymentReceipt,
    /// `$1` webhook-id, `$2` body hash, `$3` target, `$4` status, `$5` response, `$6` received at:
    /// records the receipt of a report naming no invoice or purchase (of no org), unless one is
    /// recorded under the webhook-id already; one row, the number recorded.
    UnmatchedReceipt,
    /// `$1` now, `$2` limit: drafts of every org whose cycle ended, as `org_id, id`.
    DueInvoices,
    /// `$1` limit: orgs with auto-reload grants not yet recorded as purchases.
    UnbilledReloads,
    /// `$1` limit: paid purchases of every org whose credits are not granted, as `org_id, id`.
    PurchasesToGrant,
    /// `$1` after, `$2` limit: every live org for the operator, with members and balance.
    AdminOrgs,
    /// `$1` overdue before: wallets whose auto-reload's payment failed or is overdue, with why.
    ReloadPayments,
    /// Wallets whose auto-reload is paused, with why.
    PausedReloads,
}

impl Cross {
    pub(crate) fn sql(self, row_security: bool) -> &'static str {
        match (self, row_security) {
            (Cross::PersonalWorkspace, true) => "roost_personal_workspace(users.id)",
            (Cross::PersonalWorkspace, false) => {
                "(SELECT w.id FROM workspaces w JOIN orgs o ON o.id = w.org_id \
                 WHERE o.owner_id = users.id AND o.kind = 'personal' AND w.is_personal = 1)"
            }
            (Cross::WebhooksDue, true) => "SELECT id FROM roost_webhooks_due($1, $2, $3) AS id",
            (Cross::WebhooksDue, false) => {
                "SELECT w.id FROM webhooks w WHERE w.enabled = 1 AND w.next_at <= $1 AND w.lease_until <= $2 \
                 AND EXISTS (SELECT 1 FROM events e WHERE e.org_id = w.org_id AND e.id > w.cursor) \
                 ORDER BY w.next_at LIMIT $3"
            }
            (Cross::ClearWebhookLeases, true) => "SELECT roost_clear_webhook_leases() AS n",
            (Cross::ClearWebhookLeases, false) => {
                "UPDATE webhooks SET lease_owner = NULL, lease_until = 0 WHERE lease_until <> 0"
            }
            (Cross::LedgerDue, true) => "SELECT org_id FROM roost_ledger_due($1, $2) AS org_id",
            (Cross::LedgerDue, false) => {
                "SELECT org_id FROM ledger_heads WHERE next_event_at <= $1 ORDER BY next_event_at LIMIT $2"
            }
            (Cross::PurgeIdempotency, true) => "SELECT roost_purge_idempotency($1) AS n",
            (Cross::PurgeIdempotency, false) => "DELETE FROM idempotency WHERE created_at < $1",
            (Cross::AlertEvents, true) => {
                "SELECT org_id, id, type, workspace_id, data, created_at FROM roost_alert_events($1, $2, $3)"
            }
            (Cross::AlertEvents, false) => {
                // The type list is spelled as in the partial index `events_alerts`, so it is used.
                "SELECT org_id, id, type, workspace_id, data, created_at FROM events \
                 WHERE type IN ('credits.low_balance', 'credits.depleted', 'budget.threshold', 'budget.exceeded') \
                 AND id > $1 AND id < $2 ORDER BY id LIMIT $3"
            }
            (Cross::HistoryExpired, true) => {
                "SELECT org_id, workspace_id, cutoff FROM roost_history_expired(CAST($1 AS JSONB), $2)"
            }
            (Cross::HistoryExpired, false) => {
                "SELECT w.org_id AS org_id, w.id AS workspace_id, CAST(c.value AS BIGINT) AS cutoff \
                 FROM json_each($1) c JOIN orgs o ON o.plan = c.key JOIN workspaces w ON w.org_id = o.id \
                 WHERE EXISTS (SELECT 1 FROM workspace_history h WHERE h.org_id = w.org_id AND h.workspace_id = w.id \
                 AND h.at < CAST(c.value AS BIGINT)) ORDER BY w.org_id, w.id LIMIT $2"
            }
            (Cross::BillingOwner, true) => "SELECT roost_billing_owner($1) AS org_id",
            (Cross::BillingOwner, false) => {
                "SELECT org_id FROM invoices WHERE id = $1 UNION ALL SELECT org_id FROM purchases WHERE id = $1 LIMIT 1"
            }
            (Cross::PaymentReceipt, true) => "SELECT body_hash, status_code, response FROM roost_payment_receipt($1)",
            (Cross::PaymentReceipt, false) => {
                "SELECT body_hash, status_code, response FROM payment_receipts WHERE webhook_id = $1"
            }
            (Cross::UnmatchedReceipt, true) => "SELECT roost_record_unmatched_receipt($1, $2, $3, $4, $5, $6) AS n",
            (Cross::UnmatchedReceipt, false) => {
                "INSERT INTO payment_receipts (webhook_id, body_hash, org_id, target_id, outcome, status_code, response, received_at) \
                 VALUES ($1, $2, NULL, $3, 'refused', $4, $5, $6) ON CONFLICT (webhook_id) DO NOTHING"
            }
            (Cross::DueInvoices, true) => "SELECT org_id, id FROM roost_due_invoices($1, $2)",
            (Cross::DueInvoices, false) => {
                "SELECT org_id, id FROM invoices WHERE status = 'draft' AND period_end <= $1 ORDER BY period_end, id LIMIT $2"
            }
            (Cross::UnbilledReloads, true) => "SELECT org_id FROM roost_unbilled_reloads($1)",
            (Cross::UnbilledReloads, false) => {
                "SELECT DISTINCT g.org_id FROM grants g JOIN orgs o ON o.id = g.org_id AND o.deleted_at IS NULL \
                 WHERE g.reason = 'auto_reload' \
                 AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.org_id = g.org_id AND p.grant_id = g.id) LIMIT $1"
            }
            (Cross::PurchasesToGrant, true) => "SELECT org_id, id FROM roost_purchases_to_grant($1)",
            (Cross::PurchasesToGrant, false) => {
                "SELECT org_id, id FROM purchases WHERE status = 'paid' AND granted_at IS NULL ORDER BY created_at LIMIT $1"
            }
            (Cross::AdminOrgs, true) => {
                "SELECT id, name, kind, plan, owner_id, created_at, members, balance FROM roost_admin_orgs($1, $2)"
            }
            (Cross::AdminOrgs, false) => {
                "SELECT o.id, o.name, o.kind, o.plan, o.owner_id, o.created_at, \
                 (SELECT COUNT(*) FROM org_members m WHERE m.org_id = o.id) AS members, \
                 (SELECT CAST(COALESCE(SUM(w.balance), 0) AS BIGINT) FROM wallets w WHERE w.org_id = o.id) AS balance \
                 FROM orgs o WHERE o.deleted_at IS NULL AND ($1 = '' OR o.id > $1) ORDER BY o.id LIMIT $2"
            }
            (Cross::ReloadPayments, true) => "SELECT org_id, wallet_kind, reason FROM roost_reload_payments($1)",
            (Cross::ReloadPayments, false) => {
                "SELECT org_id, wallet_kind, \
                 MIN(CASE WHEN status = 'failed' THEN 'payment_failed' ELSE 'payment_pending' END) AS reason \
                 FROM purchases WHERE origin = 'auto_reload' AND (status = 'failed' OR (status = 'pending' AND created_at < $1)) \
                 GROUP BY org_id, wallet_kind"
            }
            (Cross::PausedReloads, true) => "SELECT org_id, wallet_kind, reason FROM roost_paused_reloads()",
            (Cross::PausedReloads, false) => {
                "SELECT org_id, kind AS wallet_kind, reload_paused AS reason FROM wallets WHERE reload_paused IS NOT NULL"
            }
        }
    }
}

/// A connection for one store call: on PostgreSQL a transaction scoped to its orgs, elsewhere a
/// plain pooled connection. End it with [`Scoped::done`] (dropping it rolls back).
pub(crate) enum Scoped {
    Conn(PoolConnection<Any>),
    Tx(Transaction<'static, Any>),
}

impl Deref for Scoped {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Scoped::Conn(c) => c,
            Scoped::Tx(t) => t,
        }
    }
}

impl DerefMut for Scoped {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Scoped::Conn(c) => c,
            Scoped::Tx(t) => t,
        }
    }
}

impl Scoped {
    /// Commits the scoped transaction, if there is one.
    pub(crate) async fn done(self) -> Result<()> {
        if let Scoped::Tx(t) = self {
            t.commit().await?;
        }
        Ok(())
    }
}

impl Store {
    /// A connection for reads (or a single write) within `scope`: on PostgreSQL a transaction
    /// whose `BEGIN` sets the scope in the same round trip.
    pub(crate) async fn scoped(&self, scope: Scope<'_>) -> Result<Scoped> {
        if self.dialect.row_security() {
            let sql = format!("BEGIN; {}", scope.set_sql());
            Ok(Scoped::Tx(self.pool.begin_with(AssertSqlSafe(sql)).await?))
        } else {
            Ok(Scoped::Conn(self.pool.acquire().await?))
        }
    }

    /// A write transaction (holding the backend's write lock) within `scope`.
    pub(crate) async fn write_in(&self, scope: Scope<'_>) -> Result<Transaction<'static, Any>> {
        if self.dialect.row_security() {
            let sql = format!("{}; {}", self.dialect.begin_write(), scope.set_sql());
            Ok(self.pool.begin_with(AssertSqlSafe(sql)).await?)
        } else {
            self.write().await
        }
    }

    /// A read-only snapshot transaction within `scope`.
    pub(crate) async fn snapshot_in(&self, scope: Scope<'_>) -> Result<Transaction<'static, Any>> {
        if self.dialect.row_security() {
            let sql = format!("{}; {}", self.dialect.begin_snapshot(), scope.set_sql());
            Ok(self.pool.begin_with(AssertSqlSafe(sql)).await?)
        } else {
            Ok(self.pool.begin_with(self.dialect.begin_snapshot()).await?)
        }
    }

    /// Sets the scope of a transaction already open, for a change that finds its org only inside
    /// the transaction (one more statement).
    pub(crate) async fn rescope(&self, tx: &mut AnyConnection, scope: Scope<'_>) -> Result<()> {
        if self.dialect.row_security() {
            sqlx::raw_sql(AssertSqlSafe(scope.set_sql())).execute(&mut *tx).await?;
        }
        Ok(())
    }

    /// The text of a cross-org query on this backend.
    pub(crate) fn cross(&self, c: Cross) -> &'static str {
        c.sql(self.dialect.row_security())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_name_nothing() {
        assert_eq!(literal("org_01h"), "'org_01h'");
        assert_eq!(literal("x'; DROP TABLE orgs; --"), "'-'");
        assert_eq!(literal("a,b"), "'-'");
        assert_eq!(literal(""), "'-'");
        let two = ["org_a".to_string(), "o'b".to_string()];
        assert_eq!(Scope::Orgs(&two).expr(), "'org_a,-'");
        assert_eq!(Scope::Of(Owner::Key, "key_1").expr(), "roost_org_of_key('key_1')");
    }
}
