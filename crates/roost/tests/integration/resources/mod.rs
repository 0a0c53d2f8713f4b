//! Scenarios: resources — creation, quotas, deletion, transfer between workspaces, and tenancy.

mod lifecycle;
mod transfers;

use roost::{Client, Response};
use serde_json::{Value, json};

/// Creates a resource; returns the 201 body.
async fn create(c: &Client, ws: &str, kind: &str, name: &str) -> Value {
    let r = c.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": kind, "name": name})).await.unwrap();
    assert_eq!(r.status, 201, "create {kind} {name}: {:?}", r.body);
    r.body
}

/// The ids of a workspace's resources, as `c` lists them.
async fn listed(c: &Client, ws: &str) -> Vec<String> {
    let r = c.get(&format!("/v1/workspaces/{ws}/resources")).await.unwrap();
    assert_eq!(r.status, 200, "list resources: {:?}", r.body);
    r.body["items"].as_array().expect("items").iter().filter_map(|i| i["id"].as_str().map(str::to_string)).collect()
}

async fn transfer(c: &Client, res: &str, to: &str) -> Response {
    c.post(&format!("/v1/resources/{res}/transfer"), &json!({"workspace_id": to})).await.unwrap()
}
