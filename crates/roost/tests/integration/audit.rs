//! Scenarios: the audit log — what is recorded, who sees it, filters, order and pagination.

use roost::Client;
use roost_domain::time::parse_rfc3339;
use serde_json::{Value, json};

use crate::support::{expect_problem, set_ws_role, uid};
use roost_test_kit::TestServer;

/// Every event `c` may see with `query` (e.g. `action=key.created`), following cursors.
async fn audit(c: &Client, org: &str, query: &str) -> Vec<Value> {
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("/v1/orgs/{org}/audit?limit=500");
        if !query.is_empty() {
            url = format!("{url}&{query}");
        }
        if let Some(c) = &cursor {
            url = format!("{url}&cursor={c}");
        }
        let r = c.get(&url).await.unwrap();
        assert_eq!(r.status, 200, "audit {url}: {:?}", r.body);
        out.extend(r.body["items"].as_array().expect("items").iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// The one event with `action` and target id `target`.
#[track_caller]
fn find<'a>(events: &'a [Value], action: &str, target: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["action"] == action && e["target"]["id"] == target).collect();
    assert_eq!(found.len(), 1, "expected one `{action}` on {target}, found {found:?} in {events:#?}");
    found[0]
}

/// Checks the members every event carries.
#[track_caller]
fn check_event(e: &Value, org: &str, actor: (&str, &str), target_type: &str, workspace: Option<&str>) {
    assert!(e["id"].as_str().is_some_and(|i| i.starts_with("aud_")), "{e:?}");
    assert!(e["at"].as_str().and_then(parse_rfc3339).is_some(), "at must be RFC 3339: {e:?}");
    assert_eq!(e["org_id"], org, "{e:?}");
    assert_eq!(e["actor"]["type"], actor.0, "{e:?}");
    assert_eq!(e["actor"]["id"], actor.1, "{e:?}");
    assert_eq!(e["target"]["type"], target_type, "{e:?}");
    assert_eq!(e["ip"], "127.0.0.1", "{e:?}");
    assert!(e["detail"].is_object(), "detail must be an object: {e:?}");
    if let Some(ws) = workspace {
        assert_eq!(e["workspace_id"], ws, "{e:?}");
    }
}

async fn actions_are_recorded_with_who_what_where(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let alice_id = uid(&a);
    let me = ("user", alice_id.as_str());
    let (bob, b) = s.signup("Bob").await;
    let bob_id = uid(&b);

    let (org, ws1) = s.org(&alice, "Acme", "team").await;
    let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let ws2 = r.str("id").to_string();
    let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Doomed"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let ws3 = r.str("id").to_string();

    let email = b["user"]["email"].as_str().unwrap();
    let inv = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": email})).await.unwrap();
    assert_eq!(inv.status, 201, "{:?}", inv.body);
    let inv_id = inv.str("id").to_string();
    let acc = bob.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.unwrap();
    assert_eq!(acc.status, 200, "{:?}", acc.body);
    let r = alice.patch(&format!("/v1/orgs/{org}/members/{bob_id}"), &json!({"role": "admin"})).await.unwrap();
    assert!(r.is_success(), "{:?}", r.body);

    let key = alice.post(&format!("/v1/workspaces/{ws1}/keys"), &json!({"name": "ci"})).await.unwrap();
    assert_eq!(key.status, 201, "{:?}", key.body);
    let key_id = key.str("id").to_string();
    let k = s.client.with_token(key.str("secret"));
    // Something done by a key is recorded as the key's.
    let kres =
        k.post(&format!("/v1/workspaces/{ws1}/resources"), &json!({"kind": "app", "name": "by key"})).await.unwrap();
    assert_eq!(kres.status, 201, "{:?}", kres.body);
    let r = alice.post(&format!("/v1/keys/{key_id}/rotate"), &json!({"grace_seconds": 10})).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rotated_secret = r.str("secret").to_string();
    let r = alice.delete(&format!("/v1/keys/{key_id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);

    let r = alice.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "business"})).await.unwrap();
    assert!(r.is_success(), "plan change: {} {:?}", r.status, r.body);

    let res = alice
        .post(&format!("/v1/workspaces/{ws1}/resources"), &json!({"kind": "app", "name": "moving"}))
        .await
        .unwrap();
    assert_eq!(res.status, 201, "{:?}", res.body);
    let res_id = res.str("id").to_string();
    let r = alice.post(&format!("/v1/resources/{res_id}/transfer"), &json!({"workspace_id": ws2})).await.unwrap();
    assert!(r.is_success(), "transfer: {} {:?}", r.status, r.body);

    let r = alice.delete(&format!("/v1/workspaces/{ws3}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = alice.delete(&format!("/v1/orgs/{org}/members/{bob_id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);

    let events = audit(&alice, &org, "").await;

    let e = find(&events, "org.created", &org);
    check_event(e, &org, me, "org", None);
    let e = find(&events, "workspace.created", &ws1);
    check_event(e, &org, me, "workspace", Some(&ws1));
    let e = find(&events, "workspace.created", &ws2);
    check_event(e, &org, me, "workspace", Some(&ws2));
    let e = find(&events, "member.invited", &inv_id);
    check_event(e, &org, me, "invitation", None);
    let e = find(&events, "member.joined", &bob_id);
    check_event(e, &org, ("user", &bob_id), "user", None);
    let e = find(&events, "member.role_changed", &bob_id);
    check_event(e, &org, me, "user", None);
    let e = find(&events, "key.created", &key_id);
    check_event(e, &org, me, "key", Some(&ws1));
    let e = find(&events, "key.rotated", &key_id);
    check_event(e, &org, me, "key", Some(&ws1));
    let e = find(&events, "key.revoked", &key_id);
    check_event(e, &org, me, "key", None);
    let e = find(&events, "resource.created", kres.str("id"));
    check_event(e, &org, ("key", &key_id), "resource", Some(&ws1));
    let e = find(&events, "plan.changed", &org);
    check_event(e, &org, me, "org", None);
    let e = find(&events, "resource.transferred", &res_id);
    check_event(e, &org, me, "resource", None);
    let e = find(&events, "workspace.deleted", &ws3);
    check_event(e, &org, me, "workspace", Some(&ws3));
    let e = find(&events, "member.removed", &bob_id);
    check_event(e, &org, me, "user", None);

    // The log never holds a secret: key secrets, invitation tokens, user tokens, password hashes.
    let text = serde_json::to_string(&events).unwrap();
    for secret in [
        key.str("secret"),
        rotated_secret.as_str(),
        inv.str("token"),
        alice.token().unwrap(),
        bob.token().unwrap(),
        "$argon2",
    ] {
        assert!(!secret.is_empty() && !text.contains(secret), "the audit log contains a secret ({secret:.8}…)");
    }
    // A removed member no longer reads the log.
    expect_problem(&bob.get(&format!("/v1/orgs/{org}/audit")).await.unwrap(), 404, "not_found");

    // Nothing of this org leaked into alice's personal org's log.
    let personal_org = a["personal"]["org_id"].as_str().unwrap();
    let personal = audit(&alice, personal_org, "").await;
    assert!(personal.iter().all(|e| e["org_id"] == personal_org), "{personal:?}");
    assert!(!personal.iter().any(|e| e["target"]["id"] == org.as_str()), "{personal:?}");
}

async fn members_see_only_their_own_actions(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (bob, b) = s.signup("Bob").await;
    s.add_member(&alice, &org, &bob, &b, "admin").await;
    let (carol, c) = s.signup("Carol").await;
    let carol_id = uid(&c);
    s.add_member(&alice, &org, &carol, &c, "member").await;
    set_ws_role(&alice, &ws, &carol_id, "member").await;
    let (dan, d) = s.signup("Dan").await;
    s.add_member(&alice, &org, &dan, &d, "billing").await;

    let ck = carol.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "carol's"})).await.unwrap();
    assert_eq!(ck.status, 201, "{:?}", ck.body);
    let bk = bob.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "bob's"})).await.unwrap();
    assert_eq!(bk.status, 201, "{:?}", bk.body);

    // Owner and admin see the whole log, the same one.
    let all = audit(&alice, &org, "").await;
    let by_bob = audit(&bob, &org, "").await;
    assert_eq!(all, by_bob);
    for (action, target) in
        [("org.created", org.as_str()), ("key.created", ck.str("id")), ("key.created", bk.str("id"))]
    {
        find(&all, action, target);
    }
    find(&all, "member.joined", &carol_id);
    let actors: std::collections::BTreeSet<&str> = all.iter().filter_map(|e| e["actor"]["id"].as_str()).collect();
    assert!(
        actors.contains(uid(&a).as_str()) && actors.contains(carol_id.as_str()) && actors.contains(uid(&b).as_str())
    );

    // A plain member sees exactly their own actions, whatever they ask for.
    let own = audit(&carol, &org, "").await;
    let expected: Vec<Value> = all.iter().filter(|e| e["actor"]["id"] == carol_id.as_str()).cloned().collect();
    assert!(!own.is_empty());
    assert_eq!(own, expected);
    find(&own, "key.created", ck.str("id"));
    find(&own, "member.joined", &carol_id);
    let asked_for_alice = audit(&carol, &org, &format!("actor={}", uid(&a))).await;
    assert!(
        asked_for_alice.iter().all(|e| e["actor"]["id"] == carol_id.as_str()),
        "the actor filter escaped: {asked_for_alice:?}"
    );
    let asked_for_org = audit(&carol, &org, "action=org.created").await;
    assert!(asked_for_org.is_empty(), "a member saw the owner's org.created: {asked_for_org:?}");

    // Billing is not an admin either.
    let billing = audit(&dan, &org, "").await;
    assert!(billing.iter().all(|e| e["actor"]["id"] == uid(&d).as_str()), "{billing:?}");
    find(&billing, "member.joined", &uid(&d));
}

async fn filters_order_and_pagination(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let alice_id = uid(&a);
    let (org, ws1) = s.org(&alice, "Acme", "team").await;
    s.clock.advance(1_000);
    let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let ws2 = r.str("id").to_string();
    let (bob, b) = s.signup("Bob").await;
    let bob_id = uid(&b);
    s.clock.advance(1_000);
    s.add_member(&alice, &org, &bob, &b, "admin").await;
    let mut key_ids = vec![];
    for (who, ws, name) in [(&alice, &ws1, "a1"), (&bob, &ws2, "b2"), (&alice, &ws2, "a2"), (&bob, &ws1, "b1")] {
        s.clock.advance(1_000);
        let r = who.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": name})).await.unwrap();
        assert_eq!(r.status, 201, "{:?}", r.body);
        key_ids.push(r.str("id").to_string());
    }
    s.clock.advance(1_000);
    let r = bob.post(&format!("/v1/workspaces/{ws2}/resources"), &json!({"kind": "app", "name": "x"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);

    let all = audit(&alice, &org, "").await;
    assert!(all.len() >= 9, "{all:#?}");

    // Newest first: ids descending, times not increasing.
    let ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().expect("id")).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|x, y| y.cmp(x));
    assert_eq!(ids, sorted, "not newest first");
    let ats: Vec<i64> = all.iter().map(|e| e["at"].as_str().and_then(parse_rfc3339).expect("at")).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "times not newest first: {ats:?}");
    assert_eq!(all[0]["action"], "resource.created");
    assert!(all.iter().rev().take(2).any(|e| e["action"] == "org.created"), "org.created should be among the oldest");

    // ?workspace=
    let in_ws2 = audit(&alice, &org, &format!("workspace={ws2}")).await;
    let expected: Vec<Value> = all.iter().filter(|e| e["workspace_id"] == ws2.as_str()).cloned().collect();
    assert!(expected.len() >= 4, "{all:#?}");
    assert_eq!(in_ws2, expected);
    // ?actor=
    let by_bob = audit(&alice, &org, &format!("actor={bob_id}")).await;
    let expected: Vec<Value> = all.iter().filter(|e| e["actor"]["id"] == bob_id.as_str()).cloned().collect();
    assert!(expected.len() >= 4, "{all:#?}");
    assert_eq!(by_bob, expected);
    let by_alice = audit(&alice, &org, &format!("actor={alice_id}")).await;
    assert!(by_alice.iter().all(|e| e["actor"]["id"] == alice_id.as_str()));
    assert_eq!(by_alice.len() + by_bob.len(), all.len());
    // ?action=
    let created = audit(&alice, &org, "action=key.created").await;
    let mut got: Vec<&str> = created.iter().filter_map(|e| e["target"]["id"].as_str()).collect();
    got.reverse();
    assert_eq!(got, key_ids, "key.created newest first");
    assert!(created.iter().all(|e| e["action"] == "key.created"));
    // Combined.
    let combined = audit(&alice, &org, &format!("action=key.created&actor={bob_id}&workspace={ws1}")).await;
    assert_eq!(combined.len(), 1, "{combined:?}");
    assert_eq!(combined[0]["target"]["id"], key_ids[3].as_str());
    // No match.
    assert!(audit(&alice, &org, "action=no.such.action").await.is_empty());

    // ?limit=2 with cursors covers every event exactly once, in order.
    let mut paged: Vec<Value> = vec![];
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("/v1/orgs/{org}/audit?limit=2&cursor={c}"),
            None => format!("/v1/orgs/{org}/audit?limit=2"),
        };
        let r = alice.get(&url).await.unwrap();
        assert_eq!(r.status, 200, "{url}: {:?}", r.body);
        let items = r.body["items"].as_array().expect("items");
        assert!(items.len() <= 2, "{:?}", r.body);
        pages += 1;
        assert!(pages <= all.len() + 1, "pagination does not end");
        paged.extend(items.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    // Filters and pagination together.
    let r = alice.get(&format!("/v1/orgs/{org}/audit?limit=2&action=key.created")).await.unwrap();
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(2), "{:?}", r.body);
    let next = r.body["next_cursor"].as_str().expect("a next page").to_string();
    let r2 = alice.get(&format!("/v1/orgs/{org}/audit?limit=2&action=key.created&cursor={next}")).await.unwrap();
    let mut both: Vec<Value> = r.body["items"].as_array().unwrap().clone();
    both.extend(r2.body["items"].as_array().expect("items").iter().cloned());
    assert_eq!(both, created);

    // Bad limits.
    for bad in ["0", "501", "abc", "-1", "2.5"] {
        let r = alice.get(&format!("/v1/orgs/{org}/audit?limit={bad}")).await.unwrap();
        expect_problem(&r, 422, "invalid_request");
        assert_eq!(r.body["errors"][0]["field"], "limit", "{:?}", r.body);
    }
}

/// The recorded ip is the peer's address; a client cannot write another one into the log.
async fn the_ip_cannot_be_spoofed(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/workspaces/{ws}/keys", s.base))
        .bearer_auth(alice.token().unwrap())
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Real-IP", "6.6.6.6")
        .header("Forwarded", "for=6.6.6.6")
        .json(&json!({"name": "spoof"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let events = audit(&alice, &org, "action=key.created").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["ip"], "127.0.0.1", "{:?}", events[0]);
    assert_eq!(events[0]["actor"]["id"], uid(&a).as_str());
}

async fn another_tenant_cannot_read_the_log(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (mallory, m) = s.signup("Mallory").await;
    let missing = roost_domain::IdKind::Org.generate();

    let theirs = mallory.get(&format!("/v1/orgs/{org}/audit")).await.unwrap();
    let none = mallory.get(&format!("/v1/orgs/{missing}/audit")).await.unwrap();
    expect_problem(&theirs, 404, "not_found");
    expect_problem(&none, 404, "not_found");
    assert_eq!(theirs.body["detail"], none.body["detail"]);
    let filtered = mallory.get(&format!("/v1/orgs/{org}/audit?actor={}", uid(&m))).await.unwrap();
    expect_problem(&filtered, 404, "not_found");

    // Filtering one's own log by another tenant's workspace finds nothing.
    let mine = m["personal"]["org_id"].as_str().unwrap();
    let r = mallory.get(&format!("/v1/orgs/{mine}/audit?workspace={ws}")).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(0), "{:?}", r.body);

    // An API key: its own org's log is an org-level endpoint (403); another org's is 404.
    let key = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "ci"})).await.unwrap();
    let k = s.client.with_token(key.str("secret"));
    expect_problem(&k.get(&format!("/v1/orgs/{org}/audit")).await.unwrap(), 403, "forbidden");
    expect_problem(&k.get(&format!("/v1/orgs/{mine}/audit")).await.unwrap(), 404, "not_found");
    // Without a token at all.
    expect_problem(&s.client.get(&format!("/v1/orgs/{org}/audit")).await.unwrap(), 401, "unauthenticated");
}

both_backends!(
    actions_are_recorded_with_who_what_where,
    members_see_only_their_own_actions,
    filters_order_and_pagination,
    the_ip_cannot_be_spoofed,
    another_tenant_cannot_read_the_log,
);
