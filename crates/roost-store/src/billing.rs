//! Billing (API.md "Billing"): the plans an org was on, invoices per billing cycle, purchases of
//! credits, and the payment reports that settle them. What is owed is computed by
//! `roost_domain::billing`; this module gathers the facts and keeps the records.
//!
//! Exactly-once rules live in the database: an invoice leaves `draft` only in the transaction
//! that takes its number (the counter row is locked until commit, so numbers are gapless across
//! processes), and a purchase leaves `pending` in one conditional update.

use roost_domain::billing::{self, Bought, Cycle, Line, PlanSpan};
use roost_domain::credits::cycle_at;
use roost_domain::ledger::EventType;
use roost_domain::{Catalog, IdKind};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{Entry, record};
use crate::events::insert_event;
use crate::scope::{Cross, Scope};
use crate::{Ctx, Page, Result, Store, StoreError, finish_page, page};

/// An invoice as the API shows it (a draft's lines computed as of the read).
#[derive(Debug, Clone)]
pub struct Invoice {
    pub org_id: String,
    pub id: String,
    pub number: Option<i64>,
    pub period_start: i64,
    pub period_end: i64,
    pub status: String,
    pub currency: String,
    pub lines: Vec<Line>,
    pub total: i64,
    /// What is still to pay: the total less purchases on it already paid.
    pub amount_due: i64,
    pub billed_name: String,
    pub billed_email: String,
    pub issued_at: Option<i64>,
    pub paid_at: Option<i64>,
}

/// A purchase of credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    pub org_id: String,
    pub id: String,
    pub wallet_kind: String,
    /// `purchase`, `topup` or `auto_reload`.
    pub origin: String,
    pub packs: i64,
    pub credits: i64,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `paid` or `failed`.
    pub status: String,
    pub invoice_id: String,
    pub grant_id: Option<String>,
    pub created_at: i64,
    pub granted_at: Option<i64>,
}

const PURCHASE_COLS: &str = "org_id, id, wallet_kind, origin, packs, credits, amount, currency, status, invoice_id, grant_id, created_at, granted_at";

fn purchase_from(r: &AnyRow) -> Result<Purchase, sqlx::Error> {
    Ok(Purchase {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        wallet_kind: r.try_get("wallet_kind")?,
        origin: r.try_get("origin")?,
        packs: r.try_get("packs")?,
        credits: r.try_get("credits")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        status: r.try_get("status")?,
        invoice_id: r.try_get("invoice_id")?,
        grant_id: r.try_get("grant_id")?,
        created_at: r.try_get("created_at")?,
        granted_at: r.try_get("granted_at")?,
    })
}

/// A purchase to record.
#[derive(Debug, Clone)]
pub struct NewPurchase {
    pub org_id: String,
    pub wallet_kind: String,
    pub origin: String,
    pub packs: i64,
    pub credits: i64,
    pub amount: i64,
    pub currency: String,
    /// The request's `Idempotency-Key` and fingerprint.
    pub idem: Option<(String, String)>,
}

/// What recording a purchase came to.
#[derive(Debug, Clone)]
pub enum PurchaseMade {
    Created(Purchase),
    /// The same `Idempotency-Key` and request as before: the first purchase.
    Replayed(Purchase),
    /// The same `Idempotency-Key` with another request.
    Conflict,
}

/// One org as the operator's list shows it.
#[derive(Debug, Clone)]
pub struct AdminOrg {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub plan: String,
    pub owner_id: String,
    pub members: i64,
    pub balance: i64,
    pub created_at: i64,
}

/// A plan change, as billing records it.
#[derive(Debug, Clone)]
pub struct PlanChange<'a> {
    pub old: &'a str,
    /// When the old plan's trial ended (or ends), if the org was on it as its trial.
    pub old_trial: Option<i64>,
    pub new: &'a str,
    /// When the new plan's trial ends, if the org moves to it as its trial.
    pub new_trial: Option<i64>,
    /// Given by the operator without payment.
    pub given: bool,
}

/// The org facts an invoice is computed from.
#[derive(Debug, Clone)]
struct OrgFacts {
    id: String,
    name: String,
    kind: String,
    plan: String,
    created_at: i64,
    trial_ends_at: Option<i64>,
    owner_name: String,
    owner_email: String,
    billing_email: Option<String>,
}

async fn org_facts(tx: &mut AnyConnection, org_id: &str) -> Result<OrgFacts> {
    let r = sqlx::query(
        "SELECT o.id, o.name, o.kind, o.plan, o.created_at, o.trial_ends_at, u.name AS owner_name, u.email AS owner_email, \
         b.billing_email FROM orgs o JOIN users u ON u.id = o.owner_id LEFT JOIN org_billing b ON b.org_id = o.id \
         WHERE o.id = $1 AND o.deleted_at IS NULL",
    )
    .bind(org_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(OrgFacts {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        plan: r.try_get("plan")?,
        created_at: r.try_get("created_at")?,
        trial_ends_at: r.try_get("trial_ends_at")?,
        owner_name: r.try_get("owner_name")?,
        owner_email: r.try_get("owner_email")?,
        billing_email: r.try_get("billing_email")?,
    })
}

impl OrgFacts {
    /// Who the invoice is addressed to: a personal org's user, else the org; at `billing_email`
    /// when set, else the owner's address.
    fn billed_to(&self) -> (String, String) {
        let name = if self.kind == "personal" { self.owner_name.clone() } else { self.name.clone() };
        (name, self.billing_email.clone().unwrap_or_else(|| self.owner_email.clone()))
    }
}

/// The draft of the cycle containing `now` (made if missing); its id.
async fn ensure_draft(tx: &mut AnyConnection, o: &OrgFacts, currency: &str, now: i64) -> Result<String> {
    let (_, start, end) = cycle_at(o.created_at, now);
    let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM org_members WHERE org_id = $1")
        .bind(&o.id)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO invoices (org_id, id, period_start, period_end, status, currency, max_members, created_at) \
         VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7) ON CONFLICT (org_id, period_start) DO NOTHING",
    )
    .bind(&o.id)
    .bind(IdKind::Invoice.generate())
    .bind(start)
    .bind(end)
    .bind(currency)
    .bind(members)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let id: String = sqlx::query_scalar("SELECT id FROM invoices WHERE org_id = $1 AND period_start = $2")
        .bind(&o.id)
        .bind(start)
        .fetch_one(&mut *tx)
        .await?;
    // The most members this cycle saw: counted whenever billing looks at the org.
    sqlx::query(
        "UPDATE invoices SET max_members = CASE WHEN max_members < $3 THEN $3 ELSE max_members END \
         WHERE org_id = $1 AND id = $2 AND status = 'draft'",
    )
    .bind(&o.id)
    .bind(&id)
    .bind(members)
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

/// What an invoice row holds, before its lines are computed.
struct InvoiceRow {
    id: String,
    number: Option<i64>,
    period_start: i64,
    period_end: i64,
    status: String,
    currency: String,
    lines: String,
    total: i64,
    billed_name: Option<String>,
    billed_email: Option<String>,
    max_members: i64,
    issued_at: Option<i64>,
    paid_at: Option<i64>,
}

const INVOICE_COLS: &str = "id, number, period_start, period_end, status, currency, lines, total, billed_name, billed_email, max_members, issued_at, paid_at";

fn invoice_row(r: &AnyRow) -> Result<InvoiceRow, sqlx::Error> {
    Ok(InvoiceRow {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        period_start: r.try_get("period_start")?,
        period_end: r.try_get("period_end")?,
        status: r.try_get("status")?,
        currency: r.try_get("currency")?,
        lines: r.try_get("lines")?,
        total: r.try_get("total")?,
        billed_name: r.try_get("billed_name")?,
        billed_email: r.try_get("billed_email")?,
        max_members: r.try_get("max_members")?,
        issued_at: r.try_get("issued_at")?,
        paid_at: r.try_get("paid_at")?,
    })
}

/// The cycle's facts: plans in force (split at the end of a trial), most members, purchases.
async fn cycle_facts(tx: &mut AnyConnection, o: &OrgFacts, inv: &InvoiceRow) -> Result<Cycle> {
    let (start, end) = (inv.period_start, inv.period_end);
    let rows = sqlx::query(
        "SELECT plan, from_at, to_at, given, trial_ends_at FROM plan_periods WHERE org_id = $1 AND from_at < $3 \
         AND (to_at IS NULL OR to_at > $2) ORDER BY from_at, id",
    )
    .bind(&o.id)
    .bind(start)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;
    let any: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plan_periods WHERE org_id = $1")
        .bind(&o.id)
        .fetch_one(&mut *tx)
        .await?;
    // (span, when its trial ends)
    let mut spans: Vec<(PlanSpan, Option<i64>)> = Vec::new();
    if any == 0 {
        let s = PlanSpan { plan: o.plan.clone(), from: o.created_at.max(start), to: end, given: false, trial: false };
        spans.push((s, o.trial_ends_at));
    }
    for r in rows {
        let s = PlanSpan {
            plan: r.try_get("plan")?,
            from: r.try_get::<i64, _>("from_at")?.max(start),
            to: r.try_get::<Option<i64>, _>("to_at")?.unwrap_or(end).min(end),
            given: r.try_get::<i64, _>("given")? != 0,
            trial: false,
        };
        spans.push((s, r.try_get("trial_ends_at")?));
    }
    // A trial is free until it ends; what follows it on the same plan is paid.
    let mut split = Vec::new();
    for (s, trial_end) in spans {
        match trial_end {
            Some(t) if t >= s.to => split.push(PlanSpan { trial: true, ..s }),
            Some(t) if t > s.from => {
                split.push(PlanSpan { to: t, trial: true, ..s.clone() });
                split.push(PlanSpan { from: t, ..s });
            }
            _ => split.push(s),
        }
    }
    let rows = sqlx::query(
        "SELECT id, origin, packs, credits, amount, created_at FROM purchases WHERE org_id = $1 AND invoice_id = $2 \
         AND (status <> 'failed' OR origin = 'auto_reload') ORDER BY created_at, id",
    )
    .bind(&o.id)
    .bind(&inv.id)
    .fetch_all(&mut *tx)
    .await?;
    let purchases = rows
        .iter()
        .map(|r| {
            Ok(Bought {
                id: r.try_get("id")?,
                origin: r.try_get("origin")?,
                packs: r.try_get("packs")?,
                credits: r.try_get("credits")?,
                amount: r.try_get("amount")?,
                at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Cycle { start, end, spans: split, max_members: inv.max_members, purchases })
}

/// What purchases on the invoice were already paid (they are not owed again).
async fn prepaid(tx: &mut AnyConnection, org_id: &str, invoice_id: &str) -> Result<i64> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(amount) AS BIGINT) FROM purchases WHERE org_id = $1 AND invoice_id = $2 AND status = 'paid'",
    )
    .bind(org_id)
    .bind(invoice_id)
    .fetch_one(&mut *tx)
    .await?;
    Ok(n.unwrap_or(0))
}

/// The invoice as shown: a finalized one as written, a draft computed now.
async fn present(tx: &mut AnyConnection, o: &OrgFacts, inv: InvoiceRow, catalog: &Catalog) -> Result<Invoice> {
    let (lines, total, name, email) = if inv.status == "draft" {
        let lines = billing::lines(&cycle_facts(tx, o, &inv).await?, catalog);
        let total = billing::total(&lines);
        let (n, e) = o.billed_to();
        (lines, total, n, e)
    } else {
        let lines: Vec<Line> =
            serde_json::from_str(&inv.lines).map_err(|e| sqlx::Error::Decode(format!("invoices.lines: {e}").into()))?;
        (lines, inv.total, inv.billed_name.unwrap_or_default(), inv.billed_email.unwrap_or_default())
    };
    let amount_due = if inv.status == "paid" || inv.status == "void" {
        0
    } else {
        (total - prepaid(tx, &o.id, &inv.id).await?).max(0)
    };
    Ok(Invoice {
        org_id: o.id.clone(),
        id: inv.id,
        number: inv.number,
        period_start: inv.period_start,
        period_end: inv.period_end,
        status: inv.status,
        currency: inv.currency,
        lines,
        total,
        amount_due,
        billed_name: name,
        billed_email: email,
        issued_at: inv.issued_at,
        paid_at: inv.paid_at,
    })
}

impl Store {
    /// Opens a write transaction scoped to `org_id`, the org locked.
    pub(crate) async fn billing_tx(&self, org_id: &str) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        self.lock_org(&mut tx, org_id).await?;
        Ok(tx)
    }

    /// Makes sure the org has a draft for the cycle containing `now`, and counts its members
    /// towards the cycle's most. Called when an org is made and when members join.
    pub async fn billing_touch(&self, org_id: &str, currency: &str, now: i64) -> Result<String> {
        let mut tx = self.billing_tx(org_id).await?;
        let o = org_facts(&mut tx, org_id).await?;
        let id = ensure_draft(&mut tx, &o, currency, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Records that the org moved from `old` (a trial until `old_trial`, if it was one) to `new`
    /// at `now` (`given`: by the operator, without payment; `new_trial`: as its trial, until then),
    /// closing the old plan's period and opening the new one.
    pub async fn billing_plan_changed(
        &self,
        org_id: &str,
        change: &PlanChange<'_>,
        currency: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.billing_tx(org_id).await?;
        let o = org_facts(&mut tx, org_id).await?;
        // The draft first: it must cover the cycle before the change is recorded.
        ensure_draft(&mut tx, &o, currency, now).await?;
        let any: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plan_periods WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
        if any == 0 {
            // The plan the org had since it was made (or since before billing kept periods).
            sqlx::query(
                "INSERT INTO plan_periods (org_id, id, plan, from_at, to_at, given, trial_ends_at) VALUES ($1, $2, $3, $4, $5, 0, $6)",
            )
            .bind(org_id)
            .bind(IdKind::Invoice.generate())
            .bind(change.old)
            .bind(o.created_at)
            .bind(now)
            .bind(change.old_trial)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE plan_periods SET to_at = $2 WHERE org_id = $1 AND to_at IS NULL")
                .bind(org_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO plan_periods (org_id, id, plan, from_at, to_at, given, trial_ends_at) VALUES ($1, $2, $3, $4, NULL, $5, $6)",
        )
        .bind(org_id)
        .bind(IdKind::Invoice.generate())
        .bind(change.new)
        .bind(now)
        .bind(i64::from(change.given))
        .bind(change.new_trial)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or clears) the address invoices go to instead of the owner's.
    pub async fn set_billing_email(&self, org_id: &str, email: Option<&str>, ctx: &Ctx) -> Result<()> {
        let mut tx = self.billing_tx(org_id).await?;
        sqlx::query(
            "INSERT INTO org_billing (org_id, billing_email) VALUES ($1, $2) \
             ON CONFLICT (org_id) DO UPDATE SET billing_email = excluded.billing_email",
        )
        .bind(org_id)
        .bind(email)
        .execute(&mut *tx)
        .await?;
        let detail = json!({"billing_email": email});
        let e = Entry {
            org_id,
            action: "org.billing_email_set",
            workspace_id: None,
            target: Some(("org", org_id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The address invoices go to when not the owner's.
    pub async fn billing_email(&self, org_id: &str) -> Result<Option<String>> {
        let mut tx = self.scoped(Scope::Org(org_id)).await?;
        let e: Option<Option<String>> = sqlx::query_scalar("SELECT billing_email FROM org_billing WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.done().await?;
        Ok(e.flatten())
    }

    /// Whether an invoice of the org has been owed for longer than the grace period (`past_due`).
    pub async fn past_due(&self, org_id: &str, overdue_before: i64) -> Result<bool> {
        let mut tx = self.scoped(Scope::Org(org_id)).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM invoices WHERE org_id = $1 AND status = 'open' AND issued_at < $2",
        )
        .bind(org_id)
        .bind(overdue_before)
        .fetch_one(&mut *tx)
        .await?;
        tx.done().await?;
        Ok(n > 0)
    }

    /// The org's invoices, newest cycle first (the current draft computed as of `now`).
    pub async fn list_invoices(
        &self,
        org_id: &str,
        catalog: &Catalog,
        now: i64,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Invoice>> {
        let (fetch, _) = page(limit, cursor);
        let mut tx = self.billing_tx(org_id).await?;
        let o = org_facts(&mut tx, org_id).await?;
        ensure_draft(&mut tx, &o, catalog.currency(), now).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVOICE_COLS} FROM invoices WHERE org_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
        )))
        .bind(org_id)
        .bind(cursor.unwrap_or(""))
        .bind(fetch)
        .fetch_all(&mut *tx)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(present(&mut tx, &o, invoice_row(r)?, catalog).await?);
        }
        tx.commit().await?;
        Ok(finish_page(items, fetch, |i| i.id.clone()))
    }

    /// One invoice of the org (`None` if the org has no such invoice).
    pub async fn invoice(&self, org_id: &str, id: &str, catalog: &Catalog) -> Result<Option<Invoice>> {
        let mut tx = self.billing_tx(org_id).await?;
        let o = org_facts(&mut tx, org_id).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVOICE_COLS} FROM invoices WHERE org_id = $1 AND id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let inv = match row {
            Some(r) => Some(present(&mut tx, &o, invoice_row(&r)?, catalog).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(inv)
    }

    /// The org an invoice or purchase id belongs to (a cross-org lookup by id).
    pub async fn billing_owner(&self, id: &str) -> Result<Option<String>> {
        let sql = self.cross(Cross::BillingOwner);
        let org: Option<Option<String>> = sqlx::query_scalar(sql).bind(id).fetch_optional(&self.pool).await?;
        Ok(org.flatten())
    }

    /// Records a purchase, pending (auto-reloads come through [`Store::record_auto_reloads`]).
    pub async fn create_purchase(&self, p: &NewPurchase, ctx: &Ctx) -> Result<PurchaseMade> {
        let mut tx = self.billing_tx(&p.org_id).await?;
        if let Some((key, fp)) = &p.idem {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {PURCHASE_COLS}, idem_fp FROM purchases WHERE org_id = $1 AND idem_key = $2"
            )))
            .bind(&p.org_id)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = row {
                let same = r.try_get::<Option<String>, _>("idem_fp")?.as_deref() == Some(fp.as_str());
                return Ok(if same { PurchaseMade::Replayed(purchase_from(&r)?) } else { PurchaseMade::Conflict });
            }
        }
        let o = org_facts(&mut tx, &p.org_id).await?;
        let invoice_id = ensure_draft(&mut tx, &o, &p.currency, ctx.now).await?;
        let id = IdKind::Purchase.generate();
        sqlx::query(
            "INSERT INTO purchases (org_id, id, wallet_kind, origin, packs, credits, amount, currency, status, invoice_id, created_at, idem_key, idem_fp) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $12)",
        )
        .bind(&p.org_id)
        .bind(&id)
        .bind(&p.wallet_kind)
        .bind(&p.origin)
        .bind(p.packs)
        .bind(p.credits)
        .bind(p.amount)
        .bind(&p.currency)
        .bind(&invoice_id)
        .bind(ctx.now)
        .bind(p.idem.as_ref().map(|i| i.0.as_str()))
        .bind(p.idem.as_ref().map(|i| i.1.as_str()))
        .execute(&mut *tx)
        .await?;
        let detail = json!({"purchase_id": id, "wallet": p.wallet_kind, "packs": p.packs, "credits": p.credits,
            "amount": p.amount, "currency": p.currency, "origin": p.origin});
        let e = Entry {
            org_id: &p.org_id,
            action: "purchase.created",
            workspace_id: None,
            target: Some(("purchase", &id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PURCHASE_COLS} FROM purchases WHERE org_id = $1 AND id = $2"
        )))
        .bind(&p.org_id)
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        let made = purchase_from(&r)?;
        tx.commit().await?;
        Ok(PurchaseMade::Created(made))
    }

    /// One purchase of the org.
    pub async fn purchase(&self, org_id: &str, id: &str) -> Result<Option<Purchase>> {
        let mut tx = self.scoped(Scope::Org(org_id)).await?;
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PURCHASE_COLS} FROM purchases WHERE org_id = $1 AND id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.done().await?;
        Ok(r.as_ref().map(purchase_from).transpose()?)
    }

    /// Records, as purchases billed on the cycle's invoice, the org's auto-reloads that are not yet
    /// (the ledger grants them at once, in its own batches). `price` prices a number of credits.
    pub async fn record_auto_reloads(
        &self,
        org_id: &str,
        currency: &str,
        price: &(dyn Fn(i64) -> i64 + Sync),
        now: i64,
    ) -> Result<usize> {
        let mut tx = self.billing_tx(org_id).await?;
        let rows = sqlx::query(
            "SELECT g.id, g.amount, g.created_at, w.kind FROM grants g JOIN wallets w ON w.org_id = g.org_id AND w.id = g.wallet_id \
             WHERE g.org_id = $1 AND g.reason = 'auto_reload' \
             AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.org_id = g.org_id AND p.grant_id = g.id) ORDER BY g.created_at",
        )
        .bind(org_id)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let o = org_facts(&mut tx, org_id).await?;
        let mut n = 0;
        for r in &rows {
            let (grant, credits, at, kind): (String, i64, i64, String) =
                (r.try_get("id")?, r.try_get("amount")?, r.try_get("created_at")?, r.try_get("kind")?);
            // Billed on the invoice of the cycle the reload happened in while that one is a draft,
            // else (finalized meanwhile) on the current draft.
            let mut invoice_id = ensure_draft(&mut tx, &o, currency, at).await?;
            let status: String = sqlx::query_scalar("SELECT status FROM invoices WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(&invoice_id)
                .fetch_one(&mut *tx)
                .await?;
            if status != "draft" {
                invoice_id = ensure_draft(&mut tx, &o, currency, now).await?;
            }
            let id = IdKind::Purchase.generate();
            sqlx::query(
                "INSERT INTO purchases (org_id, id, wallet_kind, origin, packs, credits, amount, currency, status, invoice_id, grant_id, created_at, granted_at) \
                 VALUES ($1, $2, $3, 'auto_reload', 0, $4, $5, $6, 'pending', $7, $8, $9, $9)",
            )
            .bind(org_id)
            .bind(&id)
            .bind(&kind)
            .bind(credits)
            .bind(price(credits))
            .bind(currency)
            .bind(&invoice_id)
            .bind(&grant)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            n += 1;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Orgs with auto-reloads not yet recorded as purchases (every org, across tenants).
    pub async fn orgs_with_unbilled_reloads(&self, n: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(self.cross(Cross::UnbilledReloads)).bind(n).fetch_all(&self.pool).await?)
    }

    /// Marks a paid purchase's credits as granted (`grant_id`): once; `purchase.completed` with it.
    pub async fn purchase_granted(&self, org_id: &str, id: &str, grant_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.billing_tx(org_id).await?;
        let done = sqlx::query(
            "UPDATE purchases SET granted_at = $3, grant_id = $4 WHERE org_id = $1 AND id = $2 AND granted_at IS NULL AND status = 'paid'",
        )
        .bind(org_id)
        .bind(id)
        .bind(now)
        .bind(grant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            let p = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {PURCHASE_COLS} FROM purchases WHERE org_id = $1 AND id = $2"
            )))
            .bind(org_id)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let p = purchase_from(&p)?;
            let data = json!({"purchase_id": p.id, "wallet": p.wallet_kind, "credits": p.credits, "grant_id": grant_id,
                "invoice_id": p.invoice_id, "amount": p.amount, "currency": p.currency});
            insert_event(&mut tx, org_id, EventType::PurchaseCompleted, None, data, now).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Paid purchases whose credits are not yet granted (a crash between payment and grant).
    pub async fn purchases_to_grant(&self, n: i64) -> Result<Vec<Purchase>> {
        let ids = sqlx::query(self.cross(Cross::PurchasesToGrant)).bind(n).fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(ids.len());
        for r in &ids {
            let (org_id, id): (String, String) = (r.try_get("org_id")?, r.try_get("id")?);
            out.extend(self.purchase(&org_id, &id).await?);
        }
        Ok(out)
    }

    /// Drafts whose cycle ended by `now` (every org).
    pub async fn due_invoices(&self, now: i64, n: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(self.cross(Cross::DueInvoices)).bind(now).bind(n).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("org_id")?, r.try_get("id")?))).collect()
    }

    /// Finalizes a draft whose cycle has ended: its lines written, its number taken, once. An
    /// invoice with no lines is dropped instead (no number is spent on nothing). Returns the number.
    pub async fn finalize_invoice(&self, org_id: &str, id: &str, catalog: &Catalog, now: i64) -> Result<Option<i64>> {
        let mut tx = self.billing_tx(org_id).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVOICE_COLS} FROM invoices WHERE org_id = $1 AND id = $2{}",
            self.dialect.row_lock()
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(inv) = row.as_ref().map(invoice_row).transpose()? else { return Ok(None) };
        if inv.status != "draft" || inv.period_end > now {
            return Ok(None);
        }
        let o = match org_facts(&mut tx, org_id).await {
            Ok(o) => o,
            Err(StoreError::NotFound) => {
                // The org was deleted: its last draft is void, and spends no number.
                sqlx::query("UPDATE invoices SET status = 'void' WHERE org_id = $1 AND id = $2")
                    .bind(org_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let lines = billing::lines(&cycle_facts(&mut tx, &o, &inv).await?, catalog);
        if lines.is_empty() {
            sqlx::query("DELETE FROM invoices WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(None);
        }
        let total = billing::total(&lines);
        let due = (total - prepaid(&mut tx, org_id, id).await?).max(0);
        // The operator's counter: its row stays locked until this transaction ends, so numbers
        // are handed out in commit order and a rolled-back finalization gives its number back.
        let number: i64 = sqlx::query_scalar("UPDATE invoice_numbers SET last = last + 1 WHERE id = 1 RETURNING last")
            .fetch_one(&mut *tx)
            .await?;
        let (name, email) = o.billed_to();
        let status = if due == 0 { "paid" } else { "open" };
        sqlx::query(
            "UPDATE invoices SET status = $3, number = $4, lines = $5, total = $6, billed_name = $7, billed_email = $8, \
             issued_at = $9, paid_at = $10 WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id)
        .bind(id)
        .bind(status)
        .bind(number)
        .bind(serde_json::to_string(&lines).map_err(|e| StoreError::Setup(e.to_string()))?)
        .bind(total)
        .bind(&name)
        .bind(&email)
        .bind(now)
        .bind((due == 0).then_some(now))
        .execute(&mut *tx)
        .await?;
        let data =
            json!({"invoice_id": id, "number": number, "total": total, "amount_due": due, "currency": inv.currency});
        insert_event(&mut tx, org_id, EventType::InvoiceFinalized, None, data.clone(), now).await?;
        if due == 0 {
            insert_event(&mut tx, org_id, EventType::InvoicePaid, None, data.clone(), now).await?;
        }
        let ctx = Ctx { actor: crate::Actor::system(), ip: None, now };
        let e = Entry {
            org_id,
            action: "invoice.finalized",
            workspace_id: None,
            target: Some(("invoice", id)),
            detail: data,
        };
        record(&mut tx, &ctx, e).await?;
        // The next cycle's draft, so a plan is billed even in a cycle where nothing else happens.
        ensure_draft(&mut tx, &o, &inv.currency, now.max(inv.period_end)).await?;
        tx.commit().await?;
        Ok(Some(number))
    }

    /// Every org, for the operator: plan, members and balance.
    pub async fn admin_orgs(&self, limit: u32, cursor: Option<&str>) -> Result<Page<AdminOrg>> {
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(self.cross(Cross::AdminOrgs)).bind(after).bind(fetch).fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(AdminOrg {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    plan: r.try_get("plan")?,
                    owner_id: r.try_get("owner_id")?,
                    members: r.try_get("members")?,
                    balance: r.try_get("balance")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(finish_page(items, fetch, |o| o.id.clone()))
    }

    /// Wallets whose auto-reload should be paused (`reason`) for a reload's payment, and those that are.
    pub async fn reload_pauses(
        &self,
        overdue_before: i64,
    ) -> Result<(Vec<(String, String, String)>, Vec<(String, String, String)>)> {
        let (want, have) = (self.cross(Cross::ReloadPayments), self.cross(Cross::PausedReloads));
        let read = |r: &AnyRow| -> Result<(String, String, String), sqlx::Error> {
            Ok((r.try_get("org_id")?, r.try_get("wallet_kind")?, r.try_get("reason")?))
        };
        let w = sqlx::query(want).bind(overdue_before).fetch_all(&self.pool).await?;
        let h = sqlx::query(have).fetch_all(&self.pool).await?;
        Ok((w.iter().map(read).collect::<Result<_, _>>()?, h.iter().map(read).collect::<Result<_, _>>()?))
    }
}

/// A JSON error body of the payment intake (the problem fields without the HTTP layer).
pub(crate) fn problem(status: u16, code: &str, detail: &str) -> Value {
    json!({"type": "about:blank", "title": code, "status": status, "code": code, "detail": detail})
}
