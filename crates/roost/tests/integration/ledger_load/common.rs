//! Setup of a tenant with many actors, concurrent firing of ledger requests, and the bookkeeping
//! checks run straight against the database.

use std::collections::HashSet;
use std::sync::Arc;

use roost::{Client, Response};
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::support::{expect_status, list_all};

/// The `action` of every charge and hold of this suite.
pub const ACTION: &str = "load.test";

/// Someone who charges: an API key, or a user acting in a workspace (`Roost-Workspace`).
#[derive(Debug, Clone)]
pub enum Actor {
    Key { id: String, secret: String, ws: String },
    User { id: String, token: String, ws: String },
}

impl Actor {
    /// A client acting as this actor, made from `anon` (an unauthenticated client of one server;
    /// clients made from it share its connection pool, which opens a connection per request in
    /// flight).
    pub fn client(&self, anon: &Client) -> Client {
        match self {
            Actor::Key { secret, .. } => anon.with_token(secret),
            Actor::User { token, ws, .. } => anon.with_token(token).in_workspace(ws),
        }
    }

    pub fn ws(&self) -> &str {
        match self {
            Actor::Key { ws, .. } | Actor::User { ws, .. } => ws,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Actor::Key { id, .. } | Actor::User { id, .. } => id,
        }
    }

    /// `key` or `user`, as charges record it.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Key { .. } => "key",
            Actor::User { .. } => "user",
        }
    }
}

/// An org on `business` (5,000 monthly credits, unlimited seats) with two workspaces; `users[0]` is
/// the owner, the others are org members with the `member` role in both workspaces.
pub struct Tenant {
    pub owner: Client,
    pub org: String,
    pub ws: [String; 2],
    /// `(user id, token)`.
    pub users: Vec<(String, String)>,
}

/// Signs a user up through `anon` (an unauthenticated client).
pub async fn signup(anon: &Client, name: &str) -> (Client, Value) {
    let email = format!("{}-{}@example.com", name.to_lowercase(), roost_domain::IdKind::User.generate());
    let r = anon
        .post("/v1/signup", &json!({"email": email, "password": "correct horse battery", "name": name}))
        .await
        .unwrap();
    expect_status(&r, 201);
    (anon.with_token(r.str("token")), r.body)
}

/// Builds a [`Tenant`] with `members` members besides the owner.
pub async fn tenant(anon: &Client, members: usize) -> Tenant {
    let (owner, su) = signup(anon, "Owner").await;
    let r = owner.post("/v1/orgs", &json!({"name": "Load Co", "plan": "business"})).await.unwrap();
    expect_status(&r, 201);
    let org = r.body["org"]["id"].as_str().unwrap().to_string();
    let ws1 = r.body["workspace"]["id"].as_str().unwrap().to_string();
    let r = owner.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "second"})).await.unwrap();
    expect_status(&r, 201);
    let ws2 = r.str("id").to_string();
    let mut users = vec![(su["user"]["id"].as_str().unwrap().to_string(), owner.token().unwrap().to_string())];
    for i in 0..members {
        let (m, msu) = signup(anon, &format!("Member{i}")).await;
        let email = msu["user"]["email"].as_str().unwrap();
        let inv = owner.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": email, "role": "member"})).await;
        let inv = inv.unwrap();
        expect_status(&inv, 201);
        let acc = m.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.unwrap();
        expect_status(&acc, 200);
        let user_id = msu["user"]["id"].as_str().unwrap().to_string();
        for ws in [&ws1, &ws2] {
            let r = owner.put(&format!("/v1/workspaces/{ws}/members/{user_id}"), &json!({"role": "member"})).await;
            let r = r.unwrap();
            assert!(r.is_success(), "workspace role: {} {}", r.status, r.body);
        }
        users.push((user_id, m.token().unwrap().to_string()));
    }
    Tenant { owner, org, ws: [ws1, ws2], users }
}

impl Tenant {
    /// A client acting as user `i` (0 = the owner), made from `anon`.
    pub fn user_client(&self, anon: &Client, i: usize) -> Client {
        anon.with_token(&self.users[i].1)
    }

    /// Creates an API key in `ws`, made by user `by`, with an optional per-cycle `spend_limit`.
    pub async fn key(&self, anon: &Client, by: usize, ws: &str, spend_limit: Option<i64>) -> Actor {
        let mut body = json!({"name": format!("load key {}", roost_domain::IdKind::Event.generate())});
        if let Some(l) = spend_limit {
            body["spend_limit"] = l.into();
        }
        let r = self.user_client(anon, by).post(&format!("/v1/workspaces/{ws}/keys"), &body).await.unwrap();
        expect_status(&r, 201);
        assert_eq!(r.body["workspace_id"], ws, "{}", r.body);
        Actor::Key { id: r.str("id").to_string(), secret: r.str("secret").to_string(), ws: ws.to_string() }
    }

    /// `keys` API keys (made by the users in turn) and `user_slots` user actors (the users in turn),
    /// spread over the workspaces in `wss`.
    pub async fn actors(&self, anon: &Client, keys: usize, user_slots: usize, wss: &[&str]) -> Vec<Actor> {
        let mut out = Vec::with_capacity(keys + user_slots);
        for i in 0..keys {
            out.push(self.key(anon, i % self.users.len(), wss[i % wss.len()], None).await);
        }
        for i in 0..user_slots {
            let (id, token) = &self.users[i % self.users.len()];
            let ws = wss[(i / self.users.len()) % wss.len()];
            out.push(Actor::User { id: id.clone(), token: token.clone(), ws: ws.to_string() });
        }
        out
    }

    /// The credits wallet, as the owner reads it.
    pub async fn wallet(&self) -> Value {
        wallet_of(&self.owner, &self.org).await
    }

    /// Every journal entry of the org (charges, grants, expiries, adjustments), newest first.
    pub async fn journal(&self) -> Vec<Value> {
        list_all(&self.owner, &format!("/v1/orgs/{}/transactions", self.org), 500).await
    }

    /// Brings the credits wallet's `available` to exactly `target`: a top-up of 100 (so the pool
    /// spans two grants, the allocation and a never-expiring top-up), then a debit adjustment of
    /// what is too much (or a top-up of what is missing).
    pub async fn set_available(&self, target: i64) {
        let org = &self.org;
        let before = self.wallet().await;
        let r = self
            .owner
            .post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &idem_key("topup"), &json!({"amount": 100}))
            .await
            .unwrap();
        expect_status(&r, 201);
        assert_eq!(
            (r.body["grant"]["source"].as_str(), r.body["grant"]["amount"].as_i64()),
            (Some("topup"), Some(100))
        );
        let available = before["available"].as_i64().unwrap() + 100;
        let delta = target - available;
        if delta < 0 {
            let r = self
                .owner
                .post_idem(
                    &format!("/v1/orgs/{org}/wallets/credits/adjustments"),
                    &idem_key("adjust"),
                    &json!({"amount": delta, "reason": "load test: exact pool"}),
                )
                .await
                .unwrap();
            expect_status(&r, 201);
            assert_eq!(r.body["adjustment"]["amount"], -delta, "{}", r.body);
        } else if delta > 0 {
            let r = self
                .owner
                .post_idem(
                    &format!("/v1/orgs/{org}/wallets/credits/topups"),
                    &idem_key("topup"),
                    &json!({"amount": delta}),
                )
                .await
                .unwrap();
            expect_status(&r, 201);
        }
        let w = self.wallet().await;
        assert_eq!(
            (w["available"].as_i64(), w["balance"].as_i64(), w["held"].as_i64()),
            (Some(target), Some(target), Some(0)),
            "{w}"
        );
    }
}

/// The credits wallet of `org`.
pub async fn wallet_of(c: &Client, org: &str) -> Value {
    let r = c.get(&format!("/v1/orgs/{org}/wallets")).await.unwrap();
    expect_status(&r, 200);
    r.body["items"].as_array().unwrap().iter().find(|w| w["kind"] == "credits").cloned().expect("a credits wallet")
}

/// A fresh Idempotency-Key.
pub fn idem_key(tag: &str) -> String {
    format!("{tag}-{}", roost_domain::IdKind::Event.generate())
}

/// A JSON integer field.
#[track_caller]
pub fn int(v: &Value, field: &str) -> i64 {
    v[field].as_i64().unwrap_or_else(|| panic!("`{field}` is not an integer in {v}"))
}

/// What a client got before its first refusal.
pub struct Run {
    pub accepted: Vec<Value>,
    pub refusal: Response,
}

/// A request a racer keeps firing: `POST path` with `body`, a fresh Idempotency-Key each time.
#[derive(Clone)]
pub struct Fire {
    pub path: &'static str,
    pub body: Value,
}

impl Fire {
    pub fn charge(amount: i64) -> Self {
        Self { path: "/v1/charges", body: json!({"amount": amount, "action": ACTION}) }
    }

    pub fn hold(amount: i64) -> Self {
        Self { path: "/v1/holds", body: json!({"amount": amount, "action": ACTION, "ttl_seconds": 600}) }
    }
}

/// Starts every client at once (a barrier) and lets each fire its request until the first answer
/// that is not 201. Returns the runs in the order of `racers`.
pub async fn race(racers: Vec<(Client, Fire)>) -> Vec<Run> {
    let barrier = Arc::new(Barrier::new(racers.len()));
    let mut set = JoinSet::new();
    for (i, (c, fire)) in racers.into_iter().enumerate() {
        let barrier = barrier.clone();
        set.spawn(async move {
            let tag = idem_key(&format!("race{i}"));
            barrier.wait().await;
            let mut accepted = Vec::new();
            for n in 0..10_000 {
                let r = c.post_idem(fire.path, &format!("{tag}-{n}"), &fire.body).await.expect("the server answers");
                if r.status != 201 {
                    return (i, Run { accepted, refusal: r });
                }
                accepted.push(r.body);
            }
            panic!("racer {i} was never refused");
        });
    }
    let mut runs: Vec<Option<Run>> = Vec::new();
    runs.resize_with(set.len(), || None);
    while let Some(done) = set.join_next().await {
        let (i, run) = done.expect("racer panicked");
        runs[i] = Some(run);
    }
    runs.into_iter().map(|r| r.expect("every racer reports")).collect()
}

/// Asserts that `ids` holds no duplicate, and returns them as a set.
#[track_caller]
pub fn distinct(ids: impl IntoIterator<Item = String>, what: &str) -> HashSet<String> {
    let mut set = HashSet::new();
    for id in ids {
        assert!(set.insert(id.clone()), "{what}: {id} appears twice");
    }
    set
}
