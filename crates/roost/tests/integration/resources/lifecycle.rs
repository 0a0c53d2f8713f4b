//! Resources in their workspace: creation, quotas (also under concurrency), deletion, who may,
//! creators leaving, and tenancy.

use serde_json::{Value, json};

use crate::support::{expect_problem, personal_ws, set_ws_role, uid};
use roost_test_kit::TestServer;

use super::{create, listed, transfer};

async fn create_list_delete_and_quota(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    let path = format!("/v1/workspaces/{ws}/resources");

    let r = alice.post(&path, &json!({"kind": "postgres", "name": "main db"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let db = r.body.clone();
    let db_id = db["id"].as_str().expect("id").to_string();
    assert!(db_id.starts_with("res_"), "{db_id}");
    assert_eq!(db["kind"], "postgres");
    assert_eq!(db["name"], "main db");
    assert_eq!(db["workspace_id"], ws.as_str());
    assert_eq!(db["created_by"], uid(&a).as_str());

    // The free plan allows one postgres per org.
    let r = alice.post(&path, &json!({"kind": "postgres", "name": "second"})).await.unwrap();
    expect_problem(&r, 403, "plan_limit");
    assert!(
        r.body["limit"].as_str().is_some_and(|l| l.contains("postgres")),
        "limit should name postgres: {:?}",
        r.body
    );
    // Kinds outside the quota are unlimited.
    let mut apps = vec![];
    for i in 0..4 {
        apps.push(create(&alice, &ws, "app", &format!("app {i}")).await["id"].as_str().unwrap().to_string());
    }
    // Other quota kinds are counted separately.
    create(&alice, &ws, "redis", "cache").await;

    let list = alice.get(&path).await.unwrap();
    assert_eq!(list.status, 200, "{:?}", list.body);
    let items = list.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 6, "{:?}", list.body);
    assert!(list.body.get("next_cursor").is_some_and(Value::is_null), "{:?}", list.body);
    let first = items.iter().find(|i| i["id"] == db_id.as_str()).expect("the postgres is listed");
    assert_eq!(first["kind"], "postgres");
    assert_eq!(first["name"], "main db");
    assert_eq!(first["created_by"], uid(&a).as_str());
    // Ordered by id (creation time).
    let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);

    // Pagination covers each exactly once.
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=4&cursor={c}"),
            None => format!("{path}?limit=4"),
        };
        let page = alice.get(&url).await.unwrap();
        assert_eq!(page.status, 200, "{:?}", page.body);
        let items = page.body["items"].as_array().expect("items");
        assert!(items.len() <= 4);
        seen.extend(items.iter().filter_map(|i| i["id"].as_str().map(str::to_string)));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    // Delete: gone, and the quota is free again.
    let r = alice.delete(&format!("/v1/resources/{db_id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(!listed(&alice, &ws).await.contains(&db_id));
    let r = alice.delete(&format!("/v1/resources/{db_id}")).await.unwrap();
    expect_problem(&r, 404, "not_found");
    create(&alice, &ws, "postgres", "replacement").await;

    // Bad input.
    let r = alice.post(&path, &json!({"kind": "Postgres!", "name": "x"})).await.unwrap();
    expect_problem(&r, 422, "invalid_request");
    assert_eq!(r.body["errors"][0]["field"], "kind", "{:?}", r.body);
    let r = alice.post(&path, &json!({"kind": "app", "name": ""})).await.unwrap();
    expect_problem(&r, 422, "invalid_request");
    assert_eq!(r.body["errors"][0]["field"], "name", "{:?}", r.body);
    let r = alice.post(&path, &json!({"name": "no kind"})).await.unwrap();
    expect_problem(&r, 422, "invalid_request");
    assert_eq!(r.body["errors"][0]["field"], "kind", "{:?}", r.body);
    assert_eq!(listed(&alice, &ws).await.len(), 6);
}

async fn who_may_create_and_delete_resources(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (viewer, v) = s.signup("Viewer").await;
    s.add_member(&alice, &org, &viewer, &v, "member").await;
    set_ws_role(&alice, &ws, &uid(&v), "viewer").await;
    let (bob, b) = s.signup("Bob").await;
    s.add_member(&alice, &org, &bob, &b, "member").await;
    set_ws_role(&alice, &ws, &uid(&b), "member").await;
    let (carol, c) = s.signup("Carol").await;
    s.add_member(&alice, &org, &carol, &c, "member").await;
    set_ws_role(&alice, &ws, &uid(&c), "member").await;
    let (billing, bi) = s.signup("Billing").await;
    s.add_member(&alice, &org, &billing, &bi, "billing").await;

    let path = format!("/v1/workspaces/{ws}/resources");
    let r = viewer.post(&path, &json!({"kind": "app", "name": "nope"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = billing.post(&path, &json!({"kind": "app", "name": "nope"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    assert!(listed(&alice, &ws).await.is_empty(), "a refused resource was stored");

    let bobs = create(&bob, &ws, "app", "bob's").await;
    assert_eq!(bobs["created_by"], uid(&b).as_str());
    let bobs_id = bobs["id"].as_str().unwrap();
    // Viewers read.
    assert_eq!(listed(&viewer, &ws).await, [bobs_id]);

    // Neither a viewer nor another member deletes it; its creator does.
    let r = viewer.delete(&format!("/v1/resources/{bobs_id}")).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = carol.delete(&format!("/v1/resources/{bobs_id}")).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    assert_eq!(listed(&alice, &ws).await, [bobs_id]);
    let r = bob.delete(&format!("/v1/resources/{bobs_id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(listed(&alice, &ws).await.is_empty());

    // A workspace manager (the org owner here) deletes anyone's.
    let carols = create(&carol, &ws, "bucket", "carol's").await;
    let r = alice.delete(&format!("/v1/resources/{}", carols["id"].as_str().unwrap())).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(listed(&alice, &ws).await.is_empty());
}

async fn resources_stay_when_their_creator_leaves(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (bob, b) = s.signup("Bob").await;
    s.add_member(&alice, &org, &bob, &b, "member").await;
    set_ws_role(&alice, &ws, &uid(&b), "member").await;
    let (carol, c) = s.signup("Carol").await;
    s.add_member(&alice, &org, &carol, &c, "member").await;
    set_ws_role(&alice, &ws, &uid(&c), "member").await;
    let bobs = create(&bob, &ws, "app", "bob's").await;
    let carols = create(&carol, &ws, "app", "carol's").await;

    let r = bob.delete(&format!("/v1/orgs/{org}/members/me")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = alice.delete(&format!("/v1/orgs/{org}/members/{}", uid(&c))).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);

    let list = alice.get(&format!("/v1/workspaces/{ws}/resources")).await.unwrap();
    let items = list.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{:?}", list.body);
    assert_eq!(items[0]["id"], bobs["id"]);
    assert_eq!(items[0]["created_by"], uid(&b).as_str());
    assert_eq!(items[1]["id"], carols["id"]);
    // Bob, gone, cannot reach them.
    expect_problem(&bob.get(&format!("/v1/workspaces/{ws}/resources")).await.unwrap(), 404, "not_found");
    let r = bob.delete(&format!("/v1/resources/{}", bobs["id"].as_str().unwrap())).await.unwrap();
    expect_problem(&r, 404, "not_found");
}

async fn another_tenant_sees_no_resources(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    let res = create(&alice, &ws, "app", "secret app").await;
    let id = res["id"].as_str().unwrap();
    let (mallory, m) = s.signup("Mallory").await;
    let mws = personal_ws(&m);
    let theirs = create(&mallory, &mws, "app", "mallory's").await;
    let theirs_id = theirs["id"].as_str().unwrap();

    let missing_res = roost_domain::IdKind::Resource.generate();
    let missing_ws = roost_domain::IdKind::Workspace.generate();
    let pairs = [
        (
            mallory.get(&format!("/v1/workspaces/{ws}/resources")).await.unwrap(),
            mallory.get(&format!("/v1/workspaces/{missing_ws}/resources")).await.unwrap(),
        ),
        (
            mallory
                .post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "x"}))
                .await
                .unwrap(),
            mallory
                .post(&format!("/v1/workspaces/{missing_ws}/resources"), &json!({"kind": "app", "name": "x"}))
                .await
                .unwrap(),
        ),
        (
            mallory.delete(&format!("/v1/resources/{id}")).await.unwrap(),
            mallory.delete(&format!("/v1/resources/{missing_res}")).await.unwrap(),
        ),
        (transfer(&mallory, id, &mws).await, transfer(&mallory, &missing_res, &mws).await),
        // Moving one's own resource into someone else's workspace.
        (transfer(&mallory, theirs_id, &ws).await, transfer(&mallory, theirs_id, &missing_ws).await),
    ];
    for (theirs, missing) in &pairs {
        expect_problem(theirs, 404, "not_found");
        expect_problem(missing, 404, "not_found");
        assert_eq!(
            theirs.body["detail"], missing.body["detail"],
            "another tenant's id answers differently from a missing one"
        );
    }
    assert_eq!(listed(&alice, &ws).await, [id]);
    assert_eq!(listed(&mallory, &mws).await, [theirs_id]);
}

/// Many creations at once cannot overshoot a quota.
async fn quota_holds_under_concurrency(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    let mut tasks = vec![];
    for i in 0..8 {
        let c = alice.clone();
        let path = format!("/v1/workspaces/{ws}/resources");
        tasks.push(tokio::spawn(async move {
            c.post(&path, &json!({"kind": "postgres", "name": format!("db {i}")})).await.unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 201 {
            created += 1;
        } else {
            expect_problem(&r, 403, "plan_limit");
        }
    }
    assert_eq!(created, 1, "the free plan's one postgres was overshot");
    assert_eq!(listed(&alice, &ws).await.len(), 1);
}

both_backends!(
    quota_holds_under_concurrency,
    create_list_delete_and_quota,
    who_may_create_and_delete_resources,
    resources_stay_when_their_creator_leaves,
    another_tenant_sees_no_resources,
);
