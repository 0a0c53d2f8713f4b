//! Budgets: the per-cycle counters of workspaces, members and keys, the check made in the same
//! step as the balance, alert thresholds, and budget changes.

use roost_domain::IdKind;
use roost_domain::credits;
use roost_domain::ledger::{Actor, BudgetScope, Refusal};
use roost_store::{AuditRow, BudgetRow};
use serde_json::json;

use super::{Book, Out};
use crate::{ActorRef, BudgetState};

impl Book {
    /// What `scope`'s `subject` drew this period.
    pub(super) fn used(&self, scope: BudgetScope, subject: &str) -> i64 {
        self.counters.get(&(scope, subject.to_string())).copied().unwrap_or(0)
    }

    /// Counts `delta` toward the budgets of a draw in `ws` by `member` through `key` (empty: none),
    /// in the period starting at `period`, and into the batch's counter writes.
    pub(super) fn count(&mut self, out: &mut Out, ws: &str, member: &str, key: &str, period: i64, delta: i64) {
        let scopes = [
            (BudgetScope::Workspace, true),
            (BudgetScope::Member, !member.is_empty()),
            (BudgetScope::Key, !key.is_empty()),
        ];
        for (scope, applies) in scopes {
            if !applies {
                continue;
            }
            let subject = scope.subject(ws, member, key);
            if period == self.period.0 {
                *self.counters.entry((scope, subject.clone())).or_default() += delta;
            }
            *out.writes.usage.entry((self.org.id.clone(), scope, subject, period)).or_default() += delta;
        }
    }

    /// The first budget that drawing `amount` more would pass: the key's spend limit, the
    /// member's budget in the workspace, the workspace's budget.
    pub(super) fn check_budgets(&self, ws: &str, a: &ActorRef, amount: i64) -> Result<(), Refusal> {
        let mut checks: Vec<(BudgetScope, Option<i64>)> = Vec::new();
        if !a.key_id.is_empty() {
            checks.push((BudgetScope::Key, a.spend_limit));
        }
        if !a.member_id.is_empty() {
            let b = self.budgets.get(&(BudgetScope::Member, ws.to_string(), a.member_id.clone()));
            checks.push((BudgetScope::Member, b.map(|b| b.limit)));
        }
        let b = self.budgets.get(&(BudgetScope::Workspace, ws.to_string(), String::new()));
        checks.push((BudgetScope::Workspace, b.map(|b| b.limit)));
        for (scope, limit) in checks {
            let used = self.used(scope, &scope.subject(ws, &a.member_id, &a.key_id));
            if let Err(used) = credits::within_budget(limit, used, amount) {
                return Err(Refusal::BudgetExceeded { scope, limit, used, resets_at: self.period.1 });
            }
        }
        Ok(())
    }

    /// What a draw by `a` in `ws` from wallet `wallet_id` leaves, as the answer's `headroom` (JSON):
    /// the wallet's available credits and the tightest budget in force for that actor (the one
    /// with the least remaining: the key's spend limit, the member's budget, the workspace's).
    pub(super) fn headroom(&self, wallet_id: &str, ws: &str, a: &ActorRef) -> String {
        let available = self.wallets.iter().find(|w| w.id == wallet_id).map_or(0, |w| w.balance - w.held);
        let mut limits: Vec<(BudgetScope, Option<i64>)> = Vec::with_capacity(3);
        if !a.key_id.is_empty() {
            limits.push((BudgetScope::Key, a.spend_limit));
        }
        if !a.member_id.is_empty() {
            let b = self.budgets.get(&(BudgetScope::Member, ws.to_string(), a.member_id.clone()));
            limits.push((BudgetScope::Member, b.map(|b| b.limit)));
        }
        let b = self.budgets.get(&(BudgetScope::Workspace, ws.to_string(), String::new()));
        limits.push((BudgetScope::Workspace, b.map(|b| b.limit)));
        let tightest = limits
            .into_iter()
            .filter_map(|(scope, limit)| {
                let limit = limit?;
                let used = self.used(scope, &scope.subject(ws, &a.member_id, &a.key_id));
                Some((scope, limit, used, limit.saturating_sub(used).max(0)))
            })
            .min_by_key(|t| t.3);
        let budget = tightest.map_or(serde_json::Value::Null, |(scope, limit, used, remaining)| {
            json!({"scope": scope.as_str(), "limit": limit, "used": used, "remaining": remaining,
                "resets_at": roost_domain::time::to_rfc3339(self.period.1)})
        });
        json!({"available": available, "budget": budget}).to_string()
    }

    /// Audit events for workspace budget alert thresholds crossed by going from `before` to `after`.
    pub(super) fn alerts(&self, out: &mut Out, ws: &str, before: i64, after: i64, at: i64) {
        let Some(b) = self.budgets.get(&(BudgetScope::Workspace, ws.to_string(), String::new())) else {
            return;
        };
        for p in &b.alert_percents {
            let mark = b.limit.saturating_mul(i64::from(*p)) / 100;
            if before < mark && after >= mark {
                let system = Actor::system();
                out.writes.audit.push(AuditRow {
                    org_id: self.org.id.clone(),
                    id: IdKind::Audit.generate(),
                    at,
                    actor_type: system.kind,
                    actor_id: system.id,
                    action: "budget.alert".into(),
                    workspace_id: Some(ws.to_string()),
                    target_type: Some("workspace".into()),
                    target_id: Some(ws.to_string()),
                    ip: None,
                    detail: json!({"percent": p, "limit": b.limit, "used": after}).to_string(),
                });
                let data = json!({"scope": "workspace", "workspace_id": ws, "percent": p, "limit": b.limit,
                    "used": after, "resets_at": roost_domain::time::to_rfc3339(self.period.1)});
                self.event(out, roost_domain::ledger::EventType::BudgetThreshold, Some(ws), data, at);
            }
        }
    }

    /// Sets (`Some`) or removes (`None`) a workspace budget, or a member's in a workspace; audited.
    #[expect(clippy::too_many_arguments, reason = "the fields of a budget change")]
    pub(super) fn set_budget(
        &mut self,
        out: &mut Out,
        a: &ActorRef,
        ws: &str,
        user: Option<&str>,
        limit: Option<i64>,
        alert_percents: &[u32],
        now: i64,
    ) -> BudgetState {
        let scope = if user.is_some() { BudgetScope::Member } else { BudgetScope::Workspace };
        let user = user.unwrap_or_default().to_string();
        let key = (scope, ws.to_string(), user.clone());
        let org = self.org.id.clone();
        match limit {
            Some(l) => {
                let b = BudgetRow {
                    org_id: org,
                    scope,
                    workspace_id: ws.to_string(),
                    user_id: user.clone(),
                    limit: l,
                    alert_percents: alert_percents.to_vec(),
                    updated_at: now,
                };
                out.writes.budgets_removed.retain(|r| (r.1, &r.2, &r.3) != (key.0, &key.1, &key.2));
                out.writes.budgets.push(b.clone());
                self.budgets.insert(key, b);
            }
            None => {
                self.budgets.remove(&key);
                out.writes
                    .budgets
                    .retain(|b| (&b.org_id, b.scope, &b.workspace_id, &b.user_id) != (&org, key.0, &key.1, &key.2));
                out.writes.budgets_removed.push((org, scope, ws.to_string(), user.clone()));
            }
        }
        let member = (scope == BudgetScope::Member).then(|| user.clone());
        let used = self.used(scope, &scope.subject(ws, &user, ""));
        let target = match &member {
            Some(u) => ("user", u.clone()),
            None => ("workspace", ws.to_string()),
        };
        let detail = json!({"scope": scope, "limit": limit, "alert_percents": alert_percents});
        self.audit(out, a, "budget.changed", Some(ws.to_string()), target, detail, now);
        BudgetState {
            scope,
            workspace_id: ws.to_string(),
            user_id: member,
            limit,
            alert_percents: alert_percents.to_vec(),
            used,
            resets_at: self.period.1,
        }
    }
}
