//! Plans and their limits. The catalog is operator configuration: [`Catalog::builtin`] carries
//! the plans of the reference products, and `roost.toml` may replace it (`[[plans]]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One plan of the catalog. `None` means unlimited (or, for prices and trials, none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Whether the plan is paid. Organizations need a paid plan (or its trial).
    pub paid: bool,
    /// Seats included in the price.
    pub seats_included: Option<u32>,
    /// Hard cap on members.
    pub max_seats: Option<u32>,
    /// Price of each seat past `seats_included`, in `currency` minor units.
    pub extra_seat_price: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    pub max_workspaces: Option<u32>,
    pub monthly_credits: Option<i64>,
    pub rollover_cap: Option<i64>,
    /// Requests per minute across the org.
    pub rpm: Option<u32>,
    #[serde(default)]
    pub webhook_events_per_month: Option<u64>,
    /// Cap on resources per kind across the org; a kind not listed is unlimited.
    #[serde(default)]
    pub resource_quotas: BTreeMap<String, u32>,
    /// Length of the plan's trial, if it offers one.
    pub trial_days: Option<u32>,
    /// The most bytes of workspace state (JSON documents) one workspace may keep.
    #[serde(default)]
    pub state_bytes: Option<u64>,
    /// How many days a workspace's history entries are kept.
    #[serde(default)]
    pub history_days: Option<u32>,
    /// What the plan costs per billing cycle, in `currency` minor units (`None`: nothing).
    #[serde(default)]
    pub price: Option<i64>,
    /// What a purchased top-up costs on this plan (`None`: the plan sells no credits).
    #[serde(default)]
    pub credit_pack: Option<CreditPack>,
}

/// A pack of credits on sale: `credits` for `price` (in the catalog's currency minor units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditPack {
    pub credits: i64,
    pub price: i64,
}

/// The most any one price of the catalog may be (keeps every invoice sum far from overflow).
pub const MAX_PRICE: i64 = 1_000_000_000_000;

/// The limit a change would break, named as the API names it in `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    MaxSeats,
    MaxWorkspaces,
    ResourceQuota(String),
    /// A workspace's total of state bytes.
    StateBytes,
}

impl Limit {
    /// The value of the problem response's `limit` member.
    pub fn name(&self) -> String {
        match self {
            Limit::MaxSeats => "max_seats".into(),
            Limit::MaxWorkspaces => "max_workspaces".into(),
            Limit::ResourceQuota(kind) => format!("resource_quotas.{kind}"),
            Limit::StateBytes => "state_bytes".into(),
        }
    }
}

/// What an org uses now, to check a plan change against.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub members: u32,
    pub workspaces: u32,
    pub resources: BTreeMap<String, u32>,
}

fn under(cap: Option<u32>, current: u32) -> bool {
    cap.is_none_or(|c| current < c)
}

impl Plan {
    /// Whether one more member fits.
    pub fn seat_available(&self, members: u32) -> bool {
        under(self.max_seats, members)
    }

    /// Whether one more workspace fits.
    pub fn workspace_available(&self, workspaces: u32) -> bool {
        under(self.max_workspaces, workspaces)
    }

    /// Whether one more resource of `kind` fits.
    pub fn resource_available(&self, kind: &str, existing: u32) -> bool {
        under(self.resource_quotas.get(kind).copied(), existing)
    }

    /// Checks the plan's prices: none negative or past [`MAX_PRICE`], a pack of at least one credit.
    pub fn check_prices(&self) -> Result<(), String> {
        let ok = |v: Option<i64>| v.is_none_or(|v| (0..=MAX_PRICE).contains(&v));
        if !ok(self.price) || !ok(self.extra_seat_price) {
            return Err(format!("price and extra_seat_price must be from 0 to {MAX_PRICE}"));
        }
        if let Some(pack) = self.credit_pack
            && (!(1..=MAX_PRICE).contains(&pack.credits) || !(0..=MAX_PRICE).contains(&pack.price))
        {
            return Err(format!("credit_pack needs credits from 1 to {MAX_PRICE} and a price from 0 to {MAX_PRICE}"));
        }
        Ok(())
    }

    /// The first limit of this plan that `usage` already exceeds, if any.
    pub fn exceeded_by(&self, usage: &Usage) -> Option<Limit> {
        if self.max_seats.is_some_and(|c| usage.members > c) {
            return Some(Limit::MaxSeats);
        }
        if self.max_workspaces.is_some_and(|c| usage.workspaces > c) {
            return Some(Limit::MaxWorkspaces);
        }
        usage.resources.iter().find_map(|(kind, n)| {
            self.resource_quotas.get(kind).is_some_and(|c| n > c).then(|| Limit::ResourceQuota(kind.clone()))
        })
    }
}

/// The plans an operator offers.
#[derive(Debug, Clone)]
pub struct Catalog {
    plans: Vec<Plan>,
}

/// Why a configured catalog was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the plan catalog is empty")]
    Empty,
    #[error("plan `{0}` appears twice")]
    Duplicate(String),
    #[error("the personal plan `{0}` is not in the catalog")]
    NoPersonalPlan(String),
    #[error("plan `{0}`: rpm must be from 1 to {MAX_RPM} (one request a microsecond), or absent for no limit")]
    Rpm(String),
    #[error("plan `{0}`: {1}")]
    Price(String, String),
    #[error("currency: {0}")]
    Currency(String),
}

/// The highest requests-per-minute limit there is: one request a microsecond, the rate limiter's
/// resolution. A plan or key may be unlimited instead.
pub const MAX_RPM: u32 = 60_000_000;

impl Catalog {
    /// A catalog from configuration, checked for duplicates and for the personal plan.
    pub fn new(plans: Vec<Plan>, personal_plan: &str) -> Result<Self, CatalogError> {
        if plans.is_empty() {
            return Err(CatalogError::Empty);
        }
        for (i, p) in plans.iter().enumerate() {
            if plans[..i].iter().any(|q| q.id == p.id) {
                return Err(CatalogError::Duplicate(p.id.clone()));
            }
        }
        if !plans.iter().any(|p| p.id == personal_plan) {
            return Err(CatalogError::NoPersonalPlan(personal_plan.into()));
        }
        if let Some(p) = plans.iter().find(|p| p.rpm.is_some_and(|r| !(1..=MAX_RPM).contains(&r))) {
            return Err(CatalogError::Rpm(p.id.clone()));
        }
        for p in &plans {
            p.check_prices().map_err(|m| CatalogError::Price(p.id.clone(), m))?;
        }
        let currencies: Vec<&str> = plans.iter().filter_map(|p| p.currency.as_deref()).collect();
        if let Some(c) = currencies.iter().find(|c| c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(CatalogError::Currency(format!("`{c}` is not an ISO 4217 code such as IDR or USD")));
        }
        if currencies.windows(2).any(|w| w[0] != w[1]) {
            return Err(CatalogError::Currency("every plan must name the same currency".into()));
        }
        let priced = |p: &Plan| p.price.is_some_and(|v| v > 0) || p.credit_pack.is_some();
        if currencies.is_empty() && plans.iter().any(priced) {
            return Err(CatalogError::Currency("a catalog with prices needs a `currency` on its plans".into()));
        }
        Ok(Self { plans })
    }

    /// Looks a plan up by id.
    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The currency of every price in the catalog (ISO 4217; `IDR` when the catalog names none).
    pub fn currency(&self) -> &str {
        self.plans.iter().find_map(|p| p.currency.as_deref()).unwrap_or("IDR")
    }

    /// Every plan, in catalog order.
    pub fn all(&self) -> &[Plan] {
        &self.plans
    }

    /// The default catalog: the plans of the reference products (see docs/plans.md).
    pub fn builtin() -> Self {
        Self { plans: builtin_plans() }
    }
}

#[expect(clippy::too_many_arguments, reason = "a table row, read side by side with the others")]
fn plan(
    id: &str,
    paid: bool,
    seats: (Option<u32>, Option<u32>),
    workspaces: Option<u32>,
    credits: (i64, i64),
    rpm: u32,
    webhooks: Option<u64>,
    trial_days: Option<u32>,
) -> Plan {
    let mut name = id.to_string();
    if let Some(first) = name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    Plan {
        id: id.into(),
        name,
        paid,
        seats_included: seats.0,
        max_seats: seats.1,
        extra_seat_price: None,
        currency: None,
        max_workspaces: workspaces,
        monthly_credits: Some(credits.0),
        rollover_cap: Some(credits.1),
        rpm: Some(rpm),
        webhook_events_per_month: webhooks,
        resource_quotas: BTreeMap::new(),
        trial_days,
        state_bytes: None,
        history_days: None,
        price: None,
        credit_pack: None,
    }
}

/// Sets a plan's workspace records limits: `state_mib` MiB of state per workspace (`None`:
/// unlimited) and `history_days` of history.
fn records(mut p: Plan, state_mib: Option<u64>, history_days: u32) -> Plan {
    p.state_bytes = state_mib.map(|m| m * 1024 * 1024);
    p.history_days = Some(history_days);
    p
}

/// Sets a built-in plan's price per cycle and its credit pack (IDR, like the reference products).
fn priced(mut p: Plan, price: i64, pack: Option<(i64, i64)>) -> Plan {
    p.price = Some(price);
    p.currency = Some("IDR".into());
    p.credit_pack = pack.map(|(credits, price)| CreditPack { credits, price });
    p
}

fn builtin_plans() -> Vec<Plan> {
    let one = (Some(1), Some(1));
    let mut free = plan("free", false, one, Some(1), (100, 0), 60, Some(1_000), None);
    free.resource_quotas =
        [("box", 1), ("postgres", 1), ("redis", 1), ("bucket", 1)].map(|(k, n)| (k.to_string(), n)).into();
    let mut team = plan("team", true, (Some(3), None), Some(20), (10_000, 10_000), 1_200, None, Some(14));
    team.extra_seat_price = Some(45_000);
    // Prices in IDR (the reference products' currency); a pack is 1,000 credits for IDR 100,000.
    let pack = Some((1_000, 100_000));
    vec![
        records(priced(free, 0, pack), Some(10), 30),
        records(priced(plan("solo", true, one, Some(3), (1_000, 0), 300, None, None), 99_000, pack), Some(100), 90),
        records(
            priced(plan("pro", true, one, Some(10), (5_000, 5_000), 600, None, Some(14)), 299_000, pack),
            Some(1_024),
            180,
        ),
        records(priced(team, 149_000, pack), Some(1_024), 365),
        records(
            priced(plan("business", true, (None, None), None, (5_000, 10_000), 3_000, None, Some(14)), 1_499_000, pack),
            Some(10_240),
            365,
        ),
        records(
            priced(
                plan("build", true, (Some(3), Some(3)), Some(1), (2_000, 0), 600, Some(10_000), None),
                199_000,
                pack,
            ),
            Some(100),
            30,
        ),
        records(
            priced(
                plan("launch", true, (Some(10), Some(10)), Some(3), (10_000, 10_000), 3_000, Some(100_000), Some(14)),
                799_000,
                pack,
            ),
            Some(1_024),
            90,
        ),
        records(
            priced(
                plan("scale", true, (None, None), None, (50_000, 50_000), 10_000, Some(1_000_000), None),
                2_999_000,
                pack,
            ),
            None,
            365,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_valid_and_has_the_reference_plans() {
        let c = Catalog::builtin();
        assert!(Catalog::new(c.all().to_vec(), "free").is_ok());
        let free = c.get("free").expect("free");
        assert!(!free.paid);
        assert_eq!(free.resource_quotas.get("postgres"), Some(&1));
        let team = c.get("team").expect("team");
        assert_eq!((team.seats_included, team.max_seats, team.extra_seat_price), (Some(3), None, Some(45_000)));
        let business = c.get("business").expect("business");
        assert_eq!((business.monthly_credits, business.rollover_cap), (Some(5_000), Some(10_000)));
        assert_eq!(business.max_seats, None);
        let ws: Vec<_> = ["build", "launch", "scale"].iter().map(|p| c.get(p).map(|p| p.max_workspaces)).collect();
        assert_eq!(ws, [Some(Some(1)), Some(Some(3)), Some(None)]);
        assert_eq!(c.get("solo").and_then(|p| p.max_seats), Some(1));
        assert_eq!(c.get("pro").and_then(|p| p.max_seats), Some(1));
    }

    #[test]
    fn a_plan_rpm_is_from_one_to_one_a_microsecond() {
        for (rpm, ok) in
            [(Some(0), false), (Some(1), true), (Some(MAX_RPM), true), (Some(MAX_RPM + 1), false), (None, true)]
        {
            let mut plans = Catalog::builtin().all().to_vec();
            plans[1].rpm = rpm;
            let c = Catalog::new(plans, "free");
            assert_eq!(c.is_ok(), ok, "{rpm:?}");
            if let Err(e) = c {
                assert!(e.to_string().contains("plan `solo`: rpm must be from 1 to 60000000"), "{e}");
            }
        }
    }

    #[test]
    fn limits_are_checked_before_the_next_one_is_added() {
        let free = Catalog::builtin().get("free").cloned().expect("free");
        assert!(free.seat_available(0));
        assert!(!free.seat_available(1));
        assert!(free.resource_available("postgres", 0));
        assert!(!free.resource_available("postgres", 1));
        assert!(free.resource_available("app", 1_000));
        let usage = Usage { members: 1, workspaces: 1, resources: [("postgres".into(), 2)].into() };
        assert_eq!(free.exceeded_by(&usage), Some(Limit::ResourceQuota("postgres".into())));
        assert_eq!(free.exceeded_by(&Usage { members: 2, ..Usage::default() }), Some(Limit::MaxSeats));
        assert_eq!(free.exceeded_by(&Usage { members: 1, workspaces: 1, ..Usage::default() }), None);
    }

    #[test]
    fn a_bad_catalog_is_refused() {
        let free = Catalog::builtin().get("free").cloned().expect("free");
        assert!(matches!(Catalog::new(vec![], "free"), Err(CatalogError::Empty)));
        assert!(matches!(Catalog::new(vec![free.clone(), free.clone()], "free"), Err(CatalogError::Duplicate(_))));
        assert!(matches!(Catalog::new(vec![free], "solo"), Err(CatalogError::NoPersonalPlan(_))));
    }
}
