//! Setup of a tenant with many actors, concurrent firing of ledger requests, and the bookkeeping
//! checks run straight against the database.

use std::collections::{HashMap, HashSet};
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

/// The ledger of one org as stored, after every bookkeeping rule was checked.
#[derive(Debug)]
pub struct Db {
    pub wallet_id: String,
    pub balance: i64,
    pub held: i64,
    pub granted: i64,
    pub charged: i64,
    pub expired: i64,
    /// `(id, amount, workspace_id)` of every `charge` entry.
    pub charges: Vec<(String, i64, String)>,
    /// `(id, amount, status)` of every hold.
    pub holds: Vec<(String, i64, String)>,
    /// Idempotency-Key → (status, stored response).
    pub idempotency: HashMap<String, (i64, Value)>,
}

type EntryTuple = (String, String, i64, String, String, String, String);
type HoldTuple = (String, String, String, String, i64, String, String);

fn decode_splits(s: &str) -> Vec<(String, i64)> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (g, a) = p.split_once(':').unwrap_or_else(|| panic!("bad splits {s:?}"));
            (g.to_string(), a.parse().unwrap_or_else(|_| panic!("bad splits {s:?}")))
        })
        .collect()
}

/// Reads the credits wallet of `org` from the database at `url` and checks:
/// - `granted − charged − expired = balance`, `0 ≤ held ≤ balance`;
/// - `balance = Σ remaining + Σ reserved` over the wallet's grants, `held = Σ reserved = Σ open holds`;
/// - the journal: `granted = Σ grant entries`, `charged = Σ charge + adjustment entries`,
///   `expired = Σ expiry entries`;
/// - every grant: `amount = remaining + reserved + charged from it + expired`, where "charged from
///   it" is what the charge and adjustment splits name it for, and its `expired` is what expiry
///   entries name; every charge's splits add up to its amount; the open holds' splits add up to
///   each grant's `reserved`;
/// - the budget counters: per workspace, member and key, Σ `used` over cycles = Σ charges +
///   Σ open holds of that subject.
pub async fn invariants(url: &str, org: &str) -> Db {
    let store = roost_store::Store::connect(url).await.expect("connect to the test database");
    let pool = store.pool();
    let (wallet_id, balance, held, granted, charged, expired): (String, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT id, balance, held, granted, charged, expired FROM wallets WHERE org_id = $1 AND kind = 'credits'",
    )
    .bind(org)
    .fetch_one(pool)
    .await
    .expect("the credits wallet row");
    let grants: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, amount, remaining, reserved, expired FROM grants WHERE org_id = $1 AND wallet_id = $2",
    )
    .bind(org)
    .bind(&wallet_id)
    .fetch_all(pool)
    .await
    .unwrap();
    let entries: Vec<EntryTuple> = sqlx::query_as(
        "SELECT id, type, amount, workspace_id, member_id, key_id, splits FROM ledger_entries WHERE org_id = $1 AND wallet_id = $2",
    )
    .bind(org)
    .bind(&wallet_id)
    .fetch_all(pool)
    .await
    .unwrap();
    let holds: Vec<HoldTuple> = sqlx::query_as(
        "SELECT id, workspace_id, member_id, key_id, amount, status, splits FROM holds WHERE org_id = $1 AND wallet_id = $2",
    )
    .bind(org)
    .bind(&wallet_id)
    .fetch_all(pool)
    .await
    .unwrap();
    let usage: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT scope, subject, used FROM budget_usage WHERE org_id = $1")
            .bind(org)
            .fetch_all(pool)
            .await
            .unwrap();
    let mut idem: Vec<(String, String)> = sqlx::query_as("SELECT key, response FROM idempotency WHERE org_id = $1")
        .bind(org)
        .fetch_all(pool)
        .await
        .unwrap();
    // A charge answered with success keeps its key on its journal entry: present it as the record
    // naming that entry.
    let on_entries: Vec<(String, String)> =
        sqlx::query_as("SELECT idem_key, id FROM ledger_entries WHERE org_id = $1 AND idem_key IS NOT NULL")
            .bind(org)
            .fetch_all(pool)
            .await
            .unwrap();
    idem.extend(on_entries.into_iter().map(|(k, id)| (k, json!({ "$entry": id }).to_string())));
    // The engine keeps outcomes and refusals, not HTTP bodies: read each record as the status the
    // API answers it with (a record naming a journal entry is a charge, 201).
    let idem: Vec<(String, i64, String)> = idem
        .into_iter()
        .map(|(k, r)| {
            let v: Value = serde_json::from_str(&r).unwrap_or_default();
            let status = match (v.get("$entry"), v["refused"]["refusal"].as_str()) {
                (Some(_), _) => 201,
                (None, Some("insufficient_credits")) => 402,
                (None, Some("budget_exceeded" | "forbidden")) => 403,
                (None, Some("not_found")) => 404,
                (None, Some("hold_closed" | "idempotency_conflict")) => 409,
                (None, Some(_)) => 422,
                (None, None) => match v["ok"]["outcome"].as_str() {
                    Some("held" | "granted" | "debited") => 201,
                    _ => 200,
                },
            };
            (k, status, r)
        })
        .collect();
    store.close().await;

    let ctx = format!("org {org}, wallet {wallet_id}");
    assert_eq!(granted - charged - expired, balance, "granted − charged − expired ≠ balance ({ctx})");
    assert!(0 <= held && held <= balance, "held {held} outside 0..=balance {balance} ({ctx})");
    let remaining: i64 = grants.iter().map(|g| g.2).sum();
    let reserved: i64 = grants.iter().map(|g| g.3).sum();
    assert!(grants.iter().all(|g| g.2 >= 0 && g.3 >= 0 && g.4 >= 0), "a grant went negative: {grants:?}");
    assert_eq!(remaining + reserved, balance, "Σ remaining + Σ reserved ≠ balance ({ctx})");
    let open: Vec<&HoldTuple> = holds.iter().filter(|h| h.5 == "open").collect();
    assert_eq!(open.iter().map(|h| h.4).sum::<i64>(), held, "Σ open holds ≠ held ({ctx})");
    assert_eq!(reserved, held, "Σ reserved ≠ held ({ctx})");

    let sum_of = |kinds: &[&str]| entries.iter().filter(|e| kinds.contains(&e.1.as_str())).map(|e| e.2).sum::<i64>();
    assert_eq!(sum_of(&["grant"]), granted, "Σ grant entries ≠ granted ({ctx})");
    assert_eq!(sum_of(&["charge", "adjustment"]), charged, "Σ charge and adjustment entries ≠ charged ({ctx})");
    assert_eq!(sum_of(&["expiry"]), expired, "Σ expiry entries ≠ expired ({ctx})");
    let mut drawn: HashMap<String, i64> = HashMap::new();
    let mut expired_from: HashMap<String, i64> = HashMap::new();
    for e in &entries {
        let parts = decode_splits(&e.6);
        match e.1.as_str() {
            "charge" | "adjustment" => {
                assert_eq!(
                    parts.iter().map(|p| p.1).sum::<i64>(),
                    e.2,
                    "splits of {} do not add up to its amount",
                    e.0
                );
                for (g, a) in parts {
                    *drawn.entry(g).or_default() += a;
                }
            }
            "expiry" => {
                for (g, a) in parts {
                    *expired_from.entry(g).or_default() += a;
                }
            }
            _ => {}
        }
    }
    let mut reserved_by_holds: HashMap<String, i64> = HashMap::new();
    for h in &open {
        let parts = decode_splits(&h.6);
        assert_eq!(parts.iter().map(|p| p.1).sum::<i64>(), h.4, "splits of hold {} do not add up to its amount", h.0);
        for (g, a) in parts {
            *reserved_by_holds.entry(g).or_default() += a;
        }
    }
    for (id, amount, remaining, reserved, g_expired) in &grants {
        let from = drawn.get(id).copied().unwrap_or(0);
        assert_eq!(
            remaining + reserved + from + g_expired,
            *amount,
            "grant {id}: remaining {remaining} + reserved {reserved} + charged {from} + expired {g_expired} ≠ amount {amount}"
        );
        assert_eq!(*g_expired, expired_from.get(id).copied().unwrap_or(0), "grant {id}: expired ≠ its expiry entries");
        assert_eq!(*reserved, reserved_by_holds.get(id).copied().unwrap_or(0), "grant {id}: reserved ≠ its open holds");
    }

    // Budget counters: what the journal and the open holds say each subject drew.
    let mut expect: HashMap<(String, String), i64> = HashMap::new();
    let mut add = |ws: &str, member: &str, key: &str, amount: i64| {
        *expect.entry(("workspace".into(), ws.into())).or_default() += amount;
        if !member.is_empty() {
            *expect.entry(("member".into(), format!("{ws}:{member}"))).or_default() += amount;
        }
        if !key.is_empty() {
            *expect.entry(("key".into(), key.into())).or_default() += amount;
        }
    };
    for e in entries.iter().filter(|e| e.1 == "charge") {
        add(&e.3, &e.4, &e.5, e.2);
    }
    for h in &open {
        add(&h.1, &h.2, &h.3, h.4);
    }
    let mut stored: HashMap<(String, String), i64> = HashMap::new();
    for (scope, subject, used) in usage {
        *stored.entry((scope, subject)).or_default() += used;
    }
    stored.retain(|_, v| *v != 0);
    assert_eq!(stored, expect, "budget counters ≠ charges + open holds ({ctx})");

    Db {
        wallet_id,
        balance,
        held,
        granted,
        charged,
        expired,
        charges: entries.iter().filter(|e| e.1 == "charge").map(|e| (e.0.clone(), e.2, e.3.clone())).collect(),
        holds: holds.iter().map(|h| (h.0.clone(), h.4, h.5.clone())).collect(),
        idempotency: idem
            .into_iter()
            .map(|(k, s, r)| (k, (s, serde_json::from_str(&r).expect("a stored response is JSON"))))
            .collect(),
    }
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
