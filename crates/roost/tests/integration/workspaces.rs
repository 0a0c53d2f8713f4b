//! Scenarios: workspaces — creation and the workspace limit, who sees which, reading, renaming
//! and deleting them, and their members.

use roost::Client;
use serde_json::{Value, json};

use crate::support::{create_ws, expect_invalid, expect_plan_limit, expect_problem, expect_status, list_all, uid};
use roost_test_kit::TestServer;

/// The ids of a list body's items.
fn ids(body: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    v.sort_unstable();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v
}

/// An org on `plan` owned by a new user, with an admin, a billing and a plain member.
struct Org {
    id: String,
    primary: String,
    owner: Client,
    admin: Client,
    admin_s: Value,
    billing: Client,
    member: Client,
    member_s: Value,
}

async fn org(s: &TestServer, plan: &str) -> Org {
    let (owner, _) = s.signup("Owner").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (billing, billing_s) = s.signup("Billing").await;
    let (member, member_s) = s.signup("Member").await;
    let (id, primary) = s.org(&owner, "Acme", plan).await;
    s.add_member(&owner, &id, &admin, &admin_s, "admin").await;
    s.add_member(&owner, &id, &billing, &billing_s, "billing").await;
    s.add_member(&owner, &id, &member, &member_s, "member").await;
    Org { id, primary, owner, admin, admin_s, billing, member, member_s }
}

async fn create_workspace(s: TestServer) {
    let o = org(&s, "team").await;
    let path = format!("/v1/orgs/{}/workspaces", o.id);

    let r = o.owner.post(&path, &json!({"name": "Staging"})).await.unwrap();
    expect_status(&r, 201);
    assert!(r.str("id").starts_with("ws_"), "{}", r.body);
    assert_eq!(r.body["name"], "Staging");
    assert_eq!(r.body["org_id"], o.id.as_str());
    assert_eq!(r.body["primary"], false);

    let by_admin = o.admin.post(&path, &json!({"name": "Admin's"})).await.unwrap();
    expect_status(&by_admin, 201);
    // The creator is the new workspace's admin.
    let members = o.owner.get(&format!("/v1/workspaces/{}/members", by_admin.str("id"))).await.unwrap();
    expect_status(&members, 200);
    let me =
        members.body["items"].as_array().unwrap().iter().find(|m| m["user_id"] == uid(&o.admin_s).as_str()).cloned();
    assert_eq!(me.map(|m| m["role"].clone()), Some(json!("admin")), "{}", members.body);

    expect_problem(&o.member.post(&path, &json!({"name": "Nope"})).await.unwrap(), 403, "forbidden");
    expect_problem(&o.billing.post(&path, &json!({"name": "Nope"})).await.unwrap(), 403, "forbidden");
    expect_invalid(&o.owner.post(&path, &json!({"name": ""})).await.unwrap(), "name");
    expect_invalid(&o.owner.post(&path, &json!({})).await.unwrap(), "name");
    assert_eq!(list_all(&o.owner, &path, 50).await.len(), 3);

    // build allows one workspace: the primary.
    let (builder, _) = s.signup("Builder").await;
    let (small, _) = s.org(&builder, "Small", "build").await;
    let over = builder.post(&format!("/v1/orgs/{small}/workspaces"), &json!({"name": "Second"})).await.unwrap();
    expect_plan_limit(&over, 403, "max_workspaces");
    // launch allows three.
    expect_status(&builder.put(&format!("/v1/orgs/{small}/plan"), &json!({"plan": "launch"})).await.unwrap(), 200);
    let two = create_ws(&builder, &small, "Two").await;
    create_ws(&builder, &small, "Three").await;
    let over = builder.post(&format!("/v1/orgs/{small}/workspaces"), &json!({"name": "Four"})).await.unwrap();
    expect_plan_limit(&over, 403, "max_workspaces");
    // Deleting one frees its place.
    expect_status(&builder.delete(&format!("/v1/workspaces/{two}")).await.unwrap(), 204);
    create_ws(&builder, &small, "Four").await;
}

async fn list_workspaces_by_role(s: TestServer) {
    let o = org(&s, "team").await;
    let (outsider, _) = s.signup("Outsider").await;
    let w1 = create_ws(&o.owner, &o.id, "One").await;
    let w2 = create_ws(&o.owner, &o.id, "Two").await;
    let put = o
        .owner
        .put(&format!("/v1/workspaces/{w1}/members/{}", uid(&o.member_s)), &json!({"role": "member"}))
        .await
        .unwrap();
    expect_status(&put, 200);
    let path = format!("/v1/orgs/{}/workspaces", o.id);

    let all = sorted(vec![o.primary.clone(), w1.clone(), w2.clone()]);
    for who in [&o.owner, &o.admin, &o.billing] {
        let r = who.get(&path).await.unwrap();
        expect_status(&r, 200);
        assert_eq!(ids(&r.body), all);
    }
    let r = o.member.get(&path).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(ids(&r.body), vec![w1.clone()], "a member sees only the workspaces they were added to");
    let primary_item = o.owner.get(&path).await.unwrap().body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == o.primary.as_str())
        .cloned()
        .unwrap();
    assert_eq!(primary_item["primary"], true);
    assert_eq!(primary_item["org_id"], o.id.as_str());

    expect_status(&o.member.get(&format!("/v1/workspaces/{w1}")).await.unwrap(), 200);
    let hidden = o.member.get(&format!("/v1/workspaces/{w2}")).await.unwrap();
    expect_problem(&hidden, 404, "not_found");
    let missing =
        o.member.get(&format!("/v1/workspaces/{}", roost_domain::IdKind::Workspace.generate())).await.unwrap();
    assert_eq!(hidden.body, missing.body, "an unseen workspace answers like a missing one");
    expect_status(&o.billing.get(&format!("/v1/workspaces/{w2}")).await.unwrap(), 200);
    expect_problem(&outsider.get(&format!("/v1/workspaces/{w1}")).await.unwrap(), 404, "not_found");
    expect_problem(&outsider.get(&path).await.unwrap(), 404, "not_found");

    // Paging over the list.
    let paged: Vec<String> =
        list_all(&o.owner, &path, 1).await.iter().map(|w| w["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(sorted(paged), all);
    expect_invalid(&o.owner.get(&format!("{path}?limit=0")).await.unwrap(), "limit");
}

async fn get_patch_delete_workspace(s: TestServer) {
    let o = org(&s, "team").await;
    let w = create_ws(&o.owner, &o.id, "Staging").await;
    let path = format!("/v1/workspaces/{w}");
    let put = o.owner.put(&format!("{path}/members/{}", uid(&o.member_s)), &json!({"role": "viewer"})).await.unwrap();
    expect_status(&put, 200);

    let got = o.member.get(&path).await.unwrap();
    expect_status(&got, 200);
    assert_eq!(got.body["id"], w.as_str());
    assert_eq!(got.body["name"], "Staging");
    assert_eq!(got.body["org_id"], o.id.as_str());
    assert_eq!(got.body["primary"], false);

    let renamed = o.owner.patch(&path, &json!({"name": "Production"})).await.unwrap();
    expect_status(&renamed, 200);
    assert_eq!(o.member.get(&path).await.unwrap().body["name"], "Production");
    expect_status(&o.admin.patch(&path, &json!({"name": "Prod"})).await.unwrap(), 200);
    expect_problem(&o.member.patch(&path, &json!({"name": "Viewer's"})).await.unwrap(), 403, "forbidden");
    expect_invalid(&o.owner.patch(&path, &json!({"name": ""})).await.unwrap(), "name");

    // A key of the workspace, and a member working in it.
    let key = o.owner.post(&format!("{path}/keys"), &json!({"name": "deploy"})).await.unwrap();
    expect_status(&key, 201);
    let key = s.client.with_token(key.str("secret"));
    let cur = key.get("/v1/workspaces/current").await.unwrap();
    expect_status(&cur, 200);
    assert_eq!(cur.body["id"], w.as_str());
    expect_status(&o.member.put("/v1/me/active-workspace", &json!({"workspace_id": w})).await.unwrap(), 200);

    expect_problem(&o.admin.delete(&path).await.unwrap(), 403, "forbidden");
    expect_problem(&o.member.delete(&path).await.unwrap(), 403, "forbidden");
    expect_problem(&o.billing.delete(&path).await.unwrap(), 403, "forbidden");
    expect_problem(
        &o.owner.delete(&format!("/v1/workspaces/{}", o.primary)).await.unwrap(),
        409,
        "workspace_protected",
    );
    expect_status(&o.owner.get(&path).await.unwrap(), 200);

    expect_status(&o.owner.delete(&path).await.unwrap(), 204);
    expect_problem(&o.owner.get(&path).await.unwrap(), 404, "not_found");
    expect_problem(&o.owner.delete(&path).await.unwrap(), 404, "not_found");
    expect_problem(&key.get("/v1/workspaces/current").await.unwrap(), 401, "unauthenticated");
    // The member's active workspace falls back to their personal one.
    let me = o.member.get("/v1/me").await.unwrap();
    assert_eq!(me.body["active_workspace_id"], o.member_s["personal"]["workspace_id"]);
    let listed = o.owner.get(&format!("/v1/orgs/{}/workspaces", o.id)).await.unwrap();
    assert_eq!(ids(&listed.body), vec![o.primary.clone()]);
}

async fn workspace_members(s: TestServer) {
    let o = org(&s, "team").await;
    let (_outsider, out_s) = s.signup("Outsider").await;
    let (x, x_s) = s.signup("X").await;
    s.add_member(&o.owner, &o.id, &x, &x_s, "member").await;
    let w = create_ws(&o.owner, &o.id, "Staging").await;
    let m = |signup: &Value| format!("/v1/workspaces/{w}/members/{}", uid(signup));

    for role in ["viewer", "member", "admin"] {
        let r = o.owner.put(&m(&o.member_s), &json!({"role": role})).await.unwrap();
        assert!(r.is_success(), "PUT role {role}: {} {}", r.status, r.body);
        let list = o.owner.get(&format!("/v1/workspaces/{w}/members")).await.unwrap();
        expect_status(&list, 200);
        let it =
            list.body["items"].as_array().unwrap().iter().find(|i| i["user_id"] == uid(&o.member_s).as_str()).cloned();
        let it = it.unwrap_or_else(|| panic!("member missing from {}", list.body));
        assert_eq!(it["role"], role);
        assert_eq!(it["email"], o.member_s["user"]["email"]);
        let me = o.member.get("/v1/me").await.unwrap();
        let org_m = crate::support::membership(&me.body, &o.id).unwrap();
        let ws = org_m["workspaces"].as_array().unwrap().iter().find(|x| x["id"] == w.as_str()).cloned();
        assert_eq!(ws.map(|x| x["role"].clone()), Some(json!(role)), "{org_m}");
    }
    expect_invalid(&o.owner.put(&m(&o.member_s), &json!({"role": "owner"})).await.unwrap(), "role");
    expect_invalid(&o.owner.put(&m(&o.member_s), &json!({"role": "billing"})).await.unwrap(), "role");
    expect_invalid(&o.owner.put(&m(&o.member_s), &json!({})).await.unwrap(), "role");
    expect_problem(&o.owner.put(&m(&out_s), &json!({"role": "member"})).await.unwrap(), 404, "not_found");

    // Now a workspace admin, the member manages the workspace's members; X, a viewer, does not.
    expect_status(&o.member.put(&m(&x_s), &json!({"role": "viewer"})).await.unwrap(), 200);
    expect_problem(&x.put(&m(&x_s), &json!({"role": "admin"})).await.unwrap(), 403, "forbidden");
    expect_problem(&x.delete(&m(&o.member_s)).await.unwrap(), 403, "forbidden");
    // Org admins act as workspace admins everywhere.
    expect_status(&o.admin.put(&m(&x_s), &json!({"role": "member"})).await.unwrap(), 200);
    // Billing sees the workspace but does not manage it.
    let b = o.billing.put(&m(&x_s), &json!({"role": "admin"})).await.unwrap();
    expect_problem(&b, 403, "forbidden");

    // Removing X from the workspace: X loses it at once but stays in the org.
    expect_status(&x.get(&format!("/v1/workspaces/{w}")).await.unwrap(), 200);
    expect_status(&o.owner.delete(&m(&x_s)).await.unwrap(), 204);
    expect_problem(&x.get(&format!("/v1/workspaces/{w}")).await.unwrap(), 404, "not_found");
    expect_problem(&x.in_workspace(&w).get("/v1/workspaces/current").await.unwrap(), 404, "not_found");
    expect_status(&x.get(&format!("/v1/orgs/{}", o.id)).await.unwrap(), 200);
    let list = o.owner.get(&format!("/v1/workspaces/{w}/members")).await.unwrap();
    assert!(
        !list.body["items"].as_array().unwrap().iter().any(|i| i["user_id"] == uid(&x_s).as_str()),
        "{}",
        list.body
    );
    expect_problem(&o.owner.delete(&m(&x_s)).await.unwrap(), 404, "not_found");
}

/// docs/rules.md: the active workspace falls back to the personal workspace when it is deleted —
/// also for org owners and admins, who could enter the org's other workspaces.
async fn deleted_active_workspace_falls_back_to_personal(s: TestServer) {
    let o = org(&s, "team").await;
    let w = create_ws(&o.owner, &o.id, "Doomed").await;
    expect_status(&o.admin.put("/v1/me/active-workspace", &json!({"workspace_id": w})).await.unwrap(), 200);
    assert_eq!(o.admin.get("/v1/workspaces/current").await.unwrap().body["id"], w.as_str());
    expect_status(&o.owner.delete(&format!("/v1/workspaces/{w}")).await.unwrap(), 204);
    let personal = o.admin_s["personal"]["workspace_id"].as_str().unwrap();
    assert_eq!(o.admin.get("/v1/me").await.unwrap().body["active_workspace_id"], personal);
    assert_eq!(o.admin.get("/v1/workspaces/current").await.unwrap().body["id"], personal);
}

/// The workspace limit holds under concurrent creation: launch allows three workspaces.
async fn concurrent_create_at_limit(s: TestServer) {
    let (owner, _) = s.signup("Owner").await;
    let (org, _) = s.org(&owner, "Racy", "launch").await;
    let path = format!("/v1/orgs/{org}/workspaces");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (c, p) = (owner.clone(), path.clone());
        set.spawn(async move { c.post(&p, &json!({"name": format!("ws {i}")})).await.unwrap() });
    }
    let mut created = 0;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        if r.status == 201 {
            created += 1;
        } else {
            expect_plan_limit(&r, 403, "max_workspaces");
        }
    }
    assert_eq!(created, 2, "the primary plus two more");
    assert_eq!(list_all(&owner, &path, 50).await.len(), 3);
}

both_backends!(
    create_workspace,
    list_workspaces_by_role,
    get_patch_delete_workspace,
    workspace_members,
    deleted_active_workspace_falls_back_to_personal,
    concurrent_create_at_limit,
);
