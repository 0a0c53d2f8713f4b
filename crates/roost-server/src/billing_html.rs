//! The printable HTML page of an invoice (`GET /v1/invoices/{id}` with `Accept: text/html`).

use roost_domain::time::to_rfc3339;
use roost_store::Invoice;

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An amount in minor units, with thousands separators.
fn money(amount: i64, currency: &str) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{} {grouped}", if amount < 0 { "-" } else { "" }, esc(currency))
}

fn day(ms: i64) -> String {
    to_rfc3339(ms).get(..10).unwrap_or_default().to_string()
}

/// The invoice as a standalone page that prints on one sheet.
pub fn invoice(i: &Invoice, product: &str, org_name: &str) -> String {
    let number = i.number.map_or_else(|| "draft".to_string(), |n| format!("No. {n}"));
    let mut rows = String::new();
    for l in &i.lines {
        rows.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
            esc(&l.description),
            l.quantity,
            money(l.unit_price, &i.currency),
            money(l.amount, &i.currency)
        ));
    }
    if i.lines.is_empty() {
        rows.push_str("<tr><td colspan=\"4\">Nothing billed in this cycle.</td></tr>\n");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Invoice {number} — {product}</title>\n\
<style>body{{font:14px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;color:#111}}\
table{{width:100%;border-collapse:collapse}}td,th{{padding:.4rem;border-bottom:1px solid #ddd;text-align:left}}\
.n{{text-align:right}}.total td{{font-weight:bold;border-top:2px solid #111}}@media print{{body{{margin:0}}}}</style></head>\n\
<body><h1>Invoice {number}</h1>\n<p><strong>{product}</strong> · status: <strong>{status}</strong></p>\n\
<p>Billed to: {name} &lt;{email}&gt;<br>Organization: {org}<br>Period: {start} – {end}<br>Issued: {issued}<br>Paid: {paid}</p>\n\
<table><thead><tr><th>Description</th><th class=\"n\">Qty</th><th class=\"n\">Unit price</th><th class=\"n\">Amount</th></tr></thead>\n\
<tbody>\n{rows}<tr class=\"total\"><td colspan=\"3\">Total</td><td class=\"n\">{total}</td></tr>\n\
<tr><td colspan=\"3\">Amount due</td><td class=\"n\">{due}</td></tr></tbody></table>\n\
<p>Invoice id: {id}</p></body></html>\n",
        number = esc(&number),
        product = esc(product),
        status = esc(&i.status),
        name = esc(&i.billed_name),
        email = esc(&i.billed_email),
        org = esc(org_name),
        start = day(i.period_start),
        end = day(i.period_end),
        issued = i.issued_at.map_or_else(|| "not yet".into(), day),
        paid = i.paid_at.map_or_else(|| "not yet".into(), day),
        total = money(i.total, &i.currency),
        due = money(i.amount_due, &i.currency),
        id = esc(&i.id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_and_text_is_escaped() {
        assert_eq!(money(1_234_567, "IDR"), "IDR 1,234,567");
        assert_eq!(money(0, "IDR"), "IDR 0");
        assert_eq!(esc("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
