//! Regression tests for defects found in review: membership changes racing key creation, demotions
//! that must take keys away, replica cache invalidation across a dropped `LISTEN` connection, plan
//! changes under concurrency, deletion racing creation, concurrent rotation and revocation, hostile
//! bytes in input, and 404s that must not tell another tenant's ids from missing ones.
//!
//! Races are made as likely as we can (many clients at once, several rounds), but every assertion
//! is about the final state and holds whatever the interleaving was.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use roost::{Client, Response};
use roost_domain::IdKind;
use serde_json::{Value, json};

use crate::support::{
    create_ws, expect_invalid, expect_plan_limit, expect_problem, expect_status, list_all, membership, personal_ws,
    set_ws_role, uid,
};
use roost_test_kit::TestServer;

/// Creates a key in `ws`; returns the whole 201 body.
async fn create_key(c: &Client, ws: &str, name: &str) -> Value {
    let r = c.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": name})).await.unwrap();
    assert_eq!(r.status, 201, "create key in {ws}: {}", r.body);
    r.body
}

/// A client on `s` acting with the secret of a key body.
fn key_client(s: &TestServer, key: &Value) -> Client {
    s.client.with_token(key["secret"].as_str().expect("secret"))
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Asserts that `c` authenticates as key `key_id`.
async fn assert_key_works(c: &Client, key_id: &str) {
    let me = c.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 200, "key {key_id} should work: {}", me.body);
    assert_eq!(me.body["key"]["id"], key_id, "{}", me.body);
}

/// Asserts that `c` gets 401 `unauthenticated` on `GET /v1/me`.
async fn assert_unauthenticated(c: &Client, what: &str) {
    let me = c.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 401, "{what}: GET /v1/me should be 401, got {}: {}", me.status, me.body);
    expect_problem(&me, 401, "unauthenticated");
}

/// Every `key.revoked` event of `org`, as `who` sees it.
async fn revoked_events(who: &Client, org: &str) -> Vec<Value> {
    list_all(who, &format!("/v1/orgs/{org}/audit?action=key.revoked"), 500).await
}

/// The `key.revoked` events whose target is `key_id`.
fn revocations_of<'a>(events: &'a [Value], key_id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["target"]["type"] == "key" && e["target"]["id"] == key_id).collect()
}

/// Waits until `counter` reaches `n`, for at most `within` (never fails: it only times a race).
async fn wait_for(counter: &AtomicUsize, n: usize, within: Duration) {
    let start = Instant::now();
    while counter.load(Ordering::SeqCst) < n && start.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Asserts an answer is a clean refusal: a 4xx problem document, never a 5xx.
#[track_caller]
fn expect_clean_refusal(r: &Response, what: &str) {
    assert!((400..500).contains(&r.status), "{what}: expected a 4xx refusal, got {}: {}", r.status, r.body);
    assert!(r.content_type.starts_with("application/problem+json"), "{what}: content type `{}`", r.content_type);
    assert_eq!(r.body["status"], r.status, "{what}: {}", r.body);
}

// 1. ------------------------------------------------------------------------------------------------

/// A member removed from the org while they are creating keys keeps none that work: every key
/// they got back is 401 once the removal has returned, and cannot create resources.
async fn removal_racing_key_creation_leaves_no_working_key(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    for round in 0..3 {
        let (bob, b) = s.signup(&format!("Bob{round}")).await;
        let bob_id = uid(&b);
        s.add_member(&alice, &org, &bob, &b, "member").await;
        set_ws_role(&alice, &ws, &bob_id, "member").await;

        let created = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for t in 0..12 {
            let (bob, ws, created) = (bob.clone(), ws.clone(), created.clone());
            tasks.push(tokio::spawn(async move {
                let mut keys = Vec::new();
                for i in 0..20 {
                    let r = bob
                        .post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": format!("k{t}-{i}")}))
                        .await
                        .unwrap();
                    if r.status != 201 {
                        expect_clean_refusal(&r, "key creation after removal");
                        break;
                    }
                    created.fetch_add(1, Ordering::SeqCst);
                    keys.push(r.body);
                }
                keys
            }));
        }
        // Remove bob while his creations are in flight.
        wait_for(&created, 4, Duration::from_secs(10)).await;
        let r = alice.delete(&format!("/v1/orgs/{org}/members/{bob_id}")).await.unwrap();
        expect_status(&r, 204);

        let mut keys = Vec::new();
        for t in tasks {
            keys.extend(t.await.unwrap());
        }
        for k in &keys {
            let id = id_of(k);
            let c = key_client(&s, k);
            assert_unauthenticated(&c, &format!("round {round}: key {id} created by a removed member")).await;
            let r = c
                .post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "after removal"}))
                .await
                .unwrap();
            assert_eq!(r.status, 401, "round {round}: key {id} of a removed member created a resource: {}", r.body);
        }
        let listed = list_all(&alice, &format!("/v1/workspaces/{ws}/keys"), 500).await;
        let ids: Vec<String> = keys.iter().map(id_of).collect();
        let alive: Vec<&Value> = listed.iter().filter(|k| ids.iter().any(|id| k["id"] == id.as_str())).collect();
        assert!(alive.is_empty(), "round {round}: keys of a removed member are still listed: {alive:?}");
        let bobs: Vec<&Value> = listed.iter().filter(|k| k["created_by"] == bob_id.as_str()).collect();
        assert!(bobs.is_empty(), "round {round}: keys created by a removed member are still listed: {bobs:?}");
    }
}

// 2. ------------------------------------------------------------------------------------------------

/// An org admin demoted to `member` loses the keys they made in workspaces they can no longer
/// enter; keys where they are a workspace member or admin keep working.
async fn demoted_admin_loses_keys_where_they_lose_access(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    let ws_member = create_ws(&alice, &org, "Member here").await;
    let ws_admin = create_ws(&alice, &org, "Admin here").await;
    let (bob, b) = s.signup("Bob").await;
    let bob_id = uid(&b);
    s.add_member(&alice, &org, &bob, &b, "admin").await;
    set_ws_role(&alice, &ws_member, &bob_id, "member").await;
    set_ws_role(&alice, &ws_admin, &bob_id, "admin").await;

    // Bob was never added to the primary workspace: he entered it as an org admin only.
    let lost = create_key(&bob, &primary, "primary").await;
    let kept_member = create_key(&bob, &ws_member, "as member").await;
    let kept_admin = create_key(&bob, &ws_admin, "as admin").await;
    let alices = create_key(&alice, &primary, "alice's").await;
    for k in [&lost, &kept_member, &kept_admin, &alices] {
        // Twice: certainly cached.
        assert_key_works(&key_client(&s, k), &id_of(k)).await;
        assert_key_works(&key_client(&s, k), &id_of(k)).await;
    }

    let r = alice.patch(&format!("/v1/orgs/{org}/members/{bob_id}"), &json!({"role": "member"})).await.unwrap();
    assert!(r.is_success(), "demote: {} {}", r.status, r.body);
    expect_problem(&bob.get(&format!("/v1/workspaces/{primary}")).await.unwrap(), 404, "not_found");

    let lk = key_client(&s, &lost);
    assert_unauthenticated(&lk, "key in a workspace the demoted admin can no longer enter").await;
    let r = lk
        .post(&format!("/v1/workspaces/{primary}/resources"), &json!({"kind": "app", "name": "after demotion"}))
        .await
        .unwrap();
    expect_problem(&r, 401, "unauthenticated");
    assert_key_works(&key_client(&s, &kept_member), &id_of(&kept_member)).await;
    assert_key_works(&key_client(&s, &kept_admin), &id_of(&kept_admin)).await;
    assert_key_works(&key_client(&s, &alices), &id_of(&alices)).await;

    let events = revoked_events(&alice, &org).await;
    let of_lost = revocations_of(&events, &id_of(&lost));
    assert_eq!(of_lost.len(), 1, "one key.revoked for the lost key: {events:?}");
    assert_eq!(of_lost[0]["workspace_id"], primary.as_str(), "{:?}", of_lost[0]);
    for kept in [&kept_member, &kept_admin, &alices] {
        assert!(revocations_of(&events, &id_of(kept)).is_empty(), "a kept key was revoked: {events:?}");
    }
    let listed = list_all(&alice, &format!("/v1/workspaces/{primary}/keys"), 500).await;
    assert!(!listed.iter().any(|k| k["id"] == lost["id"]), "the revoked key is still listed: {listed:?}");
}

/// A workspace member (or admin) made `viewer` there loses the keys they created there: a viewer
/// may not create keys, so their keys may not act either. Keys elsewhere keep working.
async fn made_viewer_loses_keys_in_that_workspace(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    let ws2 = create_ws(&alice, &org, "Two").await;
    let (carol, c) = s.signup("Carol").await;
    let carol_id = uid(&c);
    s.add_member(&alice, &org, &carol, &c, "member").await;
    set_ws_role(&alice, &primary, &carol_id, "member").await;
    set_ws_role(&alice, &ws2, &carol_id, "member").await;
    let (dave, d) = s.signup("Dave").await;
    let dave_id = uid(&d);
    s.add_member(&alice, &org, &dave, &d, "member").await;
    set_ws_role(&alice, &ws2, &dave_id, "admin").await;

    let carol_primary = create_key(&carol, &primary, "carol primary").await;
    let carol_ws2 = create_key(&carol, &ws2, "carol two").await;
    let dave_ws2 = create_key(&dave, &ws2, "dave two").await;
    let alice_ws2 = create_key(&alice, &ws2, "alice two").await;
    for k in [&carol_primary, &carol_ws2, &dave_ws2, &alice_ws2] {
        assert_key_works(&key_client(&s, k), &id_of(k)).await;
        assert_key_works(&key_client(&s, k), &id_of(k)).await;
    }

    for user in [&carol_id, &dave_id] {
        let r = alice.put(&format!("/v1/workspaces/{ws2}/members/{user}"), &json!({"role": "viewer"})).await.unwrap();
        assert!(r.is_success(), "make viewer: {} {}", r.status, r.body);
    }
    assert_unauthenticated(&key_client(&s, &carol_ws2), "a member made viewer: her key there").await;
    assert_unauthenticated(&key_client(&s, &dave_ws2), "an admin made viewer: his key there").await;
    let r = key_client(&s, &carol_ws2)
        .post(&format!("/v1/workspaces/{ws2}/resources"), &json!({"kind": "app", "name": "as viewer"}))
        .await
        .unwrap();
    expect_problem(&r, 401, "unauthenticated");
    assert_key_works(&key_client(&s, &carol_primary), &id_of(&carol_primary)).await;
    assert_key_works(&key_client(&s, &alice_ws2), &id_of(&alice_ws2)).await;
    // Carol still reads the workspace, as a viewer, and may not make a new key there.
    expect_status(&carol.get(&format!("/v1/workspaces/{ws2}")).await.unwrap(), 200);
    let r = carol.post(&format!("/v1/workspaces/{ws2}/keys"), &json!({"name": "again"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");

    let events = revoked_events(&alice, &org).await;
    for k in [&carol_ws2, &dave_ws2] {
        let of = revocations_of(&events, &id_of(k));
        assert_eq!(of.len(), 1, "one key.revoked for {}: {events:?}", id_of(k));
        assert_eq!(of[0]["workspace_id"], ws2.as_str(), "{:?}", of[0]);
    }
    for k in [&carol_primary, &alice_ws2] {
        assert!(revocations_of(&events, &id_of(k)).is_empty(), "a kept key was revoked: {events:?}");
    }

    // Made a member again, the old key stays dead.
    set_ws_role(&alice, &ws2, &carol_id, "member").await;
    assert_unauthenticated(&key_client(&s, &carol_ws2), "a revoked key after the role came back").await;
}

// 3. ------------------------------------------------------------------------------------------------

/// Polls until `c` gets 401 on `GET /v1/me`, for at most `within`.
async fn rejected_within(c: &Client, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if c.get("/v1/me").await.unwrap().status == 401 {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Terminates every connection of the test database whose last query was a `LISTEN` (the key
/// listeners of both replicas), waiting up to 3 s for one to exist.
async fn terminate_listeners(conn: &mut sqlx::PgConnection) {
    for _ in 0..100 {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN%' AND datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("terminate LISTEN connections");
        if !killed.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("no LISTEN connection to terminate on the test database");
}

/// A replica hears of revocations through `LISTEN`; when that connection drops, it must not keep
/// trusting its cache: a key revoked meanwhile is refused within seconds, and the listener comes back.
async fn replica_survives_a_dropped_listen_connection(a: TestServer) {
    use sqlx::Connection;

    let b = a.replica().await;
    let (alice, body) = a.signup("Alice").await;
    let ws = personal_ws(&body);

    // The listener works: a key cached on B, revoked through A.
    let k1 = create_key(&alice, &ws, "one").await;
    let on_b = key_client(&b, &k1);
    assert_key_works(&on_b, &id_of(&k1)).await;
    assert_key_works(&on_b, &id_of(&k1)).await;
    expect_status(&alice.delete(&format!("/v1/keys/{}", id_of(&k1))).await.unwrap(), 204);
    assert!(
        rejected_within(&on_b, Duration::from_secs(5)).await.is_some(),
        "replica B kept accepting a key revoked through replica A"
    );

    // Drop the LISTEN connections of this database, then revoke through A a key B has cached.
    let k2 = create_key(&alice, &ws, "two").await;
    let on_b = key_client(&b, &k2);
    assert_key_works(&on_b, &id_of(&k2)).await;
    assert_key_works(&on_b, &id_of(&k2)).await;
    let mut conn = sqlx::PgConnection::connect(&a.database_url).await.expect("connect to the test database");
    terminate_listeners(&mut conn).await;
    expect_status(&alice.delete(&format!("/v1/keys/{}", id_of(&k2))).await.unwrap(), 204);
    assert!(
        rejected_within(&on_b, Duration::from_secs(5)).await.is_some(),
        "after its LISTEN connection was dropped, replica B kept accepting a key revoked through A for 5 s"
    );
    expect_problem(&on_b.get("/v1/me").await.unwrap(), 401, "unauthenticated");

    // A notification lost for certain: the key is revoked in the database behind both servers'
    // backs (no NOTIFY), then the LISTEN connections drop. Reconnecting must not trust the cache.
    let k3 = create_key(&alice, &ws, "three").await;
    let on_b = key_client(&b, &k3);
    assert_key_works(&on_b, &id_of(&k3)).await;
    assert_key_works(&on_b, &id_of(&k3)).await;
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
        .bind(crate::support::now_ms(&a))
        .bind(id_of(&k3))
        .execute(&mut conn)
        .await
        .expect("revoke in the database");
    terminate_listeners(&mut conn).await;
    assert!(
        rejected_within(&on_b, Duration::from_secs(5)).await.is_some(),
        "replica B still trusts its cache 5 s after its LISTEN connection dropped (a revocation was missed)"
    );
    conn.close().await.ok();

    // And the listener is back: the next revocation reaches B as well.
    let k4 = create_key(&alice, &ws, "four").await;
    let on_b = key_client(&b, &k4);
    assert_key_works(&on_b, &id_of(&k4)).await;
    assert_key_works(&on_b, &id_of(&k4)).await;
    expect_status(&alice.delete(&format!("/v1/keys/{}", id_of(&k4))).await.unwrap(), 204);
    assert!(
        rejected_within(&on_b, Duration::from_secs(5)).await.is_some(),
        "after the listener reconnected, replica B kept accepting a key revoked through A"
    );
}

// 4. ------------------------------------------------------------------------------------------------

/// One trial per org, ever, even when several trials are asked for at the same moment.
async fn a_trial_is_taken_once_under_concurrency(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let plans = ["pro", "team", "launch", "business", "pro", "team"];
    for round in 0..3 {
        let (org, _) = s.org(&alice, &format!("Trial {round}"), "scale").await;
        let path = format!("/v1/orgs/{org}/plan");
        let tasks: Vec<_> = plans
            .iter()
            .map(|p| {
                let (c, path, p) = (alice.clone(), path.clone(), (*p).to_string());
                tokio::spawn(async move {
                    let r = c.put(&path, &json!({"plan": p, "trial": true})).await.unwrap();
                    (p, r)
                })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            let (p, r) = t.await.unwrap();
            if r.status == 200 {
                won.push(p);
            } else {
                expect_problem(&r, 409, "trial_used");
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {} trials granted to one org: {won:?}", won.len());
        let got = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
        assert_eq!(got.body["plan"], won[0].as_str(), "{}", got.body);
        assert!(got.body["trial_ends_at"].is_string(), "{}", got.body);
        let again = alice.put(&path, &json!({"plan": "launch", "trial": true})).await.unwrap();
        expect_problem(&again, 409, "trial_used");
    }
}

// 5. ------------------------------------------------------------------------------------------------

/// A downgrade to a plan with one workspace, racing workspace creations: the org never ends up on
/// the small plan with more workspaces than it allows.
async fn downgrade_racing_workspace_creation_keeps_the_limit(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    for round in 0..6 {
        let (org, _) = s.org(&alice, &format!("Race {round}"), "scale").await;
        let spawn_plan = |alice: Client, org: String| {
            tokio::spawn(async move { alice.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "build"})).await })
        };
        let mut plan_task = (round % 2 == 0).then(|| spawn_plan(alice.clone(), org.clone()));
        let creates: Vec<_> = (0..3)
            .map(|i| {
                let (c, org) = (alice.clone(), org.clone());
                tokio::spawn(async move {
                    c.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": format!("W{i}")})).await
                })
            })
            .collect();
        if plan_task.is_none() {
            plan_task = Some(spawn_plan(alice.clone(), org.clone()));
        }
        let plan = plan_task.expect("plan task").await.unwrap().unwrap();
        let mut made = 0;
        for t in creates {
            let r = t.await.unwrap().unwrap();
            if r.status == 201 {
                made += 1;
            } else {
                expect_plan_limit(&r, 403, "max_workspaces");
            }
        }
        if plan.status != 200 {
            expect_plan_limit(&plan, 409, "max_workspaces");
        }

        let got = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
        expect_status(&got, 200);
        let used = got.body["usage"]["workspaces"].as_u64().expect("usage.workspaces");
        let listed = list_all(&alice, &format!("/v1/orgs/{org}/workspaces"), 500).await.len();
        assert_eq!(used, listed as u64, "round {round}: usage.workspaces disagrees with the list: {}", got.body);
        assert_eq!(listed, 1 + made, "round {round}: {made} creations answered 201, {listed} workspaces listed");
        let expected_plan = if plan.status == 200 { "build" } else { "scale" };
        assert_eq!(got.body["plan"], expected_plan, "round {round}: plan change answered {}", plan.status);
        if got.body["plan"] == "build" {
            assert!(used <= 1, "round {round}: the org is on build (max 1 workspace) with {used}: {}", got.body);
        }
    }
}

// 6. ------------------------------------------------------------------------------------------------

/// Resources created while their workspace is being deleted do not survive it: the org's usage
/// counts exactly the resources of the workspaces that remain.
async fn no_resource_lands_in_a_workspace_being_deleted(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    for (i, kind) in ["app", "bucket", "app"].iter().enumerate() {
        let r = alice
            .post(&format!("/v1/workspaces/{primary}/resources"), &json!({"kind": kind, "name": format!("stay {i}")}))
            .await
            .unwrap();
        expect_status(&r, 201);
    }
    for round in 0..3 {
        let doomed = create_ws(&alice, &org, &format!("Doomed {round}")).await;
        let created = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let (c, ws, created) = (alice.clone(), doomed.clone(), created.clone());
                tokio::spawn(async move {
                    for i in 0..200 {
                        let kind = if (t + i) % 2 == 0 { "app" } else { "bucket" };
                        let r = c
                            .post(
                                &format!("/v1/workspaces/{ws}/resources"),
                                &json!({"kind": kind, "name": format!("r{t}-{i}")}),
                            )
                            .await
                            .unwrap();
                        if r.status != 201 {
                            expect_clean_refusal(&r, "resource creation in a deleted workspace");
                            return;
                        }
                        created.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        wait_for(&created, 4, Duration::from_secs(10)).await;
        let r = alice.delete(&format!("/v1/workspaces/{doomed}")).await.unwrap();
        expect_status(&r, 204);
        for t in tasks {
            t.await.unwrap();
        }
        let r = alice
            .post(&format!("/v1/workspaces/{doomed}/resources"), &json!({"kind": "app", "name": "late"}))
            .await
            .unwrap();
        expect_problem(&r, 404, "not_found");

        let got = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
        expect_status(&got, 200);
        let counted: u64 = got.body["usage"]["resources"]
            .as_object()
            .expect("usage.resources")
            .values()
            .map(|n| n.as_u64().expect("a count"))
            .sum();
        let workspaces = list_all(&alice, &format!("/v1/orgs/{org}/workspaces"), 500).await;
        assert!(!workspaces.iter().any(|w| w["id"] == doomed.as_str()), "the deleted workspace is listed");
        let mut listed = 0u64;
        for w in &workspaces {
            let id = w["id"].as_str().expect("workspace id");
            listed += list_all(&alice, &format!("/v1/workspaces/{id}/resources"), 500).await.len() as u64;
        }
        assert_eq!(
            counted, listed,
            "round {round}: usage.resources counts {counted}, the remaining workspaces hold {listed}: {}",
            got.body["usage"]
        );
    }
}

// 7. ------------------------------------------------------------------------------------------------

/// Concurrent rotations without grace leave exactly one working secret; the original is dead.
async fn concurrent_rotations_leave_one_secret(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    for round in 0..3 {
        let key = create_key(&alice, &ws, &format!("rotated {round}")).await;
        let id = id_of(&key);
        let original = key_client(&s, &key);
        assert_key_works(&original, &id).await;
        assert_key_works(&original, &id).await;

        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (c, id) = (alice.clone(), id.clone());
                let body = if i % 2 == 0 { json!({}) } else { json!({"grace_seconds": 0}) };
                tokio::spawn(async move { c.post(&format!("/v1/keys/{id}/rotate"), &body).await.unwrap() })
            })
            .collect();
        let mut secrets = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            match r.status {
                200 => secrets.push(r.str("secret").to_string()),
                409 => assert!(r.content_type.starts_with("application/problem+json"), "{}", r.body),
                other => panic!("round {round}: concurrent rotation answered {other}: {}", r.body),
            }
        }
        assert!(!secrets.is_empty(), "round {round}: no rotation succeeded");
        let mut working = Vec::new();
        for secret in &secrets {
            let me = s.client.with_token(secret).get("/v1/me").await.unwrap();
            match me.status {
                200 => {
                    assert_eq!(me.body["key"]["id"], id.as_str(), "{}", me.body);
                    working.push(secret.clone());
                }
                _ => expect_problem(&me, 401, "unauthenticated"),
            }
        }
        assert_eq!(
            working.len(),
            1,
            "round {round}: {} of {} returned secrets work after concurrent rotations without grace",
            working.len(),
            secrets.len()
        );
        assert_unauthenticated(&original, &format!("round {round}: the original secret after rotation")).await;
        let listed = list_all(&alice, &format!("/v1/workspaces/{ws}/keys"), 500).await;
        assert_eq!(listed.iter().filter(|k| k["id"] == id.as_str()).count(), 1, "{listed:?}");
    }
}

// 8. ------------------------------------------------------------------------------------------------

/// Concurrent revocations of one key: one 204, the rest 404, and one `key.revoked` in the log.
async fn concurrent_revocations_revoke_once(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    for round in 0..4 {
        let key = create_key(&alice, &ws, &format!("revoked {round}")).await;
        let id = id_of(&key);
        assert_key_works(&key_client(&s, &key), &id).await;
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (c, id) = (alice.clone(), id.clone());
                tokio::spawn(async move { c.delete(&format!("/v1/keys/{id}")).await.unwrap() })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            if r.status != 204 {
                expect_problem(&r, 404, "not_found");
            }
            statuses.push(r.status);
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [204, 404, 404], "round {round}: concurrent DELETE /v1/keys/{id}");
        assert_unauthenticated(&key_client(&s, &key), "a revoked key").await;
        let events = revoked_events(&alice, &org).await;
        let of = revocations_of(&events, &id);
        assert_eq!(of.len(), 1, "round {round}: key.revoked events for {id}: {of:?}");
        assert_eq!(of[0]["workspace_id"], ws.as_str(), "{:?}", of[0]);
    }
}

// 9. ------------------------------------------------------------------------------------------------

/// NUL bytes and control characters in input are refused cleanly, never a 500.
async fn nul_and_control_characters_never_500(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;

    let own_email = a["user"]["email"].as_str().unwrap();
    for email in ["a\u{0}@b.c".to_string(), "a\u{1}@b.c".to_string(), format!("{own_email}\u{0}")] {
        let r = s.client.post("/v1/sessions", &json!({"email": email, "password": "correct horse battery"})).await;
        expect_problem(&r.unwrap(), 401, "invalid_credentials");
    }
    let r = s
        .client
        .post("/v1/sessions", &json!({"email": a["user"]["email"], "password": "correct\u{0}horse battery"}))
        .await
        .unwrap();
    expect_problem(&r, 401, "invalid_credentials");

    expect_invalid(&alice.get("/v1/orgs?cursor=%00").await.unwrap(), "cursor");
    expect_invalid(&alice.get("/v1/orgs?cursor=a%00b").await.unwrap(), "cursor");
    for list in [
        format!("/v1/orgs/{org}/members"),
        format!("/v1/orgs/{org}/workspaces"),
        format!("/v1/orgs/{org}/invitations"),
        format!("/v1/orgs/{org}/audit"),
        format!("/v1/workspaces/{ws}/members"),
        format!("/v1/workspaces/{ws}/keys"),
        format!("/v1/workspaces/{ws}/resources"),
    ] {
        expect_invalid(&alice.get(&format!("{list}?cursor=%00")).await.unwrap(), "cursor");
    }
    for (query, field) in [
        ("action=%00".to_string(), "action"),
        ("action=key.%01created".to_string(), "action"),
        ("workspace=a%00b".to_string(), "workspace"),
        (format!("workspace={ws}%00"), "workspace"),
        ("actor=%01".to_string(), "actor"),
        ("actor=usr_%00".to_string(), "actor"),
    ] {
        let r = alice.get(&format!("/v1/orgs/{org}/audit?{query}")).await.unwrap();
        assert_eq!(r.status, 422, "audit ?{query}: {}", r.body);
        expect_invalid(&r, field);
    }

    for bad in ["a\u{0}b", "\u{0}", "a\u{1}b"] {
        let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r = alice.patch(&format!("/v1/workspaces/{ws}"), &json!({"name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r = alice.patch(&format!("/v1/orgs/{org}"), &json!({"name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r = alice.post("/v1/orgs", &json!({"name": bad, "plan": "team"})).await.unwrap();
        expect_invalid(&r, "name");
        let r = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r =
            alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r =
            alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": bad, "name": "x"})).await.unwrap();
        expect_invalid(&r, "kind");
        let r = s
            .client
            .post(
                "/v1/signup",
                &json!({"email": crate::support::fresh_email("nul"), "password": "correct horse battery", "name": bad}),
            )
            .await
            .unwrap();
        expect_invalid(&r, "name");
    }

    // Elsewhere, a clean 4xx.
    let r = s
        .client
        .post("/v1/signup", &json!({"email": "nul\u{0}@example.com", "password": "correct horse battery", "name": "N"}))
        .await
        .unwrap();
    expect_clean_refusal(&r, "signup with a NUL in the email");
    let r = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": "x\u{0}@example.com"})).await.unwrap();
    expect_clean_refusal(&r, "invitation with a NUL in the email");
    let r = alice.post("/v1/invitations/accept", &json!({"token": "inv\u{0}tok"})).await.unwrap();
    expect_clean_refusal(&r, "accept with a NUL in the token");
    let r = alice.put("/v1/me/active-workspace", &json!({"workspace_id": "ws_\u{0}"})).await.unwrap();
    expect_clean_refusal(&r, "active workspace with a NUL");
    let r = alice.put(&format!("/v1/workspaces/{ws}/members/usr_%00"), &json!({"role": "member"})).await.unwrap();
    expect_clean_refusal(&r, "workspace member with a NUL id");

    // Nothing of that was stored; the account still works.
    let listed = list_all(&alice, &format!("/v1/orgs/{org}/workspaces"), 500).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    expect_status(&alice.get("/v1/me").await.unwrap(), 200);
}

// 10. -----------------------------------------------------------------------------------------------

/// Paths whose percent-encoding is not UTF-8 are unknown things: 404 `not_found`, as a problem.
async fn bad_percent_encoding_in_paths_is_404(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    for (method, path) in [
        (Method::GET, "/v1/orgs/%FF".to_string()),
        (Method::DELETE, "/v1/keys/%FF%FE".to_string()),
        (Method::GET, "/v1/workspaces/%C3%28".to_string()),
        (Method::GET, "/v1/orgs/%FF/audit".to_string()),
        (Method::GET, "/v1/workspaces/%C3%28/resources".to_string()),
        (Method::DELETE, "/v1/resources/%FF".to_string()),
        (Method::DELETE, format!("/v1/orgs/{org}/members/%FF")),
    ] {
        let r = alice.send(method.clone(), &path, None).await.unwrap();
        assert_eq!(r.status, 404, "{method} {path}: {} {}", r.status, r.body);
        assert!(
            r.content_type.starts_with("application/problem+json"),
            "{method} {path}: content type `{}`",
            r.content_type
        );
        expect_problem(&r, 404, "not_found");
    }
    let r = alice.post("/v1/keys/%FF/rotate", &json!({})).await.unwrap();
    expect_problem(&r, 404, "not_found");
    expect_status(&alice.get(&format!("/v1/orgs/{org}")).await.unwrap(), 200);
}

// 11. -----------------------------------------------------------------------------------------------

/// A billing member sees every workspace of the org, with the role `billing`.
async fn billing_member_sees_every_workspace(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    let ws2 = create_ws(&alice, &org, "Two").await;
    let ws3 = create_ws(&alice, &org, "Three").await;
    let (bill, b) = s.signup("Bill").await;
    s.add_member(&alice, &org, &bill, &b, "billing").await;

    let me = bill.get("/v1/me").await.unwrap();
    expect_status(&me, 200);
    let m = membership(&me.body, &org).unwrap_or_else(|| panic!("no membership for {org}: {}", me.body));
    assert_eq!(m["org_role"], "billing", "{m}");
    let ws = m["workspaces"].as_array().unwrap_or_else(|| panic!("no workspaces: {m}"));
    let mut ids: Vec<&str> = ws.iter().filter_map(|w| w["id"].as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![primary.as_str(), ws2.as_str(), ws3.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "a billing member's workspaces in /v1/me: {m}");
    for w in ws {
        assert_eq!(w["role"], "billing", "role of {} for a billing member: {m}", w["id"]);
    }

    for w in [&primary, &ws2, &ws3] {
        let cur = bill.in_workspace(w).get("/v1/workspaces/current").await.unwrap();
        expect_status(&cur, 200);
        assert_eq!(cur.body["id"], w.as_str(), "{}", cur.body);
        assert_eq!(cur.body["role"], "billing", "GET /v1/workspaces/current in {w}: {}", cur.body);
    }
    let r = bill.put("/v1/me/active-workspace", &json!({"workspace_id": ws2})).await.unwrap();
    expect_status(&r, 200);
    let cur = bill.get("/v1/workspaces/current").await.unwrap();
    assert_eq!((cur.body["id"].as_str(), cur.body["role"].as_str()), (Some(ws2.as_str()), Some("billing")));
    let listed = list_all(&bill, &format!("/v1/orgs/{org}/workspaces"), 500).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
}

// 12. -----------------------------------------------------------------------------------------------

/// Status, content type and the raw body bytes of a request.
async fn raw(s: &TestServer, token: &str, method: Method, path: &str, body: Option<&Value>) -> (u16, String, Vec<u8>) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", s.base)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, res.bytes().await.expect("body").to_vec())
}

/// Another tenant's key or resource answers byte for byte like one that does not exist.
async fn another_tenants_ids_answer_byte_for_byte_like_missing_ones(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let ws2 = create_ws(&alice, &org, "Hidden").await;
    let key = create_key(&alice, &ws, "ci").await;
    let hidden_key = create_key(&alice, &ws2, "hidden").await;
    let res =
        alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "r"})).await.unwrap();
    expect_status(&res, 201);
    let res = res.str("id").to_string();
    let hidden_res =
        alice.post(&format!("/v1/workspaces/{ws2}/resources"), &json!({"kind": "app", "name": "h"})).await.unwrap();
    let hidden_res = hidden_res.str("id").to_string();
    let (mallory, _) = s.signup("Mallory").await;
    let (_, mallory_ws) = s.org(&mallory, "Evil", "team").await;
    // An org member who is in neither workspace.
    let (carol, c) = s.signup("Carol").await;
    s.add_member(&alice, &org, &carol, &c, "member").await;

    let missing_key = IdKind::Key.generate();
    let missing_res = IdKind::Resource.generate();
    let transfer = json!({"workspace_id": mallory_ws});
    let mt = mallory.token().expect("token").to_string();
    let ct = carol.token().expect("token").to_string();
    let cases = [
        (&mt, Method::DELETE, format!("/v1/keys/{}", id_of(&key)), format!("/v1/keys/{missing_key}"), None),
        (&mt, Method::DELETE, format!("/v1/resources/{res}"), format!("/v1/resources/{missing_res}"), None),
        (
            &mt,
            Method::POST,
            format!("/v1/keys/{}/rotate", id_of(&key)),
            format!("/v1/keys/{missing_key}/rotate"),
            Some(json!({})),
        ),
        (
            &mt,
            Method::POST,
            format!("/v1/resources/{res}/transfer"),
            format!("/v1/resources/{missing_res}/transfer"),
            Some(transfer),
        ),
        (&ct, Method::DELETE, format!("/v1/keys/{}", id_of(&hidden_key)), format!("/v1/keys/{missing_key}"), None),
        (&ct, Method::DELETE, format!("/v1/resources/{hidden_res}"), format!("/v1/resources/{missing_res}"), None),
    ];
    for (token, method, theirs, missing, body) in &cases {
        let a = raw(&s, token, method.clone(), theirs, body.as_ref()).await;
        let b = raw(&s, token, method.clone(), missing, body.as_ref()).await;
        assert_eq!(a.0, 404, "{method} {theirs}: {}", String::from_utf8_lossy(&a.2));
        assert_eq!(
            (a.0, &a.1, String::from_utf8_lossy(&a.2)),
            (b.0, &b.1, String::from_utf8_lossy(&b.2)),
            "{method} {theirs} answers differently from {missing}"
        );
    }
    // Nothing moved.
    assert_key_works(&key_client(&s, &key), &id_of(&key)).await;
    assert_key_works(&key_client(&s, &hidden_key), &id_of(&hidden_key)).await;
    let listed = list_all(&alice, &format!("/v1/workspaces/{ws}/resources"), 500).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
}

/// An invitation whose workspace grant lowers a member's role (member → viewer) ends the keys
/// they made there, like any other demotion.
async fn invitation_lowering_a_role_revokes_keys(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (bob, bob_s) = s.signup("Bob").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &bob, &bob_s, "member").await;
    let ws2 = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    let ws2 = ws2.str("id").to_string();
    let bob_id = bob_s["user"]["id"].as_str().unwrap().to_string();
    let put = alice.put(&format!("/v1/workspaces/{ws2}/members/{bob_id}"), &json!({"role": "member"})).await.unwrap();
    assert_eq!(put.status, 200, "{}", put.body);
    let key = bob.post(&format!("/v1/workspaces/{ws2}/keys"), &json!({"name": "ci"})).await.unwrap();
    assert_eq!(key.status, 201, "{}", key.body);
    let as_key = s.client.with_token(key.str("secret"));
    assert_eq!(as_key.get("/v1/me").await.unwrap().status, 200);

    let email = bob_s["user"]["email"].as_str().unwrap();
    let inv = alice
        .post(
            &format!("/v1/orgs/{org}/invitations"),
            &json!({"email": email, "workspaces": [{"workspace_id": ws2, "role": "viewer"}]}),
        )
        .await
        .unwrap();
    assert_eq!(inv.status, 201, "{}", inv.body);
    let acc = bob.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.unwrap();
    assert_eq!(acc.status, 200, "{}", acc.body);

    let me = as_key.get("/v1/me").await.unwrap();
    assert_eq!((me.status, me.code()), (401, Some("unauthenticated")), "the key of a new viewer must stop at once");
    let audit = alice.get(&format!("/v1/orgs/{org}/audit?action=key.revoked")).await.unwrap();
    let items = audit.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", audit.body);
    assert_eq!(items[0]["target"]["id"], key.body["id"]);
}

both_backends!(
    invitation_lowering_a_role_revokes_keys,
    removal_racing_key_creation_leaves_no_working_key,
    demoted_admin_loses_keys_where_they_lose_access,
    made_viewer_loses_keys_in_that_workspace,
    a_trial_is_taken_once_under_concurrency,
    downgrade_racing_workspace_creation_keeps_the_limit,
    no_resource_lands_in_a_workspace_being_deleted,
    concurrent_rotations_leave_one_secret,
    concurrent_revocations_revoke_once,
    nul_and_control_characters_never_500,
    bad_percent_encoding_in_paths_is_404,
    billing_member_sees_every_workspace,
    another_tenants_ids_answer_byte_for_byte_like_missing_ones,
);

// Replicas exist only on PostgreSQL.
postgres_only!(replica_survives_a_dropped_listen_connection);
