//! Idempotency-Key: one key, one effect; replays answer the first response byte for byte.

use serde_json::json;

use super::common::*;
use crate::support::{expect_problem, expect_status};
use roost_test_kit::TestServer;

/// The number of charges in the workspace journal.
async fn charges_in(c: &roost::Client, ws: &str) -> usize {
    let r = c.get(&format!("/v1/workspaces/{ws}/transactions?limit=500")).await.unwrap();
    expect_status(&r, 200);
    r.body["items"].as_array().unwrap().iter().filter(|e| e["type"] == "charge").count()
}

async fn replays(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Replay").await;
    let key = idem();
    let body = json!({"amount": 250, "action": "llm", "metadata": {"model": "m1"}});
    let first = owner.post_idem("/v1/charges", &key, &body).await.unwrap();
    expect_status(&first, 201);
    assert_eq!(first.body["amount"], 250);
    assert_eq!(first.body["metadata"], json!({"model": "m1"}));
    assert_eq!(first.body["balance_after"], 4_750);
    for _ in 0..3 {
        let again = owner.post_idem("/v1/charges", &key, &body).await.unwrap();
        expect_status(&again, 201);
        assert_eq!(again.body, first.body, "a replay answers the identical body");
    }
    assert_eq!(bha(&owner, &org).await, (4_750, 0, 4_750), "charged once");
    assert_eq!(charges_in(&owner, &ws).await, 1);

    // The same key in another org is another request.
    let (other, _, org2, ws2) = business(&s, "Elsewhere").await;
    let theirs = other.post_idem("/v1/charges", &key, &body).await.unwrap();
    expect_status(&theirs, 201);
    assert_ne!(theirs.body["id"], first.body["id"]);
    assert_eq!(theirs.body["org_id"], org2.as_str());
    assert_eq!(bha(&other, &org2).await, (4_750, 0, 4_750));
    assert_eq!(charges_in(&other, &ws2).await, 1);
    assert_eq!(bha(&owner, &org).await, (4_750, 0, 4_750));

    // Top-ups, holds and settles replay too.
    let tk = idem();
    let t1 =
        owner.post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &tk, &json!({"amount": 100})).await.unwrap();
    let t2 =
        owner.post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &tk, &json!({"amount": 100})).await.unwrap();
    expect_status(&t1, 201);
    assert_eq!(t2.status, 201);
    assert_eq!(t1.body, t2.body);
    let hk = idem();
    let h1 = owner.post_idem("/v1/holds", &hk, &json!({"amount": 300, "action": "job"})).await.unwrap();
    let h2 = owner.post_idem("/v1/holds", &hk, &json!({"amount": 300, "action": "job"})).await.unwrap();
    expect_status(&h1, 201);
    assert_eq!((h2.status, &h2.body), (201, &h1.body));
    assert_eq!(bha(&owner, &org).await, (4_850, 300, 4_550), "one top-up, one hold");
    let hid = h1.str("id");
    let sk = idem();
    let s1 = owner.post_idem(&format!("/v1/holds/{hid}/settle"), &sk, &json!({"amount": 120})).await.unwrap();
    expect_status(&s1, 200);
    assert_eq!((s1.body["released"].as_i64(), s1.body["charge"]["amount"].as_i64()), (Some(180), Some(120)));
    let s2 = owner.post_idem(&format!("/v1/holds/{hid}/settle"), &sk, &json!({"amount": 120})).await.unwrap();
    assert_eq!((s2.status, &s2.body), (200, &s1.body), "a settle replay is not `hold_closed`");
    assert_eq!(s2.body["charge"]["id"], s1.body["charge"]["id"]);
    assert_eq!(bha(&owner, &org).await, (4_730, 0, 4_730));
    s.assert_ledger().await;
}

/// A rejection is stored and replayed: the same key keeps answering 402 even once credits arrive.
async fn stored_rejection(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Rejected").await;
    let key = idem();
    let body = json!({"amount": 6_000, "action": "big"});
    let first = owner.post_idem("/v1/charges", &key, &body).await.unwrap();
    expect_problem(&first, 402, "insufficient_credits");
    assert_eq!(first.body["available"], 5_000);
    topup(&owner, &org, 2_000).await;
    let again = owner.post_idem("/v1/charges", &key, &body).await.unwrap();
    expect_problem(&again, 402, "insufficient_credits");
    assert_eq!(again.body, first.body, "the stored 402 is replayed, `available` included");
    assert_eq!(bha(&owner, &org).await, (7_000, 0, 7_000), "the replay charged nothing");
    // A fresh key goes through.
    let ok = owner.post_idem("/v1/charges", &idem(), &body).await.unwrap();
    expect_status(&ok, 201);
    assert_eq!(ok.body["balance_after"], 1_000);
    s.assert_ledger().await;
}

both_backends!(replays, stored_rejection);
