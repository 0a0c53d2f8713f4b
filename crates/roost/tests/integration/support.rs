//! Helpers shared by the scenario files: assertions on problem responses and small setup steps.

use roost::{Client, Response};
use roost_server::Clock;
use serde_json::{Value, json};

use roost_test_kit::TestServer;

/// Asserts an exact status, printing the body when it differs.
#[track_caller]
pub(crate) fn expect_status(r: &Response, status: u16) {
    assert_eq!(r.status, status, "expected {status}, got {}: {}", r.status, r.body);
}

/// Asserts a problem document: status, content type, `status` member, `code`.
#[track_caller]
pub(crate) fn expect_problem(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "expected {status} {code}, got {}: {}", r.status, r.body);
    assert!(r.content_type.starts_with("application/problem+json"), "content type `{}` for {}", r.content_type, r.body);
    assert_eq!(r.body["status"], status, "problem `status` member: {}", r.body);
    assert_eq!(r.code(), Some(code), "problem `code`: {}", r.body);
    assert!(r.body["title"].is_string() && r.body["type"].is_string(), "problem without type/title: {}", r.body);
    assert!(r.body["detail"].is_string(), "problem without detail: {}", r.body);
}

/// Asserts 422 `invalid_request` naming `field` in `errors[]`.
#[track_caller]
pub(crate) fn expect_invalid(r: &Response, field: &str) {
    expect_problem(r, 422, "invalid_request");
    let fields = field_errors(r);
    assert!(fields.iter().any(|f| f == field), "expected errors[].field == {field:?}, got {fields:?}: {}", r.body);
}

/// Asserts 403 `plan_limit` with `limit`.
#[track_caller]
pub(crate) fn expect_plan_limit(r: &Response, status: u16, limit: &str) {
    expect_problem(r, status, "plan_limit");
    assert_eq!(r.body["limit"], limit, "plan_limit `limit` member: {}", r.body);
}

/// The `errors[].field` values of a 422.
pub(crate) fn field_errors(r: &Response) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["field"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// A fresh, unique email address.
pub(crate) fn fresh_email(name: &str) -> String {
    format!("{name}-{}@example.com", roost_domain::IdKind::User.generate())
}

/// The user id of a signup body.
pub(crate) fn uid(signup: &Value) -> String {
    signup["user"]["id"].as_str().unwrap().to_string()
}

/// The email of a signup body.
pub(crate) fn email_of(signup: &Value) -> String {
    signup["user"]["email"].as_str().unwrap().to_string()
}

/// The membership of `/v1/me` for `org`.
pub(crate) fn membership<'a>(me: &'a Value, org: &str) -> Option<&'a Value> {
    me["memberships"].as_array()?.iter().find(|m| m["org_id"] == org)
}

/// Creates a workspace in `org` as `who`; returns its id.
pub(crate) async fn create_ws(who: &Client, org: &str, name: &str) -> String {
    let r = who.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": name})).await.unwrap();
    assert_eq!(r.status, 201, "create workspace failed: {}", r.body);
    r.str("id").to_string()
}

/// The server's "now" in Unix milliseconds.
pub(crate) fn now_ms(s: &TestServer) -> i64 {
    s.clock.now_ms()
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
#[track_caller]
pub(crate) fn ts_ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// Asserts `v` is a timestamp within a minute of `expected_ms`.
#[track_caller]
pub(crate) fn expect_about(v: &Value, expected_ms: i64) {
    let got = ts_ms(v);
    assert!(
        (got - expected_ms).abs() < 60_000,
        "timestamp {v} is not about {expected_ms} (off by {} ms)",
        got - expected_ms
    );
}

/// Every item of a list endpoint, following `next_cursor` with pages of `limit`.
pub(crate) async fn list_all(who: &Client, path: &str, limit: u32) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={}", encode(c)),
            None => format!("{path}{sep}limit={limit}"),
        };
        let r = who.get(&url).await.unwrap();
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        let page = r.body["items"].as_array().unwrap_or_else(|| panic!("{url}: no items: {}", r.body));
        assert!(page.len() <= limit as usize, "{url}: page larger than limit");
        items.extend(page.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert!(r.body["next_cursor"].is_null(), "{url}: next_cursor must be a string or null: {}", r.body);
                return items;
            }
        }
    }
    panic!("{path}: pagination does not end");
}

/// Percent-encodes a query value.
pub(crate) fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The personal workspace id from a signup body.
pub(crate) fn personal_ws(signup: &Value) -> String {
    signup["personal"]["workspace_id"].as_str().expect("personal workspace").to_string()
}

/// Gives `user` `role` in workspace `ws` (the caller must manage it).
pub(crate) async fn set_ws_role(c: &Client, ws: &str, user: &str, role: &str) {
    let r = c.put(&format!("/v1/workspaces/{ws}/members/{user}"), &json!({"role": role})).await.unwrap();
    assert!(r.is_success(), "workspace role {role}: {} {:?}", r.status, r.body);
}
