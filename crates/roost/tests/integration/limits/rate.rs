//! One server: the headers on every API-key response, 429 `rate_limited`, keys' `rpm` bounded by
//! the org's, in-process and through Redis, and Redis down.

use roost_domain::Catalog;
use roost_test_kit::{Backend, TestServer};
use serde_json::json;

use super::{REDIS_URL, delete_redis_keys, get, key_with_rpm, on_both, redis_keys, unique_prefix};
use crate::support::{expect_invalid, expect_status};

/// The personal org is on the built-in `free` plan: 60 requests per minute.
const FREE_RPM: u64 = 60;

async fn personal_ws(s: &TestServer) -> (roost::Client, String) {
    let (alice, body) = s.signup("Alice").await;
    (alice, body["personal"]["workspace_id"].as_str().unwrap().to_string())
}

async fn key_rpm_is_bounded_by_the_org(s: TestServer) {
    let (alice, ws) = personal_ws(&s).await;
    let keys = format!("/v1/workspaces/{ws}/keys");
    for rpm in [0, -1, 61] {
        let r = alice.post(&keys, &json!({"name": "k", "rpm": rpm})).await.unwrap();
        expect_invalid(&r, "rpm");
    }
    let (id, _) = key_with_rpm(&alice, &ws, Some(60)).await;
    for body in [json!({"rpm": 61}), json!({}), json!({"rpm": "many"})] {
        let r = alice.patch(&format!("/v1/keys/{id}"), &body).await.unwrap();
        expect_invalid(&r, "rpm");
    }
    let r = alice.patch(&format!("/v1/keys/{id}"), &json!({"rpm": 7})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!((r.body["id"].as_str(), &r.body["rpm"]), (Some(id.as_str()), &json!(7)));
    let listed = alice.get(&keys).await.unwrap();
    assert_eq!(listed.body["items"][0]["rpm"], json!(7), "{}", listed.body);
    let r = alice.patch(&format!("/v1/keys/{id}"), &json!({"rpm": null})).await.unwrap();
    assert_eq!(r.body["rpm"], json!(null));
    // Another tenant's key is not found.
    let (bob, _) = s.signup("Bob").await;
    let r = bob.patch(&format!("/v1/keys/{id}"), &json!({"rpm": 5})).await.unwrap();
    crate::support::expect_problem(&r, 404, "not_found");
}

/// Key `rpm` 3, then the org's 60, on the server's manual clock.
async fn limits_in_process(s: TestServer) {
    let http = reqwest::Client::new();
    let (alice, ws) = personal_ws(&s).await;
    let (id, secret) = key_with_rpm(&alice, &ws, Some(3)).await;
    for (i, reset) in [(2, 20), (1, 40), (0, 60)] {
        let r = get(&http, &s.base, "/v1/me", &secret).await;
        assert_eq!((r.status, r.limit, r.remaining, r.reset), (200, Some(3), Some(i), Some(reset)), "{r:?}");
    }
    let r = get(&http, &s.base, "/v1/me", &secret).await;
    assert_eq!((r.status, r.retry_after, r.limit, r.remaining), (429, Some(20), Some(3), Some(0)), "{r:?}");
    assert_eq!(r.body["code"], "rate_limited");
    assert_eq!(r.body["status"], 429);
    assert_eq!(
        (&r.body["limit_source"], &r.body["limit"], &r.body["reset_seconds"]),
        (&json!("key"), &json!(3), &json!(20))
    );
    s.clock.advance(20_000);
    let r = get(&http, &s.base, "/v1/me", &secret).await;
    assert_eq!((r.status, r.remaining), (200, Some(0)), "{r:?}");

    // A user's requests carry no rate-limit headers.
    let r = get(&http, &s.base, "/v1/me", alice.token().unwrap()).await;
    assert_eq!((r.status, r.limit), (200, None));

    // The org's limit over all its keys: a key without its own rpm gets the org's 60.
    s.clock.advance(60_000);
    let (_, other) = key_with_rpm(&alice, &ws, None).await;
    for i in 0..FREE_RPM {
        let r = get(&http, &s.base, "/v1/me", &other).await;
        assert_eq!((r.status, r.limit, r.remaining), (200, Some(FREE_RPM), Some(FREE_RPM - 1 - i)), "{r:?}");
    }
    for token in [&other, &secret] {
        let r = get(&http, &s.base, "/v1/me", token).await;
        assert_eq!((r.status, r.retry_after), (429, Some(1)), "{r:?}");
        assert_eq!((&r.body["limit_source"], &r.body["limit"]), (&json!("org"), &json!(FREE_RPM)), "{r:?}");
    }
    // Every API-key response carries the headers, errors included.
    s.clock.advance(60_000);
    let r = get(&http, &s.base, "/v1/orgs/org_00000000000000000000000000", &other).await;
    assert!(r.status >= 400 && r.limit == Some(FREE_RPM) && r.remaining == Some(FREE_RPM - 1), "{r:?}");
    let r = get(&http, &s.base, &format!("/v1/keys/{id}/nothing"), &other).await;
    assert_eq!((r.status, r.limit), (404, None), "no route: no key check, no headers: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rpm_never_above_the_orgs() {
    on_both(None, &unique_prefix(), key_rpm_is_bounded_by_the_org).await;
}

/// Found by the benchmark: on a plan without an `rpm`, a key could be given 100,000,000 a minute,
/// and every request with it then answered 500 (the limiter's interval was 0 µs and it divided by
/// it). A key's `rpm` is now at most 60,000,000, which still counts, in process and through Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rpm_is_at_most_one_a_microsecond() {
    let redis = super::redis_up().await;
    let prefix = unique_prefix();
    for (backend, url) in [
        (Backend::Sqlite, None),
        (Backend::Sqlite, Some(REDIS_URL)),
        (Backend::Postgres, None),
        (Backend::Postgres, Some(REDIS_URL)),
    ] {
        if url.is_some() && !redis {
            continue;
        }
        let p = format!("{prefix}{backend:?}{}:", url.is_some());
        let s = TestServer::start_with(backend, |st| {
            let mut plans = Catalog::builtin().all().to_vec();
            plans.iter_mut().filter(|p| p.id == "free").for_each(|p| p.rpm = None);
            st.catalog = Catalog::new(plans, "free").expect("catalog");
            st.redis_url = url.map(str::to_string);
            st.redis_key_prefix = p;
        })
        .await;
        let Some(s) = s else {
            eprintln!("{}", roost_test_kit::SKIPPED);
            continue;
        };
        let (alice, ws) = personal_ws(&s).await;
        let keys = format!("/v1/workspaces/{ws}/keys");
        for rpm in [60_000_001_i64, 100_000_000, i64::from(u32::MAX) + 1] {
            let r = alice.post(&keys, &json!({"name": "k", "rpm": rpm})).await.unwrap();
            expect_invalid(&r, "rpm");
        }
        let (id, secret) = key_with_rpm(&alice, &ws, Some(60_000_000)).await;
        let r = alice.patch(&format!("/v1/keys/{id}"), &json!({"rpm": 60_000_001})).await.unwrap();
        expect_invalid(&r, "rpm");
        let http = reqwest::Client::new();
        for _ in 0..3 {
            let r = get(&http, &s.base, "/v1/me", &secret).await;
            assert_eq!((r.status, r.limit), (200, Some(60_000_000)), "{r:?}");
            assert!(r.remaining.is_some_and(|n| n > 59_000_000), "{r:?}");
        }
    }
    delete_redis_keys(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_in_process() {
    on_both(None, &unique_prefix(), limits_in_process).await;
}

/// The same limits, counted in the real Redis (its clock: the numbers are read with a second's slack).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_through_redis() {
    if !super::redis_up().await {
        return;
    }
    let prefix = unique_prefix();
    on_both(Some(REDIS_URL), &prefix, |s| {
        let prefix = prefix.clone();
        async move {
            let http = reqwest::Client::new();
            let (alice, ws) = personal_ws(&s).await;
            let (id, secret) = key_with_rpm(&alice, &ws, Some(3)).await;
            for i in [2, 1, 0] {
                let r = get(&http, &s.base, "/v1/me", &secret).await;
                assert_eq!((r.status, r.limit, r.remaining), (200, Some(3), Some(i)), "{r:?}");
            }
            let r = get(&http, &s.base, "/v1/me", &secret).await;
            assert_eq!(
                (r.status, r.body["code"].as_str(), r.body["limit_source"].as_str()),
                (429, Some("rate_limited"), Some("key"))
            );
            let wait = r.retry_after.unwrap();
            assert!((19..=20).contains(&wait) && r.body["reset_seconds"] == json!(wait), "{r:?}");
            let stored = redis_keys(&prefix).await;
            assert!(stored.iter().any(|k| k.ends_with(&format!(":key:{id}"))), "{stored:?}");
            assert!(stored.iter().any(|k| k.ends_with(":org")), "{stored:?}");
        }
    })
    .await;
    delete_redis_keys(&prefix).await;
    assert!(redis_keys(&prefix).await.is_empty());
}

/// Redis unreachable (a closed port): requests pass, limited in this process alone, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_open_and_counts() {
    on_both(Some("redis://127.0.0.1:1"), &unique_prefix(), |s| async move {
        let http = reqwest::Client::new();
        let (alice, ws) = personal_ws(&s).await;
        let (_, secret) = key_with_rpm(&alice, &ws, Some(5)).await;
        for i in 0..5 {
            let r = get(&http, &s.base, "/v1/me", &secret).await;
            assert_eq!((r.status, r.limit, r.remaining), (200, Some(5), Some(4 - i)), "{r:?}");
        }
        let metrics = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
        let line = metrics.lines().find(|l| l.starts_with("roost_rate_limit_redis_failures_total"));
        assert_eq!(line, Some("roost_rate_limit_redis_failures_total 5"), "{metrics}");
    })
    .await;
}

/// `rate_limits = false`: nothing is limited and no headers are sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_can_be_turned_off() {
    for backend in [roost_test_kit::Backend::Sqlite, roost_test_kit::Backend::Postgres] {
        let Some(s) = TestServer::start_with(backend, |st| st.rate_limits = false).await else {
            eprintln!("{}", roost_test_kit::SKIPPED);
            continue;
        };
        let http = reqwest::Client::new();
        let (alice, ws) = personal_ws(&s).await;
        let (_, secret) = key_with_rpm(&alice, &ws, Some(1)).await;
        for _ in 0..3 {
            let r = get(&http, &s.base, "/v1/me", &secret).await;
            assert_eq!((r.status, r.limit, r.remaining), (200, None, None), "{r:?}");
        }
        let listed = s.client.with_token(&secret).get("/v1/limits").await.unwrap();
        assert_eq!(listed.status, 200, "{}", listed.body);
        assert!(listed.body["items"].as_array().unwrap().iter().all(|l| l["kind"] != "rpm"), "{}", listed.body);
    }
}
