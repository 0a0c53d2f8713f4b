//! Attribution: every charge names its workspace and actor; workspace transactions filter by actor;
//! org usage groups by workspace, member, key and action with exact sums, counts and shares, also
//! over windows that cut hours in the middle.

use std::collections::BTreeMap;

use roost_domain::time::to_rfc3339;
use serde_json::{Value, json};

use super::common::*;
use crate::support::{create_ws, encode, expect_invalid, expect_status, list_all, now_ms, uid};
use roost_test_kit::TestServer;

/// `key → (amount, count)` of a usage report; checks total, count and shares on the way.
#[track_caller]
fn groups(r: &roost::Response) -> BTreeMap<String, (i64, i64)> {
    expect_status(r, 200);
    let gs = r.body["groups"].as_array().unwrap_or_else(|| panic!("no groups: {}", r.body));
    let total: i64 = gs.iter().map(|g| g["amount"].as_i64().unwrap()).sum();
    let count: i64 = gs.iter().map(|g| g["count"].as_i64().unwrap()).sum();
    assert_eq!(r.body["total"], total, "{}", r.body);
    assert_eq!(r.body["count"], count, "{}", r.body);
    if total > 0 {
        let shares: f64 = gs.iter().map(|g| g["share"].as_f64().unwrap()).sum();
        assert!((shares - 1.0).abs() <= 0.0001, "shares sum to {shares}: {}", r.body);
        for g in gs {
            #[expect(clippy::cast_precision_loss, reason = "test arithmetic on small numbers")]
            let want = g["amount"].as_i64().unwrap() as f64 / total as f64;
            assert!((g["share"].as_f64().unwrap() - want).abs() <= 0.0001, "share of {g} in {total}");
        }
    }
    let amounts: Vec<i64> = gs.iter().map(|g| g["amount"].as_i64().unwrap()).collect();
    let mut sorted = amounts.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(amounts, sorted, "groups come largest first: {}", r.body);
    gs.iter()
        .map(|g| {
            let k = match &g["key"] {
                Value::Null => "null".to_string(),
                v => v.as_str().unwrap().to_string(),
            };
            (k, (g["amount"].as_i64().unwrap(), g["count"].as_i64().unwrap()))
        })
        .collect()
}

fn m(pairs: &[(&str, (i64, i64))]) -> BTreeMap<String, (i64, i64)> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()
}

async fn usage_and_transactions(s: TestServer) {
    let (owner, osg, org, a) = business(&s, "Attributed").await;
    let b = create_ws(&owner, &org, "B").await;
    let (mem, msg) = member(&s, &owner, &org, &a, "member", Some("member")).await;
    crate::support::set_ws_role(&owner, &b, &uid(&msg), "member").await;
    let (o, mu) = (uid(&osg), uid(&msg));
    let (ka, key_a) = api_key(&s, &mem, &a, None).await;
    let (kb, key_b) = api_key(&s, &owner, &b, None).await;
    let (owner_a, owner_b, mem_a, mem_b) =
        (owner.in_workspace(&a), owner.in_workspace(&b), mem.clone(), mem.in_workspace(&b));

    // Charges placed at known minutes past a whole hour H.
    let h = (now_ms(&s) / HOUR + 1) * HOUR;
    let at = |min: i64| h + min * MINUTE;
    let plan: [(i64, &roost::Client, i64, &str); 7] = [
        (10, &owner_a, 100, "llm"),
        (20, &mem_a, 200, "llm"),
        (40, &key_a, 300, "embed"),
        (70, &key_b, 400, "llm"),
        (100, &mem_b, 500, "embed"),
        (130, &owner_b, 600, "storage"),
        (150, &key_a, 700, "llm"),
    ];
    for (min, who, amount, action) in plan {
        advance_to(&s, at(min));
        let c = created(charge(who, amount, action).await);
        assert_eq!(crate::support::ts_ms(&c["at"]), at(min), "{c}");
    }
    let usage = |from: i64, to: i64, by: &str| {
        let path = format!(
            "/v1/orgs/{org}/usage?from={}&to={}&group_by={by}",
            encode(&to_rfc3339(from)),
            encode(&to_rfc3339(to))
        );
        let owner = owner.clone();
        async move { owner.get(&path).await.unwrap() }
    };

    // The whole window.
    let (from, to) = (h, h + 3 * HOUR);
    let r = usage(from, to, "workspace").await;
    assert_eq!(
        (&r.body["total"], &r.body["count"], &r.body["group_by"]),
        (&json!(2_800), &json!(7), &json!("workspace"))
    );
    assert_eq!((&r.body["from"], &r.body["to"]), (&json!(to_rfc3339(from)), &json!(to_rfc3339(to))));
    assert_eq!(r.body["wallet_id"], wallet(&owner, &org).await["id"]);
    assert_eq!(groups(&r), m(&[(&a, (1_300, 4)), (&b, (1_500, 3))]));
    assert_eq!(groups(&usage(from, to, "member").await), m(&[(&o, (1_100, 3)), (&mu, (1_700, 4))]));
    assert_eq!(groups(&usage(from, to, "key").await), m(&[("null", (1_400, 4)), (&ka, (1_000, 2)), (&kb, (400, 1))]));
    assert_eq!(
        groups(&usage(from, to, "action").await),
        m(&[("llm", (1_400, 4)), ("embed", (800, 2)), ("storage", (600, 1))])
    );

    // Windows that cut hours in the middle: [H+15m, H+2h25m) has partial hours at both ends and a
    // whole hour between.
    let r = usage(at(15), at(145), "workspace").await;
    assert_eq!((&r.body["total"], &r.body["count"]), (&json!(2_000), &json!(5)));
    assert_eq!(groups(&r), m(&[(&a, (500, 2)), (&b, (1_500, 3))]));
    assert_eq!(
        groups(&usage(at(15), at(145), "key").await),
        m(&[("null", (1_300, 3)), (&ka, (300, 1)), (&kb, (400, 1))])
    );
    // `from` is inclusive and `to` exclusive, to the millisecond.
    let r = usage(at(20), at(130), "member").await;
    assert_eq!(groups(&r), m(&[(&o, (400, 1)), (&mu, (1_000, 3))]));
    let r = usage(at(20) + 1, at(130) + 1, "member").await;
    assert_eq!(groups(&r), m(&[(&o, (1_000, 2)), (&mu, (800, 2))]));
    // Inside one hour; and an empty window.
    assert_eq!(groups(&usage(at(5), at(45), "action").await), m(&[("llm", (300, 2)), ("embed", (300, 1))]));
    let r = usage(at(41), at(69), "action").await;
    assert_eq!((&r.body["total"], &r.body["count"], &r.body["groups"]), (&json!(0), &json!(0), &json!([])));
    // Defaults: from the cycle start to now (everything so far).
    let r = owner.get(&format!("/v1/orgs/{org}/usage")).await.unwrap();
    assert_eq!((&r.body["total"], &r.body["group_by"]), (&json!(2_800), &json!("workspace")));
    // Bad parameters.
    expect_invalid(&owner.get(&format!("/v1/orgs/{org}/usage?group_by=planet")).await.unwrap(), "group_by");
    expect_invalid(&owner.get(&format!("/v1/orgs/{org}/usage?from=yesterday")).await.unwrap(), "from");

    // Workspace transactions, with and without ?actor=.
    let all_a = list_all(&owner, &format!("/v1/workspaces/{a}/transactions"), 2).await;
    let amounts: Vec<i64> = all_a.iter().map(|e| e["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, vec![700, 300, 200, 100], "newest first");
    for e in &all_a {
        assert_eq!((&e["type"], &e["workspace_id"]), (&json!("charge"), &json!(a)), "{e}");
    }
    assert_eq!(all_a[0]["actor"], json!({"type": "key", "id": ka}));
    let by = |ws: &str, actor: &str| format!("/v1/workspaces/{ws}/transactions?actor={actor}");
    let r = owner.get(&by(&a, &mu)).await.unwrap();
    let got: Vec<(Value, Value)> =
        r.body["items"].as_array().unwrap().iter().map(|e| (e["actor"].clone(), e["amount"].clone())).collect();
    assert_eq!(got, vec![(json!({"type": "user", "id": mu}), json!(200))], "a member's own charges, not their key's");
    let r = owner.get(&by(&a, &ka)).await.unwrap();
    let got: Vec<i64> = r.body["items"].as_array().unwrap().iter().map(|e| e["amount"].as_i64().unwrap()).collect();
    assert_eq!(got, vec![700, 300]);
    let r = owner.get(&by(&b, &kb)).await.unwrap();
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["amount"], 400);
    let r = owner.get(&by(&b, &ka)).await.unwrap();
    assert_eq!(r.body["items"], json!([]), "key A never charged in B");
    // The key reads its own workspace's transactions.
    let r = key_a.get(&format!("/v1/workspaces/{a}/transactions?actor={ka}")).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    expect_invalid(&owner.get(&by(&a, "bob")).await.unwrap(), "actor");
    // The org journal filters by actor too.
    let r = owner.get(&format!("/v1/orgs/{org}/transactions?actor={o}")).await.unwrap();
    let got: Vec<i64> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "charge")
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![600, 100]);
    s.assert_ledger().await;
}

both_backends!(usage_and_transactions);
