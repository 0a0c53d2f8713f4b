//! The billing commands as a real process: operator keys made against the database, a purchase
//! bought and marked paid, invoices listed and shown, the operator's org list, grant and plan.

use super::common::billing_on;
use crate::cli_credits::{Cli, pair, row};
use roost_test_kit::TestServer;

async fn billing_from_the_cli(s: TestServer) {
    let alice = Cli::new(&s);
    alice.signup("Alice").await;
    let org = alice.run(&["orgs", "create", "Acme", "--plan", "team", "--json"]).await.json()["org"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let made = alice.run(&["operator", "create-key", "billing bot", "--database-url", &s.database_url]).await;
    let out = made.ok();
    let (key_id, key) = (pair(out, "id").to_string(), pair(out, "secret").to_string());
    assert!(key.starts_with("rso_") && key_id.starts_with("opk_"), "{out}");

    let bought = alice.run(&["credits", "buy", "2", "--org", &org]).await;
    let out = bought.ok();
    assert_eq!(pair(out, "status"), "pending", "{out}");
    assert!(pair(out, "price").starts_with("200000 IDR"), "{out}");
    let purchase = pair(out, "purchase").to_string();

    let paid =
        alice.run(&["billing", "mark-paid", &purchase, "--reference", "transfer 7", "--operator-key", &key]).await;
    assert_eq!(pair(paid.ok(), "outcome"), "paid");
    let balance = alice.run(&["credits", "balance", "--org", &org, "--json"]).await.json();
    let topups: i64 = balance["items"][0]["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["source"] == "topup")
        .map(|g| g["remaining"].as_i64().unwrap())
        .sum();
    assert_eq!(topups, 2_000, "{balance}");

    let list = alice.run(&["invoices", "list", "--org", &org]).await;
    let table = list.ok();
    let draft = table.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    assert!(draft.starts_with("bill_"), "{table}");
    assert_eq!(row(table, &draft)[2], "draft");
    let shown = alice.run(&["invoices", "show", &draft]).await;
    let out = shown.ok();
    assert!(out.contains("Team plan") && out.contains("2 credit packs"), "{out}");
    assert_eq!(pair(out, "amount due"), "149000 IDR", "the packs were paid: {out}");

    let orgs = alice.run(&["admin", "orgs", "--operator-key", &key]).await;
    assert_eq!(row(orgs.ok(), &org)[3], "team");
    let granted = alice.run(&["admin", "grant", &org, "300", "--reason", "promo", "--operator-key", &key]).await;
    assert_eq!(pair(granted.ok(), "granted"), "300");
    let plan = alice.run(&["admin", "plan", &org, "business", "--operator-key", &key]).await;
    assert_eq!(pair(plan.ok(), "plan"), "business");

    alice.run(&["operator", "revoke-key", &key_id, "--database-url", &s.database_url]).await.ok();
    let refused = alice.run(&["admin", "orgs", "--operator-key", &key]).await;
    assert!(refused.failed().contains("unauthenticated"), "{refused:?}");
}

roost_test_kit::both_backends_with!(billing_from_the_cli => super::billing_on);
