//! 64 clients race for a pool of exactly K charges: exactly K win, everyone else is told 402 with
//! nothing available, and the books balance — in one server, and across three `roost serve`
//! processes on one PostgreSQL database.

use std::collections::{BTreeSet, HashMap};

use roost::Client;
use serde_json::Value;

use super::common::{Actor, Fire, distinct, int, race, tenant};
use crate::support::expect_problem;
use roost_test_kit::TestServer;
use roost_test_kit::ledger::check_org;
use roost_test_kit::process::Roost;

/// Charges that fit.
const K: i64 = 40;
/// Every charge's amount (odd, so that one charge straddles the allocation and the top-up).
const AMOUNT: i64 = 7;

both_backends!(race_for_exact_pool);

// Regression: the cached book was once trusted on a ledger version read before the org lock was
// granted, so several processes overdrew the pool.
postgres_only!(race_across_three_processes);

async fn race_for_exact_pool(s: TestServer) {
    exact_pool(&s, std::slice::from_ref(&s.client)).await;
}

/// The same race with the clients spread over three real server processes on one database.
async fn race_across_three_processes(s: TestServer) {
    let mut procs = Vec::new();
    for _ in 0..3 {
        procs.push(Roost::start(crate::ROOST, &s.database_url).await);
    }
    let bases: Vec<Client> = procs.iter().map(|p| p.client.clone()).collect();
    exact_pool(&s, &bases).await;
    for p in &mut procs {
        assert!(p.running(), "the roost process at {} died during the race; log: {}", p.base, p.log.display());
        p.kill().await;
    }
}

/// The race: the tenant is set up through `s`; racer `i` talks to the server of `bases[i % len]`
/// (unauthenticated clients).
async fn exact_pool(s: &TestServer, bases: &[Client]) {
    let t = tenant(&s.client, 3).await;
    let wss = [t.ws[0].as_str(), t.ws[1].as_str()];
    // 32 API keys (made by the four users, in both workspaces) and 32 user clients (each of the
    // four users in both workspaces).
    let actors = t.actors(&s.client, 32, 32, &wss).await;
    t.set_available(K * AMOUNT).await;
    let before = t.wallet().await;
    let wallet_id = before["id"].as_str().unwrap().to_string();

    let racers = actors.iter().enumerate().map(|(i, a)| (a.client(&bases[i % bases.len()]), Fire::charge(AMOUNT)));
    let runs = race(racers.collect()).await;

    // Exactly K charges went through, each one complete and consistent.
    let accepted: Vec<(&Actor, &Value)> =
        actors.iter().zip(&runs).flat_map(|(a, r)| r.accepted.iter().map(move |c| (a, c))).collect();
    assert_eq!(accepted.len() as i64, K, "exactly {K} charges of {AMOUNT} fit in {}", K * AMOUNT);
    for (a, c) in &accepted {
        assert_eq!(int(c, "amount"), AMOUNT, "{c}");
        assert_eq!(c["action"], super::common::ACTION, "{c}");
        assert_eq!(
            (c["org_id"].as_str(), c["wallet_id"].as_str()),
            (Some(t.org.as_str()), Some(wallet_id.as_str())),
            "{c}"
        );
        assert_eq!(c["workspace_id"], a.ws(), "a charge lands in the actor's workspace: {c}");
        assert_eq!((c["actor"]["type"].as_str(), c["actor"]["id"].as_str()), (Some(a.kind()), Some(a.id())), "{c}");
        let splits = c["splits"].as_array().unwrap();
        assert_eq!(splits.iter().map(|p| int(p, "amount")).sum::<i64>(), AMOUNT, "splits add up: {c}");
        assert!(c["id"].as_str().unwrap().starts_with("chg_"), "{c}");
    }
    let ids = distinct(accepted.iter().map(|(_, c)| c["id"].as_str().unwrap().to_string()), "charge ids");
    // The charges were applied one after another: their balances after are K distinct steps.
    let afters: BTreeSet<i64> = accepted.iter().map(|(_, c)| int(c, "balance_after")).collect();
    let steps: BTreeSet<i64> = (0..K).map(|i| i * AMOUNT).collect();
    assert_eq!(afters, steps, "balance_after of the {K} charges");

    // Everyone else was refused for want of credits, with nothing left.
    for r in &runs {
        expect_problem(&r.refusal, 402, "insufficient_credits");
        assert_eq!(r.refusal.body["available"], 0, "{}", r.refusal.body);
    }

    // The wallet is empty, and charged exactly the pool.
    let w = t.wallet().await;
    assert_eq!(
        (int(&w, "balance"), int(&w, "available"), int(&w, "held")),
        (0, 0, 0),
        "the wallet after the race: {w}"
    );
    assert_eq!(int(&w, "charged"), int(&before, "charged") + K * AMOUNT, "{w}");
    assert_eq!(int(&w, "granted"), int(&before, "granted"), "{w}");

    // The journal lists exactly those K charges, as they were answered.
    let journal = t.journal().await;
    let listed: Vec<&Value> = journal.iter().filter(|e| e["type"] == "charge").collect();
    assert_eq!(listed.len() as i64, K, "charges in the org journal");
    let listed_ids = distinct(listed.iter().map(|e| e["id"].as_str().unwrap().to_string()), "journal charge ids");
    assert_eq!(listed_ids, ids, "the journal holds exactly the acknowledged charges");
    let by_id: HashMap<&str, &Value> = accepted.iter().map(|(_, c)| (c["id"].as_str().unwrap(), *c)).collect();
    for e in &listed {
        let c = by_id[e["id"].as_str().unwrap()];
        for f in ["amount", "balance_after", "splits", "workspace_id", "actor", "at", "wallet_id"] {
            assert_eq!(e[f], c[f], "journal entry vs. answer, field {f}: {e} vs {c}");
        }
    }
    // Per workspace: the workspace journals and the usage rollups agree with the answers.
    // The window is the charges' own times: with several processes their clocks are not the
    // test server's (frozen) clock.
    let times: Vec<i64> =
        accepted.iter().map(|(_, c)| roost_domain::time::parse_rfc3339(c["at"].as_str().unwrap()).unwrap()).collect();
    let from = roost_domain::time::to_rfc3339(*times.iter().min().unwrap());
    let to = roost_domain::time::to_rfc3339(times.iter().max().unwrap() + 1);
    let usage = t.owner.get(&format!("/v1/orgs/{}/usage?group_by=workspace&from={from}&to={to}", t.org)).await.unwrap();
    assert_eq!(usage.status, 200, "{}", usage.body);
    assert_eq!((int(&usage.body, "total"), int(&usage.body, "count")), (K * AMOUNT, K), "{}", usage.body);
    for ws in wss {
        let n = accepted.iter().filter(|(a, _)| a.ws() == ws).count() as i64;
        let items = crate::support::list_all(&t.owner, &format!("/v1/workspaces/{ws}/transactions"), 500).await;
        let charges = items.iter().filter(|e| e["type"] == "charge").count() as i64;
        assert_eq!(charges, n, "charges listed for workspace {ws}");
        let group = usage.body["groups"].as_array().unwrap().iter().find(|g| g["key"] == ws);
        let (amount, count) = group.map_or((0, 0), |g| (int(g, "amount"), int(g, "count")));
        assert_eq!((amount, count), (n * AMOUNT, n), "usage of workspace {ws}: {}", usage.body);
    }

    // The books as stored.
    let db = check_org(&s.admin_url, &t.org).await;
    assert_eq!((db.balance, db.held), (0, 0));
    assert_eq!(
        (db.wallet_id.as_str(), db.granted, db.charged, db.expired),
        (wallet_id.as_str(), int(&w, "granted"), int(&w, "charged"), int(&w, "expired")),
        "the API shows the stored totals"
    );
    assert_eq!(distinct(db.charges.iter().map(|c| c.0.clone()), "stored charge ids"), ids);
    assert!(db.charges.iter().all(|c| c.1 == AMOUNT));
}
