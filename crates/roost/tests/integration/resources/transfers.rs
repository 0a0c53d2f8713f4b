//! Transfers of resources between workspaces, within an org and across orgs.

use roost::Client;
use serde_json::{Value, json};

use crate::support::{expect_problem, personal_ws, set_ws_role, uid};
use roost_test_kit::{Backend, TestServer};

use super::{create, listed, transfer};

async fn new_workspace(c: &Client, org: &str, name: &str) -> String {
    let r = c.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": name})).await.unwrap();
    assert_eq!(r.status, 201, "create workspace: {:?}", r.body);
    r.str("id").to_string()
}

async fn transfer_between_workspaces_of_one_org(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws1) = s.org(&alice, "Acme", "team").await;
    let ws2 = new_workspace(&alice, &org, "Two").await;
    let res = create(&alice, &ws1, "postgres", "db").await;
    let id = res["id"].as_str().unwrap();

    let r = transfer(&alice, id, &ws2).await;
    assert!(r.is_success(), "transfer: {} {:?}", r.status, r.body);
    assert_eq!(listed(&alice, &ws2).await, [id]);
    assert!(listed(&alice, &ws1).await.is_empty());
    // And back.
    let r = transfer(&alice, id, &ws1).await;
    assert!(r.is_success(), "transfer back: {} {:?}", r.status, r.body);
    assert_eq!(listed(&alice, &ws1).await, [id]);

    // A caller who manages only one of the two: forbidden, nothing moves.
    let (bob, b) = s.signup("Bob").await;
    let bob_id = uid(&b);
    s.add_member(&alice, &org, &bob, &b, "member").await;
    set_ws_role(&alice, &ws1, &bob_id, "admin").await;
    set_ws_role(&alice, &ws2, &bob_id, "member").await;
    let bobs = create(&bob, &ws1, "app", "bob's").await;
    let bobs_id = bobs["id"].as_str().unwrap();
    let r = transfer(&bob, bobs_id, &ws2).await;
    expect_problem(&r, 403, "forbidden");
    let r = transfer(&bob, id, &ws2).await;
    expect_problem(&r, 403, "forbidden");
    assert!(listed(&alice, &ws2).await.is_empty(), "a refused transfer moved something");
    // Admin of the target only: forbidden as well.
    set_ws_role(&alice, &ws1, &bob_id, "member").await;
    set_ws_role(&alice, &ws2, &bob_id, "admin").await;
    let r = transfer(&bob, bobs_id, &ws2).await;
    expect_problem(&r, 403, "forbidden");
    // Admin of both: allowed.
    set_ws_role(&alice, &ws1, &bob_id, "admin").await;
    let r = transfer(&bob, bobs_id, &ws2).await;
    assert!(r.is_success(), "transfer by admin of both: {} {:?}", r.status, r.body);
    assert_eq!(listed(&alice, &ws2).await, [bobs_id]);
    assert_eq!(listed(&alice, &ws1).await, [id]);

    // Into a workspace that does not exist, or the one it is in.
    let r = transfer(&alice, id, &roost_domain::IdKind::Workspace.generate()).await;
    expect_problem(&r, 404, "not_found");
    let r = transfer(&alice, id, "not-a-workspace").await;
    assert!(r.status == 404 || r.status == 422, "{} {:?}", r.status, r.body);
    assert_eq!(listed(&alice, &ws1).await, [id]);
}

async fn transfer_org_to_personal_is_refused(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let personal = personal_ws(&a);
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    let res = create(&alice, &ws, "app", "app").await;
    let id = res["id"].as_str().unwrap();

    let r = transfer(&alice, id, &personal).await;
    expect_problem(&r, 403, "transfer_not_allowed");
    assert_eq!(listed(&alice, &ws).await, [id]);
    assert!(listed(&alice, &personal).await.is_empty());
}

async fn transfer_personal_to_org_is_allowed(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let personal = personal_ws(&a);
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let db = create(&alice, &personal, "postgres", "db").await;
    let id = db["id"].as_str().unwrap();

    let r = transfer(&alice, id, &ws).await;
    assert!(r.is_success(), "personal → org: {} {:?}", r.status, r.body);
    assert!(listed(&alice, &personal).await.is_empty());
    let list = alice.get(&format!("/v1/workspaces/{ws}/resources")).await.unwrap();
    let item = list.body["items"].as_array().and_then(|i| i.first()).cloned().unwrap_or(Value::Null);
    assert_eq!(item["id"], id, "{:?}", list.body);
    assert_eq!(item["workspace_id"], ws.as_str());
    if let Some(o) = item.get("org_id") {
        assert_eq!(o, org.as_str(), "the moved resource must belong to the target org: {item:?}");
    }
    // It now counts against the org (no quota on team), not the personal free plan.
    create(&alice, &personal, "postgres", "new db").await;
    let r = alice.delete(&format!("/v1/resources/{id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);

    // Someone else's personal workspace is not a target: they are not its admin.
    let (bob, b) = s.signup("Bob").await;
    let bob_personal = personal_ws(&b);
    let mine = create(&alice, &personal, "app", "mine").await;
    let r = transfer(&alice, mine["id"].as_str().unwrap(), &bob_personal).await;
    assert!(r.status == 404 || r.status == 403, "{} {:?}", r.status, r.body);
    assert!(listed(&bob, &bob_personal).await.is_empty());
}

/// The target org's quota applies to a transfer from another org (rules.md, Resources).
async fn transfer_respects_the_target_quota(backend: Backend) {
    let Some(s) = TestServer::start_with(backend, |st| {
        let mut plans = roost_domain::Catalog::builtin().all().to_vec();
        for p in &mut plans {
            if p.id == "team" {
                p.resource_quotas.insert("postgres".into(), 1);
            }
        }
        st.catalog = roost_domain::Catalog::new(plans, "free").expect("catalog");
    })
    .await
    else {
        eprintln!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let (alice, a) = s.signup("Alice").await;
    let personal = personal_ws(&a);
    let (org, ws1) = s.org(&alice, "Acme", "team").await;
    let ws2 = new_workspace(&alice, &org, "Two").await;
    let in_org = create(&alice, &ws1, "postgres", "org db").await;
    let mine = create(&alice, &personal, "postgres", "my db").await;
    let mine_id = mine["id"].as_str().unwrap();

    // Within one org the count does not change: allowed even at the limit.
    let r = transfer(&alice, in_org["id"].as_str().unwrap(), &ws2).await;
    assert!(r.is_success(), "{} {:?}", r.status, r.body);
    // Into the full org: refused, nothing moves.
    let r = transfer(&alice, mine_id, &ws1).await;
    expect_problem(&r, 403, "plan_limit");
    assert!(r.body["limit"].as_str().is_some_and(|l| l.contains("postgres")), "{:?}", r.body);
    assert_eq!(listed(&alice, &personal).await, [mine_id]);
    // Once there is room, it moves.
    let r = alice.delete(&format!("/v1/resources/{}", in_org["id"].as_str().unwrap())).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = transfer(&alice, mine_id, &ws1).await;
    assert!(r.is_success(), "{} {:?}", r.status, r.body);
    assert_eq!(listed(&alice, &ws1).await, [mine_id]);
    let r = alice
        .post(&format!("/v1/workspaces/{ws2}/resources"), &json!({"kind": "postgres", "name": "over"}))
        .await
        .unwrap();
    expect_problem(&r, 403, "plan_limit");
}

mod transfer_respects_the_target_quota {
    use roost_test_kit::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::transfer_respects_the_target_quota(Backend::Sqlite).await;
    }

    pg_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::transfer_respects_the_target_quota(Backend::Postgres).await;
    }
    }
}

both_backends!(
    transfer_between_workspaces_of_one_org,
    transfer_org_to_personal_is_refused,
    transfer_personal_to_org_is_allowed,
);
