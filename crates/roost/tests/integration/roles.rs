//! The role matrix of ARCHITECTURE.md, walked cell by cell through HTTP.
//!
//! Seven callers — org owner, org admin, org billing, org member (no workspace role), and three org
//! members who are admin, member and viewer of a non-primary workspace W — each try one
//! representative request per row. ✓ must answer 2xx; a blank must answer 403 or 404 (a problem
//! document). Destructive rows (delete org, transfer ownership, delete workspace, remove a member,
//! revoke a key) get a fresh org, workspace, member or key for every cell.
//!
//! Not walked yet: "top up, payment, auto-reload", "charge credits", the workspace budget and
//! "transactions"/usage — the credit ledger (API.md § Credits) is not built. Add those rows when it is.

use roost::{Client, Response};
use serde_json::{Value, json};

use crate::support::{create_ws, fresh_email, uid};
use roost_test_kit::TestServer;

const ROLES: [&str; 7] = ["org owner", "org admin", "org billing", "org member", "ws admin", "ws member", "ws viewer"];
const OWNER: usize = 0;

const Y: bool = true;
const N: bool = false;

/// One representative request per row of the matrix.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// `PUT /v1/orgs/{org}/plan` — row "change plan, top up, payment, auto-reload".
    ChangePlan,
    /// `DELETE /v1/orgs/{org}` — row "delete org, transfer ownership".
    DeleteOrg,
    /// `POST /v1/orgs/{org}/transfer-ownership` — row "delete org, transfer ownership".
    TransferOwnership,
    /// `POST /v1/orgs/{org}/invitations` — row "invite/remove org members, create/delete workspaces".
    InviteMember,
    /// `DELETE /v1/orgs/{org}/members/{someone else}` — same row.
    RemoveMember,
    /// `POST /v1/orgs/{org}/workspaces` — same row.
    CreateWorkspace,
    /// `DELETE /v1/workspaces/{ws}` — same row, "(not delete)" for admins.
    DeleteWorkspace,
    /// `PUT /v1/workspaces/{W}/members/{user}` — row "manage a workspace's members, keys, budget".
    ManageWsMembers,
    /// `DELETE /v1/keys/{id}` of a key someone else created in W — same row.
    ManageWsKeys,
    /// `POST /v1/workspaces/{W}/keys` — row "create keys, resources; charge credits".
    CreateKey,
    /// `POST /v1/workspaces/{W}/resources` — same row.
    CreateResource,
    /// `GET /v1/workspaces/{W}` — row "read workspace, transactions" (billing: sees it, per docs/rules.md).
    ReadWorkspace,
    /// `GET /v1/workspaces/{W}/resources` — same row; billing reads usage only, not the contents.
    ReadWorkspaceContents,
    /// `GET /v1/orgs/{org}/audit` — row "read the whole audit log": ✓ sees others' actions too;
    /// everyone else gets 200 with their own actions only.
    ReadWholeAudit,
    /// `PATCH /v1/orgs/{org}` — API.md: owner or admin (not a row of the table; checked alongside).
    RenameOrg,
    /// `GET /v1/workspaces/{primary}`, a workspace the caller was not added to — docs/rules.md:
    /// owner, admin and billing see every workspace.
    SeeUnjoinedWorkspace,
}

/// The expected table, columns in [`ROLES`] order.
const EXPECTED: &[(Action, [bool; 7])] = &[
    // columns: owner, admin, billing, member (org); admin, member, viewer (of W)
    //                                   ow ad bi me wa wm wv
    (Action::ChangePlan, /*          */ [Y, N, Y, N, N, N, N]),
    (Action::DeleteOrg, /*           */ [Y, N, N, N, N, N, N]),
    (Action::TransferOwnership, /*   */ [Y, N, N, N, N, N, N]),
    (Action::InviteMember, /*        */ [Y, Y, N, N, N, N, N]),
    (Action::RemoveMember, /*        */ [Y, Y, N, N, N, N, N]),
    (Action::CreateWorkspace, /*     */ [Y, Y, N, N, N, N, N]),
    (Action::DeleteWorkspace, /*     */ [Y, N, N, N, N, N, N]),
    (Action::ManageWsMembers, /*     */ [Y, Y, N, N, Y, N, N]),
    (Action::ManageWsKeys, /*        */ [Y, Y, N, N, Y, N, N]),
    (Action::CreateKey, /*           */ [Y, Y, N, N, Y, Y, N]),
    (Action::CreateResource, /*      */ [Y, Y, N, N, Y, Y, N]),
    (Action::ReadWorkspace, /*       */ [Y, Y, Y, N, Y, Y, Y]),
    (Action::ReadWorkspaceContents, /**/ [Y, Y, N, N, Y, Y, Y]),
    (Action::ReadWholeAudit, /*      */ [Y, Y, N, N, N, N, N]),
    (Action::RenameOrg, /*           */ [Y, Y, N, N, N, N, N]),
    (Action::SeeUnjoinedWorkspace, /**/ [Y, Y, Y, N, N, N, N]),
];

/// The seven callers, plus a spare org member who is the target of member management.
struct People {
    clients: Vec<Client>,
    signups: Vec<Value>,
    spare: (Client, Value),
}

/// An org (plan `business`: no seat or workspace limits) with the seven roles in place.
struct Fixture {
    org: String,
    primary: String,
    /// The non-primary workspace where the last three callers hold their workspace roles.
    w: String,
}

async fn people(s: &TestServer) -> People {
    let mut clients = Vec::new();
    let mut signups = Vec::new();
    for name in ["Owner", "Admin", "Billing", "Member", "WsAdmin", "WsMember", "WsViewer"] {
        let (c, sg) = s.signup(name).await;
        clients.push(c);
        signups.push(sg);
    }
    let spare = s.signup("Spare").await;
    People { clients, signups, spare }
}

/// Assigns the three workspace roles in `ws`.
async fn ws_roles(p: &People, ws: &str) {
    for (i, role) in [(4, "admin"), (5, "member"), (6, "viewer")] {
        let r = p.clients[OWNER]
            .put(&format!("/v1/workspaces/{ws}/members/{}", uid(&p.signups[i])), &json!({"role": role}))
            .await
            .unwrap();
        assert!(r.is_success(), "setup: ws role {role}: {} {}", r.status, r.body);
    }
}

async fn fixture(s: &TestServer, p: &People) -> Fixture {
    let owner = &p.clients[OWNER];
    let (org, primary) = s.org(owner, "Matrix", "business").await;
    let org_roles = ["owner", "admin", "billing", "member", "member", "member", "member"];
    for ((client, signup), role) in p.clients.iter().zip(&p.signups).zip(org_roles).skip(1) {
        s.add_member(owner, &org, client, signup, role).await;
    }
    s.add_member(owner, &org, &p.spare.0, &p.spare.1, "member").await;
    let w = create_ws(owner, &org, "W").await;
    ws_roles(p, &w).await;
    Fixture { org, primary, w }
}

/// What one cell did: the status, and whether that counts as "allowed".
struct Outcome {
    status: u16,
    allowed: bool,
    /// A problem beyond allowed/denied (e.g. a denial that is not a problem document).
    complaint: Option<String>,
}

fn judge(r: &Response) -> Outcome {
    let allowed = r.is_success();
    let complaint = if allowed {
        None
    } else if !matches!(r.status, 403 | 404) {
        Some(format!("neither 2xx nor 403/404: {} {}", r.status, r.body))
    } else if !r.content_type.starts_with("application/problem+json") || r.code().is_none() {
        Some(format!("denial is not a problem document: {} {}", r.content_type, r.body))
    } else {
        None
    };
    Outcome { status: r.status, allowed, complaint }
}

/// Mutable state of the shared fixture across cells.
struct State {
    plan: &'static str,
}

async fn perform(s: &TestServer, p: &People, fx: &Fixture, st: &mut State, action: Action, role: usize) -> Outcome {
    let who = &p.clients[role];
    let me = uid(&p.signups[role]);
    match action {
        Action::ChangePlan => {
            let next = if st.plan == "business" { "scale" } else { "business" };
            let r = who.put(&format!("/v1/orgs/{}/plan", fx.org), &json!({"plan": next})).await.unwrap();
            if r.is_success() {
                st.plan = next;
            }
            judge(&r)
        }
        Action::DeleteOrg => {
            let fresh = fixture(s, p).await;
            let r = who.delete(&format!("/v1/orgs/{}", fresh.org)).await.unwrap();
            let mut o = judge(&r);
            let still = p.clients[OWNER].get(&format!("/v1/orgs/{}", fresh.org)).await.unwrap();
            if o.allowed == (still.status == 200) {
                o.complaint = Some(format!(
                    "answered {} but the org is {}",
                    r.status,
                    if still.status == 200 { "still there" } else { "gone" }
                ));
            }
            o
        }
        Action::TransferOwnership => {
            let fresh = fixture(s, p).await;
            let target = uid(&p.spare.1);
            let r = who
                .post(&format!("/v1/orgs/{}/transfer-ownership", fresh.org), &json!({"user_id": target}))
                .await
                .unwrap();
            let mut o = judge(&r);
            let org = p.spare.0.get(&format!("/v1/orgs/{}", fresh.org)).await.unwrap();
            if o.allowed != (org.body["owner_id"] == target.as_str()) {
                o.complaint = Some(format!("answered {} but owner_id is {}", r.status, org.body["owner_id"]));
            }
            o
        }
        Action::InviteMember => {
            let r = who
                .post(
                    &format!("/v1/orgs/{}/invitations", fx.org),
                    &json!({"email": fresh_email("invitee"), "role": "member"}),
                )
                .await
                .unwrap();
            judge(&r)
        }
        Action::RemoveMember => {
            let (victim, victim_s) = s.signup("Victim").await;
            s.add_member(&p.clients[OWNER], &fx.org, &victim, &victim_s, "member").await;
            let r = who.delete(&format!("/v1/orgs/{}/members/{}", fx.org, uid(&victim_s))).await.unwrap();
            let mut o = judge(&r);
            let still = victim.get(&format!("/v1/orgs/{}", fx.org)).await.unwrap();
            if o.allowed == (still.status == 200) {
                o.complaint = Some(format!(
                    "answered {} but the victim {} a member",
                    r.status,
                    if still.status == 200 { "is still" } else { "is no longer" }
                ));
            }
            o
        }
        Action::CreateWorkspace => judge(
            &who.post(&format!("/v1/orgs/{}/workspaces", fx.org), &json!({"name": format!("by {}", ROLES[role])}))
                .await
                .unwrap(),
        ),
        Action::DeleteWorkspace => {
            let ws = create_ws(&p.clients[OWNER], &fx.org, "Disposable").await;
            ws_roles(p, &ws).await;
            let r = who.delete(&format!("/v1/workspaces/{ws}")).await.unwrap();
            let mut o = judge(&r);
            let still = p.clients[OWNER].get(&format!("/v1/workspaces/{ws}")).await.unwrap();
            if o.allowed == (still.status == 200) {
                o.complaint = Some(format!(
                    "answered {} but the workspace {}",
                    r.status,
                    if still.status == 200 { "is still there" } else { "is gone" }
                ));
            }
            o
        }
        Action::ManageWsMembers => {
            let r = who
                .put(&format!("/v1/workspaces/{}/members/{}", fx.w, uid(&p.spare.1)), &json!({"role": "viewer"}))
                .await
                .unwrap();
            judge(&r)
        }
        Action::ManageWsKeys => {
            let key = p.clients[OWNER]
                .post(&format!("/v1/workspaces/{}/keys", fx.w), &json!({"name": "owner's"}))
                .await
                .unwrap();
            assert_eq!(key.status, 201, "setup: owner creates a key: {}", key.body);
            let r = who.delete(&format!("/v1/keys/{}", key.str("id"))).await.unwrap();
            let mut o = judge(&r);
            let used = s.client.with_token(key.str("secret")).get("/v1/workspaces/current").await.unwrap();
            if o.allowed != (used.status == 401) {
                o.complaint = Some(format!("answered {} but the key then got {}", r.status, used.status));
            }
            o
        }
        Action::CreateKey => judge(
            &who.post(&format!("/v1/workspaces/{}/keys", fx.w), &json!({"name": format!("{}'s key", ROLES[role])}))
                .await
                .unwrap(),
        ),
        Action::CreateResource => {
            let body = json!({"kind": "app", "name": format!("{}'s app", ROLES[role])});
            judge(&who.post(&format!("/v1/workspaces/{}/resources", fx.w), &body).await.unwrap())
        }
        Action::ReadWorkspace => {
            let r = who.get(&format!("/v1/workspaces/{}", fx.w)).await.unwrap();
            let mut o = judge(&r);
            if o.allowed && r.body["id"] != fx.w.as_str() {
                o.complaint = Some(format!("200 with another body: {}", r.body));
            }
            o
        }
        Action::ReadWorkspaceContents => judge(&who.get(&format!("/v1/workspaces/{}/resources", fx.w)).await.unwrap()),
        Action::ReadWholeAudit => {
            let r = who.get(&format!("/v1/orgs/{}/audit?limit=500", fx.org)).await.unwrap();
            let mut o = judge(&r);
            if r.status != 200 {
                o.complaint = Some(format!(
                    "everyone in the org reads the audit log (their own actions at least): {} {}",
                    r.status, r.body
                ));
                o.allowed = false;
                return o;
            }
            let items = r.body["items"].as_array().cloned().unwrap_or_default();
            let others = items.iter().filter(|e| e["actor"]["id"] != me.as_str()).count();
            o.allowed = others > 0;
            // Asking for someone else's actions does not widen a restricted view.
            let owner_id = uid(&p.signups[OWNER]);
            let filtered = who.get(&format!("/v1/orgs/{}/audit?actor={owner_id}", fx.org)).await.unwrap();
            let leaked =
                filtered.body["items"].as_array().is_some_and(|a| a.iter().any(|e| e["actor"]["id"] != me.as_str()));
            if !o.allowed && leaked {
                o.complaint = Some(format!("?actor= shows others' actions: {}", filtered.body));
            }
            if o.allowed && !leaked && role != OWNER {
                o.complaint = Some(format!("?actor={owner_id} shows nothing of the owner's: {}", filtered.body));
            }
            o
        }
        Action::RenameOrg => judge(
            &who.patch(&format!("/v1/orgs/{}", fx.org), &json!({"name": format!("renamed by {}", ROLES[role])}))
                .await
                .unwrap(),
        ),
        Action::SeeUnjoinedWorkspace => {
            // The last four callers were never added to the primary workspace.
            judge(&who.get(&format!("/v1/workspaces/{}", fx.primary)).await.unwrap())
        }
    }
}

async fn role_matrix(s: TestServer) {
    let p = people(&s).await;
    let fx = fixture(&s, &p).await;
    let mut st = State { plan: "business" };
    let mut failures = Vec::new();
    let mut table = String::from("action                    owner  admin  billing member wsadm  wsmem  wsview\n");
    for (action, expected) in EXPECTED {
        table.push_str(&format!("{:<26}", format!("{action:?}")));
        for (role, want) in expected.iter().enumerate() {
            let o = perform(&s, &p, &fx, &mut st, *action, role).await;
            let mark = if o.allowed { "✓" } else { "·" };
            table.push_str(&format!("{mark}{:<6}", o.status));
            if o.allowed != *want {
                failures.push(format!(
                    "{action:?} as {}: expected {}, got {} ({})",
                    ROLES[role],
                    if *want { "allowed" } else { "denied" },
                    if o.allowed { "allowed" } else { "denied" },
                    o.status
                ));
            }
            if let Some(c) = o.complaint {
                failures.push(format!("{action:?} as {}: {c}", ROLES[role]));
            }
        }
        table.push('\n');
    }
    println!("{table}");
    assert!(failures.is_empty(), "role matrix mismatches:\n{}\n\n{table}", failures.join("\n"));
}

both_backends!(role_matrix);
