//! Scenarios: authentication, tenant isolation, hostile input, and the published contract.

mod auth;
mod bodies;
mod contract;
mod hostile;
mod tenancy;

use std::collections::BTreeMap;

use roost::{Client, Response};
use serde_json::{Value, json};

use crate::support::{expect_problem, set_ws_role, uid};
use roost_test_kit::TestServer;

/// Asserts a 422 `invalid_request` with a field-level error.
#[track_caller]
fn assert_invalid(r: &Response, field: Option<&str>) {
    expect_problem(r, 422, "invalid_request");
    let f = r.body["errors"][0]["field"].as_str();
    assert!(f.is_some_and(|f| !f.is_empty()), "errors[0].field missing: {:?}", r.body);
    assert!(r.body["errors"][0]["message"].as_str().is_some(), "errors[0].message missing: {:?}", r.body);
    if let Some(field) = field {
        assert_eq!(f, Some(field), "{:?}", r.body);
    }
}

/// Everything a tenant owns, for attacks on it.
struct Estate {
    org: String,
    ws: String,
    ws2: String,
    member: String,
    invitation: String,
    key: String,
    key_secret: String,
    resource: String,
}

/// Alice's org with a second workspace, a member (bob), a pending invitation, a key and a resource.
async fn estate(s: &TestServer, alice: &Client) -> Estate {
    let (org, ws) = s.org(alice, "Acme", "team").await;
    let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let ws2 = r.str("id").to_string();
    let (bob, b) = s.signup("Bob").await;
    s.add_member(alice, &org, &bob, &b, "member").await;
    set_ws_role(alice, &ws, &uid(&b), "member").await;
    let r = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": "pending@example.com"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let invitation = r.str("id").to_string();
    let r = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "ci"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (key, key_secret) = (r.str("id").to_string(), r.str("secret").to_string());
    let r =
        alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "app"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let resource = r.str("id").to_string();
    Estate { org, ws, ws2, member: uid(&b), invitation, key, key_secret, resource }
}

/// Checks that `e` is intact: nothing an attack tried took effect.
async fn assert_intact(s: &TestServer, alice: &Client, e: &Estate) {
    let org = alice.get(&format!("/v1/orgs/{}", e.org)).await.unwrap();
    assert_eq!(org.status, 200, "{:?}", org.body);
    assert_eq!(org.body["name"], "Acme", "{:?}", org.body);
    assert_eq!(org.body["plan"], "team", "{:?}", org.body);
    let ws = alice.get(&format!("/v1/workspaces/{}", e.ws)).await.unwrap();
    assert_eq!(ws.status, 200, "{:?}", ws.body);
    let ws2 = alice.get(&format!("/v1/workspaces/{}", e.ws2)).await.unwrap();
    assert_eq!(ws2.status, 200, "{:?}", ws2.body);
    let members = alice.get(&format!("/v1/orgs/{}/members", e.org)).await.unwrap();
    let m: BTreeMap<&str, &str> = members.body["items"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|i| Some((i["user_id"].as_str()?, i["role"].as_str()?)))
        .collect();
    assert_eq!(m.values().filter(|r| **r == "owner").count(), 1, "{:?}", members.body);
    assert_eq!(m.get(e.member.as_str()), Some(&"member"), "{:?}", members.body);
    let wm = alice.get(&format!("/v1/workspaces/{}/members", e.ws)).await.unwrap();
    assert!(
        wm.body["items"]
            .as_array()
            .expect("ws members")
            .iter()
            .any(|i| i["user_id"] == e.member.as_str() && i["role"] == "member"),
        "{:?}",
        wm.body
    );
    let inv = alice.get(&format!("/v1/orgs/{}/invitations", e.org)).await.unwrap();
    assert!(
        inv.body["items"].as_array().expect("invitations").iter().any(|i| i["id"] == e.invitation.as_str()),
        "{:?}",
        inv.body
    );
    let me = s.client.with_token(&e.key_secret).get("/v1/me").await.unwrap();
    assert_eq!(me.body["key"]["id"], e.key.as_str(), "the key stopped working: {:?}", me.body);
    let res = alice.get(&format!("/v1/workspaces/{}/resources", e.ws)).await.unwrap();
    let ids: Vec<&str> =
        res.body["items"].as_array().expect("resources").iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, [e.resource.as_str()]);
    let ws_list = alice.get(&format!("/v1/orgs/{}/workspaces", e.org)).await.unwrap();
    assert_eq!(ws_list.body["items"].as_array().map(Vec::len), Some(2), "{:?}", ws_list.body);
}

async fn org_count(c: &Client) -> Vec<Value> {
    let r = c.get("/v1/orgs").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().expect("items").clone()
}
