//! Deliveries: signed, complete and in order; retries; disabling; rotation; the monthly quota.

use std::sync::atomic::Ordering;

use roost_server::Clock;
use serde_json::json;

use super::receiver::Receiver;
use super::{create, deliveries, events, fast, key_event, wait_for};
use crate::credits::common::{business, topup};
use crate::support::expect_status;
use roost_test_kit::TestServer;

async fn delivered_signed_in_order(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Hooks").await;
    let rx = Receiver::start().await;
    let only_topups = Receiver::start().await;
    let before = events(&owner, &org).await.len();
    let t0 = s.clock.now_ms().div_euclid(1000);
    let w = create(&owner, &org, &rx.url, json!(["*"])).await;
    let secret = w["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{w}");
    assert_eq!((&w["enabled"], &w["events"], &w["url"]), (&json!(true), &json!(["*"]), &json!(rx.url)), "{w}");
    rx.know(secret);
    let t = create(&owner, &org, &only_topups.url, json!(["wallet.topped_up"])).await;
    only_topups.know(t["secret"].as_str().unwrap());
    // The secret is shown once.
    let got = owner.get(&format!("/v1/webhooks/{}", w["id"].as_str().unwrap())).await.unwrap();
    expect_status(&got, 200);
    assert!(got.body.get("secret").is_none(), "{}", got.body);
    assert_eq!(got.body["id"], w["id"]);

    for i in 0..3 {
        key_event(&owner, &ws, &format!("k{i}")).await;
        topup(&owner, &org, 100).await;
    }
    wait_for(&s, "six deliveries", async || rx.accepted().len() >= 6 && only_topups.accepted().len() >= 3).await;
    let written = events(&owner, &org).await.split_off(before);
    assert_eq!(written.len(), 6, "{written:?}");
    // The receiver has answered; the server logs each attempt after it reads the answer.
    let wid = w["id"].as_str().unwrap();
    wait_for(&s, "six attempts logged", async || deliveries(&owner, wid).await.len() >= 6).await;
    let got = rx.got();
    let log = deliveries(&owner, wid).await;
    assert_eq!(got.len(), 6, "each event once: {log:?}");
    for (g, e) in got.iter().zip(&written) {
        // The body is the event exactly as the events API shows it, and the id is the event's.
        assert_eq!(&g.body, e);
        assert_eq!(g.id, e["id"].as_str().unwrap());
        assert_eq!(g.signatures.len(), 1, "{g:?}");
        assert_eq!(g.signed_by, vec![0], "the signature verifies: {g:?}");
        assert!((t0..=s.clock.now_ms().div_euclid(1000)).contains(&g.timestamp), "the server's time: {g:?}");
    }
    let topups: Vec<_> = written.iter().filter(|e| e["type"] == "wallet.topped_up").map(|e| e["id"].clone()).collect();
    let filtered: Vec<_> = only_topups.got().iter().map(|g| json!(g.id)).collect();
    let tlog = deliveries(&owner, t["id"].as_str().unwrap()).await;
    assert_eq!(filtered, topups, "only the subscribed type, in order: {tlog:?}");
    assert!(only_topups.got().iter().all(|g| g.signed_by == vec![0]));

    assert_eq!(log.len(), 6, "{log:?}");
    for (d, e) in log.iter().zip(&written) {
        assert_eq!((&d["event_id"], &d["attempt"], &d["status_code"]), (&e["id"], &json!(1), &json!(204)), "{d}");
        assert!(d["error"].is_null() && d["duration_ms"].as_i64().unwrap() >= 0, "{d}");
    }
}

async fn retries_keep_the_order(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Retry").await;
    let rx = Receiver::start().await;
    rx.inner.fail_first.store(2, Ordering::SeqCst);
    let w = create(&owner, &org, &rx.url, json!(["key.created"])).await;
    rx.know(w["secret"].as_str().unwrap());
    for i in 0..3 {
        key_event(&owner, &ws, &format!("k{i}")).await;
    }
    // The slow receiver answers within the timeout: still a success.
    rx.inner.delay_ms.store(300, Ordering::SeqCst);
    wait_for(&s, "three accepted", async || rx.accepted().len() >= 3).await;
    let written = key_events(&owner, &org).await;
    let got: Vec<_> = rx.got().iter().map(|g| (g.id.clone(), g.status)).collect();
    let want = vec![
        (written[0].clone(), 500),
        (written[0].clone(), 500),
        (written[0].clone(), 204),
        (written[1].clone(), 204),
        (written[2].clone(), 204),
    ];
    assert_eq!(got, want, "the first event is retried before the next is sent");
    assert!(rx.got().iter().all(|g| g.signed_by == vec![0]));
    let wid = w["id"].as_str().unwrap();
    wait_for(&s, "five attempts logged", async || deliveries(&owner, wid).await.len() >= 5).await;
    let log = deliveries(&owner, wid).await;
    let attempts: Vec<_> = log.iter().map(|d| (d["attempt"].as_i64().unwrap(), d["status_code"].as_i64())).collect();
    assert_eq!(attempts, vec![(1, Some(500)), (2, Some(500)), (3, Some(204)), (1, Some(204)), (1, Some(204))]);
    assert!(log[0]["error"].as_str().unwrap().contains("500"), "{}", log[0]);
}

async fn disabled_after_the_last_retry(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Down").await;
    let rx = Receiver::start().await;
    rx.inner.down.store(true, Ordering::SeqCst);
    let w = create(&owner, &org, &rx.url, json!(["*"])).await;
    let id = w["id"].as_str().unwrap().to_string();
    rx.know(w["secret"].as_str().unwrap());
    key_event(&owner, &ws, "k").await;
    let path = format!("/v1/webhooks/{id}");
    wait_for(&s, "the endpoint disabled", async || owner.get(&path).await.unwrap().body["enabled"] == false).await;
    // One attempt and three retries, all of the same event.
    let got = rx.got();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got.iter().all(|g| g.id == got[0].id && g.status == 500));
    let all = events(&owner, &org).await;
    let disabled: Vec<_> = all.iter().filter(|e| e["type"] == "webhook.disabled").collect();
    assert_eq!(disabled.len(), 1, "{all:?}");
    assert_eq!(disabled[0]["data"]["webhook_id"], json!(id));
    assert_eq!(disabled[0]["data"]["event_id"], json!(got[0].id));
    // Nothing more is sent while disabled.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 4);
    // Enabled again: the failed event first, then the rest (the webhook.disabled event too).
    rx.inner.down.store(false, Ordering::SeqCst);
    let r = owner.patch(&path, &json!({"enabled": true})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(r.body["enabled"], true);
    wait_for(&s, "both events delivered", async || rx.accepted().len() >= 2).await;
    let ids: Vec<_> = rx.accepted().iter().map(|g| g.id.clone()).collect();
    assert_eq!(ids, vec![got[0].id.clone(), disabled[0]["id"].as_str().unwrap().to_string()]);
}

async fn rotation_signs_with_both_secrets(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Rotate").await;
    let rx = Receiver::start().await;
    let w = create(&owner, &org, &rx.url, json!(["key.created"])).await;
    let id = w["id"].as_str().unwrap();
    let old = rx.know(w["secret"].as_str().unwrap());
    key_event(&owner, &ws, "before").await;
    wait_for(&s, "the first delivery", async || !rx.accepted().is_empty()).await;
    let r = owner.post(&format!("/v1/webhooks/{id}/rotate-secret"), &json!({})).await.unwrap();
    expect_status(&r, 200);
    let new_secret = r.body["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != w["secret"].as_str().unwrap(), "{}", r.body);
    let new = rx.know(new_secret);
    key_event(&owner, &ws, "during").await;
    wait_for(&s, "the second delivery", async || rx.accepted().len() >= 2).await;
    // 24 hours later only the new secret signs.
    s.clock.advance(24 * 3_600_000 + 1_000);
    key_event(&owner, &ws, "after").await;
    wait_for(&s, "the third delivery", async || rx.accepted().len() >= 3).await;
    let got = rx.got();
    assert_eq!((got[0].signatures.len(), &got[0].signed_by), (1, &vec![old]), "{:?}", got[0]);
    assert_eq!((got[1].signatures.len(), &got[1].signed_by), (2, &vec![old, new]), "{:?}", got[1]);
    assert_eq!((got[2].signatures.len(), &got[2].signed_by), (1, &vec![new]), "{:?}", got[2]);
}

async fn key_events(owner: &roost::Client, org: &str) -> Vec<String> {
    let all = events(owner, org).await;
    all.iter().filter(|e| e["type"] == "key.created").map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

/// The business plan with a quota of two webhook events a month.
fn quota_of_two(s: &mut roost_server::Settings) {
    fast(s);
    s.session_ttl_days = 400;
    let mut plans = s.catalog.all().to_vec();
    for p in plans.iter_mut().filter(|p| p.id == "business") {
        p.webhook_events_per_month = Some(2);
    }
    s.catalog = roost_domain::Catalog::new(plans, &s.personal_plan).unwrap();
}

async fn monthly_quota_holds_events_back(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Quota").await;
    let rx = Receiver::start().await;
    let w = create(&owner, &org, &rx.url, json!(["key.created"])).await;
    rx.know(w["secret"].as_str().unwrap());
    for i in 0..3 {
        key_event(&owner, &ws, &format!("k{i}")).await;
    }
    wait_for(&s, "two deliveries", async || rx.accepted().len() >= 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(rx.got().len(), 2, "the third waits for next month");
    assert_eq!(key_events(&owner, &org).await.len(), 3, "but it is recorded");
    // The next month: it arrives.
    s.clock.advance(32 * 86_400_000);
    wait_for(&s, "the held event", async || rx.accepted().len() >= 3).await;
    let written = key_events(&owner, &org).await;
    let ids: Vec<_> = rx.got().iter().map(|g| g.id.clone()).collect();
    assert_eq!(ids, written[..3].to_vec());
}

both_backends_with!(
    delivered_signed_in_order => super::fast,
    retries_keep_the_order => super::fast,
    disabled_after_the_last_retry => super::fast,
    rotation_signs_with_both_secrets => super::fast,
    monthly_quota_holds_events_back => super::quota_of_two,
);
