//! Payments reported by the operator's payment system (`POST /v1/billing/payments`) or marked by
//! hand by the operator: each settles one invoice or one purchase, once. The report, its outcome
//! and the answer given are kept by `webhook-id`, so a replay gets the first answer and changes
//! nothing; the org's lock orders concurrent reports, so only one of them moves a payment.

use roost_domain::ledger::EventType;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

use crate::audit::{Entry, record};
use crate::billing::{Purchase, problem};
use crate::events::insert_event;
use crate::scope::{Cross, Scope};
use crate::{Actor, Ctx, Result, Store};

/// A payment outcome as the payment system reports it.
#[derive(Debug, Clone)]
pub struct PaymentReport {
    pub webhook_id: String,
    /// SHA-256 of the body: the same `webhook-id` with another body is a conflict.
    pub body_hash: String,
    /// `bill_…` or `pur_…`.
    pub target: String,
    pub succeeded: bool,
    pub amount: i64,
    pub currency: String,
    pub reference: String,
}

/// What a payment report came to.
#[derive(Debug, Clone)]
pub enum Intake {
    /// The same report again: the first answer.
    Replay { status: u16, body: Value },
    /// The same `webhook-id` with another body: nothing done.
    Conflict,
    /// Recorded and answered; `to_grant` are purchases now paid whose credits the ledger grants.
    Done { status: u16, body: Value, to_grant: Vec<Purchase>, org_id: Option<String> },
}

/// How a payment is to be checked and recorded.
struct Settle<'a> {
    succeeded: bool,
    /// The amount and currency reported (`None`: marked by hand, paying what is owed).
    paid: Option<(i64, &'a str)>,
    reference: &'a str,
}

type Settled = (u16, Value, Vec<Purchase>);

impl Store {
    /// Records a payment report and applies it (once per `webhook-id`).
    pub async fn payment_intake(&self, r: &PaymentReport, now: i64) -> Result<Intake> {
        let org = self.billing_owner(&r.target).await?;
        // A report naming no invoice or purchase changes nothing: its receipt belongs to no org.
        let mut tx = match &org {
            Some(o) => self.billing_tx(o).await?,
            None => self.write_in(Scope::Orgs(&[])).await?,
        };
        // The first answer under this webhook-id, whichever org's object it named (a cross-org
        // lookup: the org lock above orders reports on one org only).
        if let Some(first) = self.receipt(&mut tx, r).await? {
            tx.commit().await?;
            return Ok(first);
        }
        let ctx = Ctx { actor: Actor::operator("payment_intake"), ip: None, now };
        let how = Settle { succeeded: r.succeeded, paid: Some((r.amount, &r.currency)), reference: &r.reference };
        let (status, body, to_grant) = match &org {
            None => (404, problem(404, "not_found", "no invoice or purchase has this id"), Vec::new()),
            Some(o) => settle(&mut tx, o, &r.target, &how, &ctx).await?,
        };
        let outcome = body.get("outcome").and_then(Value::as_str).unwrap_or("refused").to_string();
        let recorded = match &org {
            Some(o) => {
                sqlx::query(
                    "INSERT INTO payment_receipts (webhook_id, body_hash, org_id, target_id, outcome, status_code, response, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (webhook_id) DO NOTHING",
                )
                .bind(&r.webhook_id)
                .bind(&r.body_hash)
                .bind(o)
                .bind(&r.target)
                .bind(&outcome)
                .bind(i64::from(status))
                .bind(body.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            }
            None => {
                // Of no org: through `roost_record_unmatched_receipt` on PostgreSQL, which answers the count.
                let q = sqlx::query(self.cross(Cross::UnmatchedReceipt))
                    .bind(&r.webhook_id)
                    .bind(&r.body_hash)
                    .bind(&r.target)
                    .bind(i64::from(status))
                    .bind(body.to_string())
                    .bind(now);
                if self.dialect.row_security() {
                    u64::try_from(q.fetch_one(&mut *tx).await?.try_get::<i64, _>(0)?).unwrap_or(0)
                } else {
                    q.execute(&mut *tx).await?.rows_affected()
                }
            }
        } == 1;
        if !recorded {
            // Another report under the same webhook-id (naming another org's object, or none)
            // committed first: this one changes nothing and answers as that one did.
            tx.rollback().await?;
            let mut c = self.scoped(Scope::Orgs(&[])).await?;
            let first = self.receipt(&mut c, r).await?;
            c.done().await?;
            return Ok(first.unwrap_or(Intake::Conflict));
        }
        tx.commit().await?;
        Ok(Intake::Done { status, body, to_grant, org_id: org })
    }

    /// The answer already given under the report's webhook-id: the same again for the same body,
    /// a conflict for another; `None` if it is the first report under it.
    async fn receipt(&self, tx: &mut AnyConnection, r: &PaymentReport) -> Result<Option<Intake>> {
        let prev = sqlx::query(self.cross(Cross::PaymentReceipt)).bind(&r.webhook_id).fetch_optional(&mut *tx).await?;
        let Some(p) = prev else { return Ok(None) };
        if p.try_get::<String, _>("body_hash")? != r.body_hash {
            return Ok(Some(Intake::Conflict));
        }
        let status: i64 = p.try_get("status_code")?;
        let body: String = p.try_get("response")?;
        Ok(Some(Intake::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
        }))
    }

    /// The operator marks an invoice or purchase paid by hand (no payment system): what it owes
    /// counts as paid with `reference`. Answers like the intake.
    pub async fn mark_paid(
        &self,
        org_id: &str,
        target: &str,
        reference: &str,
        ctx: &Ctx,
    ) -> Result<(u16, Value, Vec<Purchase>)> {
        let mut tx = self.billing_tx(org_id).await?;
        let how = Settle { succeeded: true, paid: None, reference };
        let out = settle(&mut tx, org_id, target, &how, ctx).await?;
        tx.commit().await?;
        Ok(out)
    }
}

fn refused(code: &str, detail: String) -> Settled {
    (
        422,
        json!({"type": "about:blank", "title": "Unprocessable Content", "status": 422, "code": code, "detail": detail, "outcome": "refused"}),
        Vec::new(),
    )
}

fn not_open(detail: &str) -> Settled {
    (
        409,
        json!({"type": "about:blank", "title": "Conflict", "status": 409, "code": "invoice_not_open", "detail": detail, "outcome": "refused"}),
        Vec::new(),
    )
}

async fn audit(
    tx: &mut AnyConnection,
    ctx: &Ctx,
    org_id: &str,
    action: &str,
    target: (&str, &str),
    detail: Value,
) -> Result<()> {
    record(tx, ctx, Entry { org_id, action, workspace_id: None, target: Some(target), detail }).await
}

async fn settle(tx: &mut AnyConnection, org_id: &str, target: &str, how: &Settle<'_>, ctx: &Ctx) -> Result<Settled> {
    if target.starts_with("pur_") {
        settle_purchase(tx, org_id, target, how, ctx).await
    } else {
        settle_invoice(tx, org_id, target, how, ctx).await
    }
}

async fn settle_purchase(
    tx: &mut AnyConnection,
    org_id: &str,
    id: &str,
    how: &Settle<'_>,
    ctx: &Ctx,
) -> Result<Settled> {
    let Some(p) = load_purchase(tx, org_id, id).await? else {
        return Ok((404, problem(404, "not_found", "no invoice or purchase has this id"), Vec::new()));
    };
    let detail = json!({"purchase_id": p.id, "amount": p.amount, "currency": p.currency, "reference": how.reference,
        "reported": how.paid.map(|(a, c)| json!({"amount": a, "currency": c}))});
    if let Some((amount, currency)) = how.paid
        && (amount != p.amount || currency != p.currency)
    {
        audit(tx, ctx, org_id, "payment.refused", ("purchase", id), detail).await?;
        return Ok(refused(
            "payment_mismatch",
            format!("the purchase is owed {} {}; the report says {amount} {currency}", p.amount, p.currency),
        ));
    }
    if p.status == "paid" {
        let outcome = if how.succeeded { "already_paid" } else { "ignored" };
        return Ok((200, json!({"outcome": outcome, "purchase_id": p.id, "status": "paid"}), Vec::new()));
    }
    if how.succeeded {
        sqlx::query("UPDATE purchases SET status = 'paid', paid_at = $3, reference = $4 WHERE org_id = $1 AND id = $2 AND status <> 'paid'")
            .bind(org_id)
            .bind(id)
            .bind(ctx.now)
            .bind(how.reference)
            .execute(&mut *tx)
            .await?;
        audit(tx, ctx, org_id, "payment.succeeded", ("purchase", id), detail).await?;
        let credits = if p.grant_id.is_none() { p.credits } else { 0 };
        let body = json!({"outcome": "paid", "purchase_id": p.id, "status": "paid", "credits": credits});
        let to_grant = if p.grant_id.is_none() { vec![Purchase { status: "paid".into(), ..p }] } else { Vec::new() };
        return Ok((200, body, to_grant));
    }
    sqlx::query(
        "UPDATE purchases SET status = 'failed', reference = $3 WHERE org_id = $1 AND id = $2 AND status = 'pending'",
    )
    .bind(org_id)
    .bind(id)
    .bind(how.reference)
    .execute(&mut *tx)
    .await?;
    let data = json!({"purchase_id": p.id, "invoice_id": p.invoice_id, "amount": p.amount, "currency": p.currency,
        "reference": how.reference, "origin": p.origin});
    insert_event(tx, org_id, EventType::PaymentFailed, None, data, ctx.now).await?;
    audit(tx, ctx, org_id, "payment.failed", ("purchase", id), detail).await?;
    Ok((200, json!({"outcome": "failed", "purchase_id": p.id, "status": "failed"}), Vec::new()))
}

async fn load_purchase(tx: &mut AnyConnection, org_id: &str, id: &str) -> Result<Option<Purchase>> {
    let r = sqlx::query(
        "SELECT org_id, id, wallet_kind, origin, packs, credits, amount, currency, status, invoice_id, grant_id, created_at, granted_at \
         FROM purchases WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match r {
        Some(r) => Some(Purchase {
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
        }),
        None => None,
    })
}

async fn settle_invoice(
    tx: &mut AnyConnection,
    org_id: &str,
    id: &str,
    how: &Settle<'_>,
    ctx: &Ctx,
) -> Result<Settled> {
    let r = sqlx::query("SELECT status, total, currency FROM invoices WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(r) = r else {
        return Ok((404, problem(404, "not_found", "no invoice or purchase has this id"), Vec::new()));
    };
    let (status, total, currency): (String, i64, String) =
        (r.try_get("status")?, r.try_get("total")?, r.try_get("currency")?);
    match status.as_str() {
        "paid" => {
            let outcome = if how.succeeded { "already_paid" } else { "ignored" };
            return Ok((200, json!({"outcome": outcome, "invoice_id": id, "status": "paid"}), Vec::new()));
        }
        "open" => {}
        _ => {
            return Ok(not_open(
                "the invoice is not finalized yet (or void): pay its purchases, or wait for the cycle's end",
            ));
        }
    }
    let prepaid: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(amount) AS BIGINT) FROM purchases WHERE org_id = $1 AND invoice_id = $2 AND status = 'paid'",
    )
    .bind(org_id)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let due = (total - prepaid.unwrap_or(0)).max(0);
    let detail = json!({"invoice_id": id, "amount_due": due, "currency": currency, "reference": how.reference,
        "reported": how.paid.map(|(a, c)| json!({"amount": a, "currency": c}))});
    if let Some((amount, cur)) = how.paid
        && (amount != due || cur != currency)
    {
        audit(tx, ctx, org_id, "payment.refused", ("invoice", id), detail).await?;
        return Ok(refused(
            "payment_mismatch",
            format!("the invoice is owed {due} {currency}; the report says {amount} {cur}"),
        ));
    }
    if !how.succeeded {
        sqlx::query(
            "UPDATE purchases SET status = 'failed' WHERE org_id = $1 AND invoice_id = $2 AND origin = 'auto_reload' AND status = 'pending'",
        )
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let data = json!({"invoice_id": id, "amount": due, "currency": currency, "reference": how.reference});
        insert_event(tx, org_id, EventType::PaymentFailed, None, data, ctx.now).await?;
        audit(tx, ctx, org_id, "payment.failed", ("invoice", id), detail).await?;
        return Ok((200, json!({"outcome": "failed", "invoice_id": id, "status": "open"}), Vec::new()));
    }
    // Purchases still owed on the invoice are paid with it: pending packs get their credits now.
    let rows = sqlx::query(
        "SELECT id FROM purchases WHERE org_id = $1 AND invoice_id = $2 AND status <> 'paid' \
         AND (status = 'pending' OR origin = 'auto_reload') ORDER BY id",
    )
    .bind(org_id)
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let mut to_grant = Vec::new();
    for r in rows {
        let pid: String = r.try_get("id")?;
        sqlx::query("UPDATE purchases SET status = 'paid', paid_at = $3, reference = $4 WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(&pid)
            .bind(ctx.now)
            .bind(how.reference)
            .execute(&mut *tx)
            .await?;
        if let Some(p) = load_purchase(tx, org_id, &pid).await?.filter(|p| p.grant_id.is_none()) {
            to_grant.push(p);
        }
    }
    sqlx::query("UPDATE invoices SET status = 'paid', paid_at = $3, paid_reference = $4 WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .bind(ctx.now)
        .bind(how.reference)
        .execute(&mut *tx)
        .await?;
    let data = json!({"invoice_id": id, "amount": due, "currency": currency, "reference": how.reference});
    insert_event(tx, org_id, EventType::InvoicePaid, None, data, ctx.now).await?;
    audit(tx, ctx, org_id, "invoice.paid", ("invoice", id), detail).await?;
    Ok((200, json!({"outcome": "paid", "invoice_id": id, "status": "paid"}), to_grant))
}
