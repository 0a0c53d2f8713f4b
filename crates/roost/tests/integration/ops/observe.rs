//! What operators see: `/metrics` (checked by `promtool`), `/readyz`, request ids, the access log,
//! JSON logs, and the client's address through trusted proxies only.

use std::time::Duration;

use roost_test_kit::TestServer;
use serde_json::json;

/// The value of the sample whose line starts with `prefix` (name and labels), if present.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

async fn scrape(s: &TestServer) -> String {
    let r = reqwest::get(format!("{}/metrics", s.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    r.text().await.unwrap()
}

/// `promtool check metrics` on `text`, or `None` (with a SKIPPED line) when promtool is absent.
fn promtool(text: &str) -> Option<String> {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        println!("SKIPPED: promtool is not installed (Debian: apt-get install prometheus); metrics not linted");
        return None;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stderr).to_string())
}

async fn metrics_move_with_traffic(s: TestServer) {
    let before = scrape(&s).await;
    let (owner, _) = s.signup("metrics").await;
    for i in 0..3 {
        let r = owner.post_idem("/v1/charges", &format!("m-{i}"), &json!({"amount": 1, "action": "a"})).await.unwrap();
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let r = owner.post_idem("/v1/charges", "m-big", &json!({"amount": 1_000_000, "action": "a"})).await.unwrap();
    assert_eq!(r.code(), Some("insufficient_credits"));
    let _ = owner.get("/v1/orgs/org_01jd0000000000000000000000").await.unwrap();
    let after = scrape(&s).await;
    let charges_ok = r#"roost_ledger_commands_total{op="charge",outcome="ok"}"#;
    assert_eq!(sample(&before, charges_ok), None);
    assert_eq!(sample(&after, charges_ok), Some(3.0), "{after}");
    assert_eq!(sample(&after, r#"roost_ledger_commands_total{op="charge",outcome="insufficient_credits"}"#), Some(1.0));
    // By route template, not by path: the org id is not a label.
    let not_found = r#"roost_http_requests_total{route="/v1/orgs/{org}",method="GET",status="404"}"#;
    assert_eq!(sample(&after, not_found), Some(1.0), "{after}");
    assert!(
        sample(&after, r#"roost_http_requests_total{route="/v1/charges",method="POST",status="201"}"#) == Some(3.0)
    );
    assert!(
        sample(&after, r#"roost_http_request_duration_seconds_count{route="/v1/charges",method="POST"}"#)
            .is_some_and(|n| n >= 4.0),
        "{after}"
    );
    assert!(sample(&after, "roost_ledger_batches_total ").is_some_and(|n| n >= 1.0), "{after}");
    assert_eq!(sample(&after, "roost_ledger_queue_depth "), Some(0.0), "{after}");
    assert!(sample(&after, "roost_db_pool_max_connections ").is_some_and(|n| n >= 1.0), "{after}");
    assert!(after.contains("# HELP roost_http_requests_total"), "{after}");
    let _ = promtool(&after);
}

fn no_metrics(s: &mut roost_server::Settings) {
    s.metrics = false;
}

async fn metrics_can_be_switched_off(s: TestServer) {
    let r = s.client.get("/metrics").await.unwrap();
    assert_eq!((r.status, r.code()), (404, Some("not_found")));
}

async fn readyz_reports_each_check(s: TestServer) {
    let r = s.client.get("/readyz").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({"status": "ready", "checks": {"database": "ok", "migrations": "ok", "ledger": "ok"}}));
    // A database migrated past what this build knows: not ready, naming the check.
    let store = roost_store::Store::connect(&s.admin_url).await.unwrap();
    sqlx::query("INSERT INTO roost_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
        .execute(store.pool())
        .await
        .unwrap();
    let r = s.client.get("/readyz").await.unwrap();
    assert_eq!((r.status, r.code()), (503, Some("not_ready")), "{:?}", r.body);
    assert_eq!(r.body["check"], "migrations");
    assert_eq!(r.body["checks"]["database"], "ok");
    store.close().await;
}

async fn request_ids_are_echoed_or_made(s: TestServer) {
    let http = reqwest::Client::new();
    let r = http.get(format!("{}/healthz", s.base)).header("x-request-id", "abc-123.X_y").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123.X_y");
    for insane in ["", "has space", &"x".repeat(129), "semi;colon"] {
        let r = http.get(format!("{}/v1/plans", s.base)).header("x-request-id", insane).send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(id, insane);
        assert_eq!(id.len(), 32, "a generated id: {id}");
    }
    let a = http.get(format!("{}/nope", s.base)).send().await.unwrap();
    let b = http.get(format!("{}/nope", s.base)).send().await.unwrap();
    assert_eq!(a.status(), 404);
    assert_ne!(a.headers()["x-request-id"], b.headers()["x-request-id"]);
}

fn trust_loopback(s: &mut roost_server::Settings) {
    s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// The audit `ip` of the org created with `xff` (or none) by a fresh user.
async fn audit_ip(s: &TestServer, xff: Option<&str>) -> String {
    let (alice, _) = s.signup(&format!("ip{}", roost_domain::IdKind::Event.generate())).await;
    let c = match xff {
        Some(v) => alice.with_header("x-forwarded-for", v),
        None => alice.clone(),
    };
    let r = c.post("/v1/orgs", &json!({"name": "Behind a proxy", "plan": "team"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let org = r.body["org"]["id"].as_str().unwrap().to_string();
    let r = alice.get(&format!("/v1/orgs/{org}/audit")).await.unwrap();
    let created = r.body["items"].as_array().unwrap().iter().find(|e| e["action"] == "org.created").cloned();
    created.unwrap_or_else(|| panic!("no org.created in {:?}", r.body))["ip"].as_str().unwrap_or_default().to_string()
}

async fn forwarded_for_counts_through_a_trusted_proxy(s: TestServer) {
    assert_eq!(audit_ip(&s, None).await, "127.0.0.1");
    assert_eq!(audit_ip(&s, Some("6.6.6.6, 198.51.100.7")).await, "198.51.100.7");
}

async fn forwarded_for_is_ignored_from_anyone_else(s: TestServer) {
    assert_eq!(audit_ip(&s, Some("198.51.100.7")).await, "127.0.0.1");
}

both_backends!(
    metrics_move_with_traffic,
    readyz_reports_each_check,
    request_ids_are_echoed_or_made,
    forwarded_for_is_ignored_from_anyone_else
);
both_backends_with!(
    metrics_can_be_switched_off => super::no_metrics,
    forwarded_for_counts_through_a_trusted_proxy => super::trust_loopback,
);

/// The real binary with its stderr in a file (not a terminal): JSON lines, no colour codes, an
/// access line per request carrying the request id, which every line of that request carries.
#[tokio::test]
async fn logs_are_json_lines_with_the_request_id() {
    let db = roost_test_kit::FreshDatabase::sqlite();
    let server = roost_test_kit::process::Roost::start_logging(crate::ROOST, db.url(), "info").await;
    let http = reqwest::Client::new();
    let r = http.get(format!("{}/v1/plans", server.base)).header("x-request-id", "trace-me-1").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(format!("{}/v1/orgs", server.base)).header("x-request-id", "trace-me-2").send().await.unwrap();
    assert_eq!(r.status(), 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(!log.contains('\u{1b}'), "colour codes in a log file: {log}");
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let access: Vec<_> = lines.iter().filter(|l| l["fields"]["message"] == "request").collect();
    let one = access.iter().find(|l| l["span"]["id"] == "trace-me-1").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(one["level"], "INFO");
    assert_eq!(one["fields"]["status"], 200);
    assert_eq!(one["span"]["route"], "/v1/plans");
    let two = access.iter().find(|l| l["span"]["id"] == "trace-me-2").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(two["fields"]["status"], 401);
}
