//! The ledger rows of the role matrix (ARCHITECTURE.md, Roles), cell by cell: who may top up,
//! adjust, charge and hold, read usage and transactions, read wallets and budgets, and set budgets.
//! Columns: org owner, org admin, org billing, org member (no workspace role), and members who are
//! admin, member and viewer of a non-primary workspace W, and an API key of W.

use roost::{Client, Response};
use serde_json::json;

use super::common::*;
use crate::support::{create_ws, expect_status, uid};
use roost_test_kit::TestServer;

const ROLES: [&str; 8] =
    ["org owner", "org admin", "org billing", "org member", "ws admin", "ws member", "ws viewer", "api key"];
const Y: bool = true;
const N: bool = false;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// `POST /v1/orgs/{org}/wallets/credits/topups` — "change plan, top up".
    TopUp,
    /// `POST /v1/orgs/{org}/wallets/credits/adjustments` — owner only (API.md).
    Adjust,
    /// `POST /v1/charges` in W — "create keys, resources; charge credits".
    Charge,
    /// `POST /v1/holds` in W — same row.
    Hold,
    /// `GET /v1/orgs/{org}/usage` — owner, admin, billing (API.md).
    ReadUsage,
    /// `GET /v1/orgs/{org}/transactions` — owner, admin, billing.
    ReadOrgTransactions,
    /// `GET /v1/workspaces/{W}/transactions` — "read workspace, transactions"; billing reads usage
    /// only, not the transactions.
    ReadWsTransactions,
    /// `GET /v1/workspaces/{W}/budget` — reading the workspace.
    ReadWsBudget,
    /// `GET /v1/orgs/{org}/wallets` — any org member; keys act on their workspace, not the org.
    ReadOrgWallets,
    /// `GET /v1/wallets` in W — whoever may read W.
    ReadActingWallets,
    /// `PUT /v1/workspaces/{W}/budget` — "manage a workspace's members, keys, budget".
    SetWsBudget,
    /// `PUT /v1/workspaces/{W}/members/{ws member}/budget` — same row.
    SetMemberBudget,
}

//                                             ow ad bi me wa wm wv key
const EXPECTED: &[(Action, [bool; 8])] = &[
    (Action::TopUp, /*               */ [Y, N, Y, N, N, N, N, N]),
    (Action::Adjust, /*              */ [Y, N, N, N, N, N, N, N]),
    (Action::Charge, /*              */ [Y, Y, N, N, Y, Y, N, Y]),
    (Action::Hold, /*                */ [Y, Y, N, N, Y, Y, N, Y]),
    (Action::ReadUsage, /*           */ [Y, Y, Y, N, N, N, N, N]),
    (Action::ReadOrgTransactions, /* */ [Y, Y, Y, N, N, N, N, N]),
    (Action::ReadWsTransactions, /*  */ [Y, Y, N, N, Y, Y, Y, Y]),
    (Action::ReadWsBudget, /*        */ [Y, Y, N, N, Y, Y, Y, Y]),
    (Action::ReadOrgWallets, /*      */ [Y, Y, Y, Y, Y, Y, Y, N]),
    (Action::ReadActingWallets, /*   */ [Y, Y, N, N, Y, Y, Y, Y]),
    (Action::SetWsBudget, /*         */ [Y, Y, N, N, Y, N, N, N]),
    (Action::SetMemberBudget, /*     */ [Y, Y, N, N, Y, N, N, N]),
];

async fn perform(who: &Client, org: &str, w: &str, target: &str, action: Action) -> Response {
    let c = who.in_workspace(w);
    match action {
        Action::TopUp => c
            .post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &idem(), &json!({"amount": 1}))
            .await
            .unwrap(),
        Action::Adjust => c
            .post_idem(
                &format!("/v1/orgs/{org}/wallets/credits/adjustments"),
                &idem(),
                &json!({"amount": 1, "reason": "r"}),
            )
            .await
            .unwrap(),
        Action::Charge => charge(&c, 1, "cell").await,
        Action::Hold => hold(&c, 1, None).await,
        Action::ReadUsage => c.get(&format!("/v1/orgs/{org}/usage")).await.unwrap(),
        Action::ReadOrgTransactions => c.get(&format!("/v1/orgs/{org}/transactions")).await.unwrap(),
        Action::ReadWsTransactions => c.get(&format!("/v1/workspaces/{w}/transactions")).await.unwrap(),
        Action::ReadWsBudget => c.get(&format!("/v1/workspaces/{w}/budget")).await.unwrap(),
        Action::ReadOrgWallets => c.get(&format!("/v1/orgs/{org}/wallets")).await.unwrap(),
        Action::ReadActingWallets => c.get("/v1/wallets").await.unwrap(),
        Action::SetWsBudget => c.put(&format!("/v1/workspaces/{w}/budget"), &json!({"limit": 100_000})).await.unwrap(),
        Action::SetMemberBudget => {
            c.put(&format!("/v1/workspaces/{w}/members/{target}/budget"), &json!({"limit": 100_000})).await.unwrap()
        }
    }
}

async fn ledger_role_matrix(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Matrix").await;
    let w = create_ws(&owner, &org, "W").await;
    let mut clients = vec![owner.clone()];
    let mut target = String::new();
    for (org_role, ws_role) in [
        ("admin", None),
        ("billing", None),
        ("member", None),
        ("member", Some("admin")),
        ("member", Some("member")),
        ("member", Some("viewer")),
    ] {
        let (c, sg) = member(&s, &owner, &org, &w, org_role, ws_role).await;
        if ws_role == Some("member") {
            target = uid(&sg);
        }
        clients.push(c);
    }
    let (_, key) = api_key(&s, &owner, &w, None).await;
    clients.push(key);

    let mut failures = Vec::new();
    let mut table = String::from("action                 owner admin billing member wsadm wsmem wsview key\n");
    let (mut granted, mut charged, mut held) = (5_000, 0, 0);
    for (action, expected) in EXPECTED {
        table.push_str(&format!("{:<22}", format!("{action:?}")));
        for (col, want) in expected.iter().enumerate() {
            let r = perform(&clients[col], &org, &w, &target, *action).await;
            let allowed = r.is_success();
            table.push_str(&format!(" {}{:<5}", if allowed { "✓" } else { "·" }, r.status));
            if allowed != *want {
                failures.push(format!(
                    "{action:?} as {}: expected {}, got {} {}",
                    ROLES[col],
                    if *want { "2xx" } else { "a denial" },
                    r.status,
                    r.body
                ));
            }
            if !allowed && (!matches!(r.status, 403 | 404) || !r.content_type.starts_with("application/problem+json")) {
                failures.push(format!(
                    "{action:?} as {}: a denial must be a 403/404 problem: {} {}",
                    ROLES[col], r.status, r.body
                ));
            }
            if allowed {
                match action {
                    Action::TopUp | Action::Adjust => granted += 1,
                    Action::Charge => charged += 1,
                    Action::Hold => held += 1,
                    _ => {}
                }
            }
        }
        table.push('\n');
    }
    println!("{table}");
    assert!(failures.is_empty(), "ledger role matrix mismatches:\n{}\n\n{table}", failures.join("\n"));
    // What the allowed cells did, and nothing the denied ones asked for.
    let wal = wallet(&owner, &org).await;
    assert_eq!(
        (wal["granted"].as_i64(), wal["charged"].as_i64(), wal["held"].as_i64()),
        (Some(granted), Some(charged), Some(held)),
        "{wal}"
    );
    let txs = owner.get(&format!("/v1/workspaces/{w}/transactions?limit=500")).await.unwrap();
    expect_status(&txs, 200);
    assert_eq!(txs.body["items"].as_array().unwrap().len(), usize::try_from(charged).unwrap());
    s.assert_ledger().await;
}

both_backends!(ledger_role_matrix);
