//! The shared limits spend leases taken from Redis (`limits/lease.rs`): the headers stay honest
//! (never more left than exists), a lowered key `rpm` bites at once, and losing Redis in the middle
//! of a lease still fails open.

use std::time::Instant;

use roost_test_kit::{Backend, TestServer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{REDIS_URL, delete_redis_keys, get, key_with_rpm, on_both, unique_prefix};

/// A key of 600 a minute through Redis, one request after the other: each answer's
/// `RateLimit-Remaining` is what is left of the minute (what Redis has not handed out, plus
/// what this process holds of its lease), one less each time, give or take what the minute
/// refilled meanwhile (one every 100 ms), never more; then lowering the key's `rpm` to 5 bites at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remaining_is_honest_and_a_lowered_rpm_bites_at_once() {
    if !super::redis_up().await {
        return;
    }
    let prefix = unique_prefix();
    on_both(Some(REDIS_URL), &prefix, |s| async move {
        let http = reqwest::Client::new();
        let (alice, _) = s.signup("Alice").await;
        // The personal org is on `free` (60 a minute): `business` has room for the key's 600.
        let (_, ws) = s.org(&alice, "Acme", "business").await;
        let (id, secret) = key_with_rpm(&alice, &ws, Some(600)).await;
        let started = Instant::now();
        for i in 0..40u64 {
            let r = get(&http, &s.base, "/v1/me", &secret).await;
            let refilled = (started.elapsed().as_millis() / 100) as u64 + 1;
            assert_eq!((r.status, r.limit), (200, Some(600)), "{r:?}");
            let left = r.remaining.unwrap();
            // Never more than exists; less only by rounding, or by what a lease left unspent when
            // it expired (a slow machine: at most one and a half leases of 10).
            assert!(left <= 599 - i + refilled && left + 16 >= 599 - i, "request {i}: {left} left: {r:?}");
        }
        // 40 requests against two limits: without leases, 80 script calls; with them, a lease of
        // 1, 2, 4, 8, then 10 (a second of 600 a minute) of the key, and 1, 2, … 32 of the org's 3000.
        let metrics = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
        let leases = metrics
            .lines()
            .find_map(|l| l.strip_prefix("roost_rate_limit_leases_total "))
            .map(|v| v.parse::<u64>().unwrap());
        assert!(leases.is_some_and(|n| (2..=30).contains(&n)), "leases asked of Redis: {leases:?}");
        let r = alice.patch(&format!("/v1/keys/{id}"), &json!({"rpm": 5})).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        // The 40 requests (and the lease's rest) took 4–6 s of the minute at 600; at 5 a minute a
        // request takes 12 s of it: at most 5 more pass, whatever the lease held.
        let (mut passed, mut refused) = (0, 0);
        for _ in 0..8 {
            let r = get(&http, &s.base, "/v1/me", &secret).await;
            assert_eq!(r.limit, Some(5), "{r:?}");
            match r.status {
                200 => passed += 1,
                429 => {
                    assert_eq!((&r.body["limit_source"], &r.body["limit"]), (&json!("key"), &json!(5)), "{r:?}");
                    let wait = r.retry_after.unwrap();
                    assert!((1..=12).contains(&wait) && r.body["reset_seconds"] == json!(wait), "{r:?}");
                    assert_eq!(r.remaining, Some(0), "{r:?}");
                    refused += 1;
                }
                _ => panic!("{r:?}"),
            }
        }
        assert!((1..=5).contains(&passed) && refused == 8 - passed, "{passed} passed after lowering the rpm to 5");
    })
    .await;
    delete_redis_keys(&prefix).await;
}

/// A TCP relay to the real Redis, which can be cut: every connection through it is closed and
/// the port refuses new ones.
struct Relay {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect("127.0.0.1:6379").await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Self { url, task }
    }

    /// Cuts it: the listener and every connection (the set of them) are dropped with the task.
    async fn cut(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Redis lost while a lease is in use: requests keep passing (the lease's rest, then this
/// process's own counts, still under the key's limit), and the failures are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_in_the_middle_of_a_lease_fails_open() {
    if !super::redis_up().await {
        return;
    }
    let prefix = unique_prefix();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let relay = Relay::start().await;
        let (url, p) = (relay.url.clone(), format!("{prefix}{backend:?}:"));
        let Some(s) = TestServer::start_with(backend, |st| {
            st.redis_url = Some(url);
            st.redis_key_prefix = p;
        })
        .await
        else {
            eprintln!("{}", roost_test_kit::SKIPPED);
            continue;
        };
        let http = reqwest::Client::new();
        let (alice, _) = s.signup("Alice").await;
        let (_, ws) = s.org(&alice, "Acme", "business").await;
        let (_, fast) = key_with_rpm(&alice, &ws, Some(600)).await;
        let (_, slow) = key_with_rpm(&alice, &ws, Some(3)).await;
        for _ in 0..30 {
            let r = get(&http, &s.base, "/v1/me", &fast).await;
            assert_eq!((r.status, r.limit), (200, Some(600)), "{r:?}");
        }
        let metrics = || async { reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap() };
        let failures = |m: &str| {
            m.lines()
                .find_map(|l| l.strip_prefix("roost_rate_limit_redis_failures_total "))
                .map_or(0, |v| v.parse::<u64>().unwrap())
        };
        assert_eq!(failures(&metrics().await), 0);
        relay.cut().await;
        for i in 0..30 {
            let r = get(&http, &s.base, "/v1/me", &fast).await;
            assert_eq!((r.status, r.limit), (200, Some(600)), "request {i} after Redis was lost: {r:?}");
            assert!(r.remaining.is_some(), "{r:?}");
        }
        // Limited in this process alone: the key's 3 a minute still holds here.
        let statuses: Vec<u16> = {
            let mut v = Vec::new();
            for _ in 0..4 {
                v.push(get(&http, &s.base, "/v1/me", &slow).await.status);
            }
            v
        };
        assert_eq!(statuses, [200, 200, 200, 429]);
        let counted = failures(&metrics().await);
        assert!(counted >= 4, "Redis failures counted: {counted}");
    }
    delete_redis_keys(&prefix).await;
}
