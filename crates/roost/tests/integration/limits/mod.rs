//! Scenarios: rate limits on API-key traffic (the org plan's `rpm`, a key's own `rpm`), in one
//! process and shared through a real Redis (127.0.0.1:6379) by several `roost serve` processes.

mod headroom;
mod leases;
mod listing;
mod rate;
mod replicas;

use roost::Client;
use roost_test_kit::{Backend, TestServer};
use serde_json::{Value, json};

/// Where the tests' Redis runs (every machine of this project has one; `.ci/run` starts it).
pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Whether the tests' Redis answers; when it does not, the Redis tests print SKIPPED and return.
pub(crate) async fn redis_up() -> bool {
    let Ok(client) = redis::Client::open(REDIS_URL) else { return false };
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    let up = matches!(tokio::time::timeout(std::time::Duration::from_secs(2), ping).await, Ok(Ok(_)));
    if !up {
        println!("{REDIS_SKIPPED}");
        eprintln!("{REDIS_SKIPPED}");
    }
    up
}

const REDIS_SKIPPED: &str = "SKIPPED: Redis does not answer at 127.0.0.1:6379 (apt-get install redis-server; redis-server --daemonize yes; .ci/run does this)";

/// Says plainly, in every run, whether the Redis half of the limits tests ran.
#[tokio::test]
async fn redis_skipped_notice() {
    if redis_up().await {
        println!("Redis: the shared rate-limit tests run against {REDIS_URL}");
    }
}

/// A Redis key prefix of this test alone, so parallel tests never share counts.
pub(crate) fn unique_prefix() -> String {
    format!("roost-test:{}:", roost_domain::IdKind::Event.generate())
}

/// Deletes every Redis key under `prefix` (the test's own).
pub(crate) async fn delete_redis_keys(prefix: &str) {
    let client = redis::Client::open(REDIS_URL).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis for cleanup");
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.expect("DEL");
    }
}

/// The Redis keys under `prefix`.
pub(crate) async fn redis_keys(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(REDIS_URL).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.expect("KEYS")
}

/// A status, the rate-limit headers and the body of one request, read with reqwest so that the
/// headers are visible.
#[derive(Debug)]
pub(crate) struct Seen {
    pub status: u16,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset: Option<u64>,
    pub retry_after: Option<u64>,
    pub body: Value,
}

/// `GET base+path` with `token`.
pub(crate) async fn get(http: &reqwest::Client, base: &str, path: &str, token: &str) -> Seen {
    let r = http.get(format!("{base}{path}")).bearer_auth(token).send().await.expect("request");
    let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let (limit, remaining, reset, retry_after) =
        (h("ratelimit-limit"), h("ratelimit-remaining"), h("ratelimit-reset"), h("retry-after"));
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    Seen { status, limit, remaining, reset, retry_after, body }
}

/// Creates a key in `ws` with `rpm`; returns its id and secret.
pub(crate) async fn key_with_rpm(owner: &Client, ws: &str, rpm: Option<i64>) -> (String, String) {
    let r = owner.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "limited", "rpm": rpm})).await.unwrap();
    assert_eq!(r.status, 201, "create key: {}", r.body);
    assert_eq!(r.body["rpm"], json!(rpm));
    (r.str("id").to_string(), r.str("secret").to_string())
}

/// Runs `scenario` on SQLite and, when `ROOST_TEST_PG` is set, on PostgreSQL, with `redis_url`.
pub(crate) async fn on_both<F, Fut>(redis_url: Option<&str>, prefix: &str, scenario: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let url = redis_url.map(str::to_string);
        let p = format!("{prefix}{backend:?}:");
        let s = TestServer::start_with(backend, |st| {
            st.redis_url = url;
            st.redis_key_prefix = p;
        })
        .await;
        match s {
            Some(s) => scenario(s).await,
            None => eprintln!("{}", roost_test_kit::SKIPPED),
        }
    }
}
