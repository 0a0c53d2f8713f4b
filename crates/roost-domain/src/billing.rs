//! What an org owes for one billing cycle (API.md "Billing"): pure functions from what happened
//! in the cycle — the plans in force, the most members, purchases and auto-reloads — to invoice
//! lines. No I/O, no clock: the store gathers the facts and calls [`lines`].
//!
//! **Proration, stated plainly.** A plan is billed for the whole days it was in force during the
//! cycle: `price × days ÷ days in the cycle`, rounded down, where a started day counts whole and no
//! plan is billed more days than the cycle has. A change mid-cycle closes the old plan's line on the
//! day of the change and opens the new plan's line from that day, so both lines name their dates
//! and their share of the cycle. A trial, or a plan the operator gave, is a line of amount 0 that
//! says so. Extra seats are not prorated: the most members the org had at any moment of the cycle,
//! past the included seats of the plan in force at the cycle's end, each at its `extra_seat_price`.

use serde::{Deserialize, Serialize};

use crate::plans::{Catalog, CreditPack, Plan};
use crate::time::{DAY_MS, to_rfc3339};

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Line {
    /// `plan`, `seats`, `topup` or `auto_reload`.
    pub kind: String,
    pub description: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub amount: i64,
    /// The purchase a `topup` or `auto_reload` line bills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_id: Option<String>,
}

/// A plan in force for part of a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSpan {
    pub plan: String,
    pub from: i64,
    pub to: i64,
    /// Given by the operator without payment.
    pub given: bool,
    /// The org's trial: free.
    pub trial: bool,
}

/// A purchase billed on the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bought {
    pub id: String,
    /// `purchase` (packs), `topup` (credits asked for by amount) or `auto_reload`.
    pub origin: String,
    pub packs: i64,
    pub credits: i64,
    pub amount: i64,
    pub at: i64,
}

/// Everything one cycle's invoice is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub start: i64,
    pub end: i64,
    pub spans: Vec<PlanSpan>,
    /// The most members the org had during the cycle.
    pub max_members: i64,
    pub purchases: Vec<Bought>,
}

/// The price of `credits` credits bought through `pack`: whole packs at the pack's price, and a
/// part of a pack at its share of the price, rounded up (so buying by amount never costs less than
/// the same credits bought in packs).
pub fn price_of_credits(pack: CreditPack, credits: i64) -> Option<i64> {
    let whole = credits / pack.credits;
    let part = credits % pack.credits;
    let part_price =
        (i128::from(part) * i128::from(pack.price) + i128::from(pack.credits) - 1) / i128::from(pack.credits);
    let total = i128::from(whole) * i128::from(pack.price) + part_price;
    i64::try_from(total).ok()
}

/// Whole days of `span` inside the cycle (a started day counts), and the cycle's days.
fn days(span: &PlanSpan, c: &Cycle) -> (i64, i64) {
    let cycle_days = ((c.end - c.start + DAY_MS - 1) / DAY_MS).max(1);
    let from = span.from.max(c.start);
    let to = span.to.min(c.end);
    let d = if to > from { (to - from + DAY_MS - 1) / DAY_MS } else { 0 };
    (d.min(cycle_days), cycle_days)
}

fn date(ms: i64) -> String {
    to_rfc3339(ms).get(..10).unwrap_or_default().to_string()
}

/// The lines of one cycle's invoice, in order: plans, seats, purchases by time.
pub fn lines(c: &Cycle, catalog: &Catalog) -> Vec<Line> {
    let mut out = Vec::new();
    for s in &c.spans {
        let Some(plan) = catalog.get(&s.plan) else { continue };
        let price = plan.price.unwrap_or(0);
        if price == 0 && !s.trial && !s.given {
            continue;
        }
        let (d, cycle_days) = days(s, c);
        if d == 0 {
            continue;
        }
        let span = format!("{} – {}, {d} of {cycle_days} days", date(s.from.max(c.start)), date(s.to.min(c.end)));
        let (amount, note) = if s.trial {
            (0, " (trial: free)")
        } else if s.given {
            (0, " (given by the operator: no charge)")
        } else {
            let a = i128::from(price) * i128::from(d) / i128::from(cycle_days);
            (i64::try_from(a).unwrap_or(i64::MAX), "")
        };
        out.push(Line {
            kind: "plan".into(),
            description: format!("{} plan, {span}{note}", plan.name),
            quantity: 1,
            unit_price: amount,
            amount,
            purchase_id: None,
        });
    }
    if let Some(line) = seats(c, catalog) {
        out.push(line);
    }
    let mut bought: Vec<&Bought> = c.purchases.iter().collect();
    bought.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    for b in bought {
        let (kind, description, quantity, unit_price) = match b.origin.as_str() {
            "auto_reload" => {
                ("auto_reload", format!("Auto-reload of {} credits on {}", b.credits, date(b.at)), 1, b.amount)
            }
            "purchase" if b.packs > 0 => (
                "topup",
                format!(
                    "{} credit pack{} ({} credits) on {}",
                    b.packs,
                    if b.packs == 1 { "" } else { "s" },
                    b.credits,
                    date(b.at)
                ),
                b.packs,
                b.amount / b.packs,
            ),
            _ => ("topup", format!("Top-up of {} credits on {}", b.credits, date(b.at)), 1, b.amount),
        };
        out.push(Line {
            kind: kind.into(),
            description,
            quantity,
            unit_price,
            amount: b.amount,
            purchase_id: Some(b.id.clone()),
        });
    }
    out
}

/// The seats line: the most members past the included seats of the plan in force at the end.
fn seats(c: &Cycle, catalog: &Catalog) -> Option<Line> {
    let last = c.spans.iter().max_by_key(|s| s.to)?;
    let plan: &Plan = catalog.get(&last.plan)?;
    let price = plan.extra_seat_price.filter(|p| *p > 0)?;
    let extra = c.max_members - i64::from(plan.seats_included?);
    if extra <= 0 || last.trial || last.given {
        return None;
    }
    Some(Line {
        kind: "seats".into(),
        description: format!(
            "{extra} extra seat{} ({} members at most this cycle, {} included in {})",
            if extra == 1 { "" } else { "s" },
            c.max_members,
            plan.seats_included.unwrap_or(0),
            plan.name
        ),
        quantity: extra,
        unit_price: price,
        amount: extra.saturating_mul(price),
        purchase_id: None,
    })
}

/// The sum of the lines.
pub fn total(lines: &[Line]) -> i64 {
    lines.iter().fold(0i64, |t, l| t.saturating_add(l.amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_764_547_200_000; // 2025-12-01

    fn cycle(spans: Vec<PlanSpan>, members: i64, purchases: Vec<Bought>) -> Cycle {
        Cycle { start: START, end: START + 31 * DAY_MS, spans, max_members: members, purchases }
    }

    fn span(plan: &str, from_day: i64, to_day: i64) -> PlanSpan {
        PlanSpan {
            plan: plan.into(),
            from: START + from_day * DAY_MS,
            to: START + to_day * DAY_MS,
            given: false,
            trial: false,
        }
    }

    #[test]
    fn a_team_org_with_five_members_pays_two_extra_seats() {
        let c = cycle(vec![span("team", 0, 31)], 5, vec![]);
        let l = lines(&c, &Catalog::builtin());
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!((l[0].kind.as_str(), l[0].amount), ("plan", 149_000));
        assert_eq!((l[1].kind.as_str(), l[1].quantity, l[1].unit_price, l[1].amount), ("seats", 2, 45_000, 90_000));
        assert_eq!(total(&l), 239_000);
    }

    #[test]
    fn a_plan_change_mid_cycle_closes_one_line_and_opens_another() {
        let c = cycle(vec![span("solo", 0, 10), span("team", 10, 31)], 1, vec![]);
        let l = lines(&c, &Catalog::builtin());
        assert_eq!(l.len(), 2);
        assert!(
            l[0].description.contains("Solo plan") && l[0].description.contains("10 of 31 days"),
            "{}",
            l[0].description
        );
        assert_eq!(l[0].amount, 99_000 * 10 / 31);
        assert!(l[1].description.contains("21 of 31 days"));
        assert_eq!(l[1].amount, 149_000 * 21 / 31);
    }

    #[test]
    fn trials_and_given_plans_say_so_and_cost_nothing() {
        let mut s = span("team", 0, 31);
        s.trial = true;
        let l = lines(&cycle(vec![s], 9, vec![]), &Catalog::builtin());
        assert_eq!(l.len(), 1, "no seats during a trial: {l:?}");
        assert!(l[0].description.contains("trial: free") && l[0].amount == 0);
    }

    #[test]
    fn purchases_are_lines_and_parts_of_packs_round_up() {
        let pack = CreditPack { credits: 1_000, price: 100_000 };
        assert_eq!(price_of_credits(pack, 2_000), Some(200_000));
        assert_eq!(price_of_credits(pack, 1), Some(100));
        assert_eq!(price_of_credits(CreditPack { credits: 3, price: 10 }, 1), Some(4));
        let b = vec![
            Bought {
                id: "pur_b".into(),
                origin: "auto_reload".into(),
                packs: 0,
                credits: 500,
                amount: 50_000,
                at: START + 5,
            },
            Bought {
                id: "pur_a".into(),
                origin: "purchase".into(),
                packs: 2,
                credits: 2_000,
                amount: 200_000,
                at: START + 1,
            },
        ];
        let l = lines(&cycle(vec![span("free", 0, 31)], 1, b), &Catalog::builtin());
        assert_eq!(l.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>(), ["topup", "auto_reload"]);
        assert_eq!((l[0].quantity, l[0].unit_price), (2, 100_000));
        assert_eq!(total(&l), 250_000);
    }
}
