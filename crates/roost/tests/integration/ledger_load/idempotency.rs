//! One Idempotency-Key fired by 64 concurrent requests: one charge, 64 identical answers.

use std::sync::Arc;

use roost::{Client, Response};
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::common::{ACTION, idem_key, int, tenant};
use crate::support::{expect_problem, expect_status};
use roost_test_kit::TestServer;
use roost_test_kit::ledger::check_org;

both_backends!(same_key_64_times_at_once);

/// Sends `POST /v1/charges` with Idempotency-Key `key` and `bodies[i]` from `clients[i]`, all at
/// once; the answers in order.
async fn at_once(clients: Vec<Client>, key: &str, bodies: Vec<Value>) -> Vec<Response> {
    let barrier = Arc::new(Barrier::new(clients.len()));
    let mut set = JoinSet::new();
    for (i, (c, body)) in clients.into_iter().zip(bodies).enumerate() {
        let (barrier, key) = (barrier.clone(), key.to_string());
        set.spawn(async move {
            barrier.wait().await;
            (i, c.post_idem("/v1/charges", &key, &body).await.expect("the server answers"))
        });
    }
    let mut out: Vec<Option<Response>> = vec![None; set.len()];
    while let Some(done) = set.join_next().await {
        let (i, r) = done.expect("a request task panicked");
        out[i] = Some(r);
    }
    out.into_iter().map(|r| r.expect("every request answered")).collect()
}

async fn same_key_64_times_at_once(s: TestServer) {
    let t = tenant(&s.client, 0).await;
    let key = t.key(&s.client, 0, &t.ws[0], None).await;
    let before = t.wallet().await;
    let clients = || (0..64).map(|_| key.client(&s.client)).collect::<Vec<_>>();

    // The same request 64 times: one charge, 64 identical answers.
    let k1 = idem_key("same");
    let body = json!({"amount": 7, "action": ACTION, "metadata": {"order": "A-1"}});
    let answers = at_once(clients(), &k1, vec![body.clone(); 64]).await;
    let first = &answers[0];
    expect_status(first, 201);
    assert_eq!((int(&first.body, "amount"), &first.body["metadata"]), (7, &json!({"order": "A-1"})), "{}", first.body);
    for a in &answers {
        assert_eq!((a.status, &a.body), (201, &first.body), "every answer is the one charge");
        assert_eq!(a.content_type, first.content_type);
    }
    let charge_id = first.str("id").to_string();
    let journal = t.journal().await;
    let listed: Vec<&Value> = journal.iter().filter(|e| e["type"] == "charge").collect();
    assert_eq!(listed.len(), 1, "one charge in the journal");
    assert_eq!(listed[0]["id"], charge_id.as_str());
    let w = t.wallet().await;
    assert_eq!(int(&w, "charged"), int(&before, "charged") + 7, "{w}");
    let db = check_org(&s.admin_url, &t.org).await;
    assert_eq!(db.charges.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec![charge_id.as_str()]);
    // A charge's record names its journal entry; replays are rebuilt from it (checked above).
    assert_eq!(
        db.idempotency.get(&k1),
        Some(&(201, json!({"$entry": first.body["id"]}))),
        "the stored record names the answer's charge"
    );

    // The same key with two different bodies at once: one of them is applied, and every request
    // with that body gets its answer; every request with the other body is a conflict.
    let k2 = idem_key("split");
    let bodies: Vec<Value> =
        (0..64_usize).map(|i| json!({"amount": if i.is_multiple_of(2) { 5 } else { 6 }, "action": ACTION})).collect();
    let answers = at_once(clients(), &k2, bodies).await;
    let winner = answers.iter().find(|a| a.status == 201).expect("one of the bodies is applied");
    let won = int(&winner.body, "amount");
    for (i, a) in answers.iter().enumerate() {
        let amount = if i.is_multiple_of(2) { 5 } else { 6 };
        if amount == won {
            assert_eq!((a.status, &a.body), (201, &winner.body), "request {i} has the winning body");
        } else {
            expect_problem(a, 409, "idempotency_conflict");
        }
    }
    let db = check_org(&s.admin_url, &t.org).await;
    assert_eq!(db.charges.len(), 2, "one charge for the second key");
    assert_eq!(db.charged, int(&before, "charged") + 7 + won);

    // A refusal is stored and replayed the same way, even once the credits are there.
    let k3 = idem_key("refused");
    let too_much = int(&t.wallet().await, "available") + 1;
    let answers = at_once(clients(), &k3, vec![json!({"amount": too_much, "action": ACTION}); 64]).await;
    expect_problem(&answers[0], 402, "insufficient_credits");
    assert!(answers.iter().all(|a| a.status == 402 && a.body == answers[0].body), "64 identical refusals");
    let r = t
        .owner
        .post_idem(
            &format!("/v1/orgs/{}/wallets/credits/topups", t.org),
            &idem_key("topup"),
            &json!({"amount": too_much}),
        )
        .await
        .unwrap();
    expect_status(&r, 201);
    let again =
        key.client(&s.client).post_idem("/v1/charges", &k3, &json!({"amount": too_much, "action": ACTION})).await;
    let again = again.unwrap();
    assert_eq!((again.status, &again.body), (402, &answers[0].body), "the stored refusal is replayed");
    let db = check_org(&s.admin_url, &t.org).await;
    assert_eq!(db.charges.len(), 2, "the refused key charged nothing");
    assert_eq!(db.idempotency.get(&k3).map(|r| r.0), Some(402));
}
