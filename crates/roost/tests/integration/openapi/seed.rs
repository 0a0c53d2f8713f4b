//! A server with one of everything, for the tests that drive every route: an org with a wallet
//! that has credits, a second workspace, an API key, a resource, an open hold, a webhook, an
//! invitation, a domain and a session — all of tenant A (Alice), and a tenant B (Bob) with his own.

use std::collections::HashMap;

use roost::Client;
use serde_json::{Value, json};

use roost_test_kit::TestServer;

/// Settings for a seeded server: webhook targets on loopback, and a DNS resolver that answers at
/// once (nothing listens there) so that a domain check fails fast instead of waiting on the network.
pub(crate) fn settings(s: &mut roost_server::Settings) {
    s.webhooks_allow_private = true;
    s.dns_resolver = Some("127.0.0.1:9".into());
}

/// What was made, and the clients acting in it.
pub(crate) struct Seed {
    pub alice: Client,
    pub bob: Client,
    /// An API key of Alice's org's primary workspace.
    pub key: Client,
    /// Ids by name: `org`, `ws`, `ws2`, `user`, `wallet`, `key`, `resource`, `hold`, `webhook`,
    /// `invitation`, `domain`, `session`.
    pub ids: HashMap<&'static str, String>,
}

#[track_caller]
fn id(r: &roost::Response, status: u16, what: &str) -> String {
    assert_eq!(r.status, status, "seeding {what}: {}", r.body);
    r.str("id").to_string()
}

/// Makes everything (see [`Seed`]).
pub(crate) async fn seed(s: &TestServer) -> Seed {
    let (alice, signup) = s.signup("Alice").await;
    let (bob, _) = s.signup("Bob").await;
    let (bob_org, _) = s.org(&bob, "Bobs", "team").await;
    assert!(!bob_org.is_empty());
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let mut ids: HashMap<&'static str, String> = HashMap::new();
    ids.insert("user", signup["user"]["id"].as_str().unwrap().to_string());
    let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Second"})).await.unwrap();
    ids.insert("ws2", id(&r, 201, "a workspace"));
    let r = alice
        .post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), "seed-topup", &json!({"amount": 100_000}))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "seeding a top-up: {}", r.body);
    let r = alice.get(&format!("/v1/orgs/{org}/wallets")).await.unwrap();
    ids.insert("wallet", r.body["items"][0]["id"].as_str().unwrap().to_string());
    let r = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "seed"})).await.unwrap();
    let key = alice.with_token(r.str("secret"));
    ids.insert("key", id(&r, 201, "a key"));
    let r = alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "box", "name": "r1"})).await.unwrap();
    ids.insert("resource", id(&r, 201, "a resource"));
    let r = alice
        .in_workspace(&ws)
        .post_idem("/v1/holds", "seed-hold", &json!({"amount": 5, "action": "seed"}))
        .await
        .unwrap();
    ids.insert("hold", id(&r, 201, "a hold"));
    let hook = json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]});
    let r = alice.post(&format!("/v1/orgs/{org}/webhooks"), &hook).await.unwrap();
    ids.insert("webhook", id(&r, 201, "a webhook"));
    let r = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": "carol@example.com"})).await.unwrap();
    ids.insert("invitation", id(&r, 201, "an invitation"));
    let domain = json!({"domain": "acme-contract.test", "mode": "suggest"});
    let r = alice.post(&format!("/v1/orgs/{org}/domains"), &domain).await.unwrap();
    ids.insert("domain", id(&r, 201, "a domain"));
    let r = alice.get("/v1/me/sessions").await.unwrap();
    ids.insert("session", r.body["items"][0]["id"].as_str().unwrap().to_string());
    ids.insert("org", org);
    ids.insert("ws", ws);
    Seed { alice, bob, key, ids }
}

impl Seed {
    /// The value of path parameter `name` in `path`: Alice's thing of that kind.
    pub(crate) fn param(&self, path: &str, name: &str) -> String {
        let kind = match name {
            "org" | "ws" | "user" | "wallet" => name,
            "id" if path.starts_with("/v1/keys/") => "key",
            "id" if path.starts_with("/v1/resources/") => "resource",
            "id" if path.starts_with("/v1/holds/") => "hold",
            "id" if path.starts_with("/v1/webhooks/") => "webhook",
            "id" if path.contains("/invitations/") => "invitation",
            "id" if path.contains("/domains/") => "domain",
            "id" if path.starts_with("/v1/me/sessions/") => "session",
            _ => return "unknown".into(),
        };
        self.ids.get(kind).cloned().unwrap_or_default()
    }

    /// `path` with every `{param}` filled in by [`Seed::param`].
    pub(crate) fn fill(&self, path: &str) -> String {
        let mut out = String::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
            out.push_str(&self.param(path, &rest[start + 1..end]));
            rest = &rest[(end + 1).min(rest.len())..];
        }
        out.push_str(rest);
        out
    }
}

/// The body to send to an operation: `{}` when it takes one.
pub(crate) fn empty_body(op: &Value) -> Option<Value> {
    op.get("requestBody").map(|_| json!({}))
}
