//! The role matrix through the pages: admin, billing, member and viewer each see exactly the
//! controls their role allows, and a forged post for anything else is refused as the API refuses it.

use roost_test_kit::TestServer;

use super::web::{Page, Web};

both_backends!(each_role_sees_and_does_what_the_matrix_allows);

/// A team org made through the pages: (owner, org id, primary workspace id).
pub(crate) async fn team(s: &TestServer) -> (Web, String, String) {
    let (owner, _) = Web::sign_up(s, "Olivia").await;
    let new = owner.get("/app/orgs/new").await;
    let r = owner.post(&new, "/app/orgs", &[("name", "Acme"), ("plan", "team")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let org = r.location.unwrap().trim_start_matches("/app/o/").split('?').next().unwrap().to_string();
    let ws = owner.get(&format!("/app/o/{org}")).await.attr(r#"<li><a href="/app/w/"#).unwrap();
    (owner, org, ws)
}

/// Someone invited through the members page with `role` (and `ws_role` in the primary workspace)
/// who accepts through the link.
pub(crate) async fn join(
    s: &TestServer,
    owner: &Web,
    org: &str,
    ws: &str,
    name: &str,
    role: &str,
    ws_role: Option<&str>,
) -> Web {
    let (w, email) = Web::sign_up(s, name).await;
    let members = owner.get(&format!("/app/o/{org}/members")).await;
    let key = format!("ws_role_{ws}");
    let mut fields = vec![("email", email.as_str()), ("role", role)];
    if let Some(r) = ws_role {
        fields.extend([("ws", ws), (key.as_str(), r)]);
    }
    let r = owner.post(&members, &format!("/app/o/{org}/invitations"), &fields).await;
    assert_eq!(r.status, 200, "invite {role}: {}", r.html);
    let link = r.html.split(r#"id="invite-link">"#).nth(1).unwrap().split('<').next().unwrap().replace("&amp;", "&");
    let link = link
        .split_once("/app/")
        .map(|(origin, path)| {
            assert_eq!(origin, s.base, "the link names this server");
            format!("/app/{path}")
        })
        .unwrap();
    let accept = w.get(&link).await;
    let token = accept.attr(r#"name="token" value=""#).unwrap();
    let r = w.post(&accept, "/app/invitations/accept", &[("token", &token)]).await;
    assert_eq!(r.status, 303, "accept {role}: {}", r.html);
    w
}

/// What a page offers, by the markers of its controls.
struct Offers {
    invite: bool,
    top_up: bool,
    usage: bool,
    create_key: bool,
    budget: bool,
    create_ws: bool,
    transfer: bool,
    delete_org: bool,
    alert: bool,
    reload: bool,
    events: bool,
    webhooks: bool,
}

async fn offers(w: &Web, org: &str, ws: &str) -> Offers {
    let members = w.get(&format!("/app/o/{org}/members")).await;
    let credits = w.get(&format!("/app/o/{org}/credits")).await;
    let ws_page = w.get(&format!("/app/w/{ws}")).await;
    let overview = w.get(&format!("/app/o/{org}")).await;
    for p in [&members, &credits, &ws_page, &overview] {
        assert_eq!(p.status, 200, "{}", p.html);
    }
    // The webhooks page opens exactly for who has its link.
    let webhooks = overview.has(&format!(r#"href="/app/o/{org}/webhooks""#));
    let page = w.get(&format!("/app/o/{org}/webhooks")).await;
    assert_eq!(page.status, if webhooks { 200 } else { 403 }, "{}", page.html);
    Offers {
        invite: members.has(r#"id="send-invite""#),
        top_up: credits.has(r#"/topup""#),
        usage: credits.has(r#"id="u-h""#),
        create_key: ws_page.has(r#"id="create-key""#),
        budget: ws_page.has(&format!(r#"action="/app/w/{ws}/budget""#)),
        create_ws: overview.has(r#"id="create-ws""#),
        transfer: members.has(&format!(r#"action="/app/o/{org}/transfer""#)),
        delete_org: overview.has(r#"id="delete-org""#),
        alert: credits.has(r#"/alerts""#),
        reload: credits.has(r#"/auto-reload""#),
        events: credits.has(r#"id="ev-h""#),
        webhooks,
    }
}

/// A forged post: what it tries, who sends it, where, with which fields.
type Forged<'a> = (&'a str, &'a Web, &'a str, Vec<(&'a str, &'a str)>);

async fn each_role_sees_and_does_what_the_matrix_allows(s: TestServer) {
    let (owner, org, ws) = team(&s).await;
    let admin = join(&s, &owner, &org, &ws, "Adam", "admin", None).await;
    let billing = join(&s, &owner, &org, &ws, "Bill", "billing", None).await;
    let member = join(&s, &owner, &org, &ws, "Mia", "member", Some("member")).await;
    let viewer = join(&s, &owner, &org, &ws, "Vic", "member", Some("viewer")).await;

    // (who, invite, top up, usage, create key, budget, create workspace, transfer ownership, delete org,
    //  low-balance alert, auto-reload, events, webhooks)
    let (y, n) = (true, false);
    let table: [(&str, &Web, [bool; 12]); 5] = [
        ("owner", &owner, [y, y, y, y, y, y, y, y, y, y, y, y]),
        ("admin", &admin, [y, n, y, y, y, y, n, n, y, n, y, y]),
        ("billing", &billing, [n, y, y, n, n, n, n, n, y, y, y, n]),
        ("member", &member, [n, n, n, y, n, n, n, n, n, n, n, n]),
        ("viewer", &viewer, [n, n, n, n, n, n, n, n, n, n, n, n]),
    ];
    for (who, w, want) in table {
        let o = offers(w, &org, &ws).await;
        let got = [
            o.invite,
            o.top_up,
            o.usage,
            o.create_key,
            o.budget,
            o.create_ws,
            o.transfer,
            o.delete_org,
            o.alert,
            o.reload,
            o.events,
            o.webhooks,
        ];
        assert_eq!(
            got, want,
            "{who}: [invite, top up, usage, create key, budget, create ws, transfer, delete org, alert, reload, events, webhooks]"
        );
    }
    // A viewer reads the workspace's keys; billing sees it exists, not what is inside.
    let r = owner.get(&format!("/app/w/{ws}")).await;
    owner.post(&r, &format!("/app/w/{ws}/keys"), &[("name", "owners-key")]).await;
    assert!(viewer.get(&format!("/app/w/{ws}")).await.has("owners-key"));
    assert!(!billing.get(&format!("/app/w/{ws}")).await.has("owners-key"));

    // Forged posts (each with the person's own valid CSRF token) are refused as the API refuses them.
    let wallet = owner.get(&format!("/app/o/{org}/credits")).await.attr(&format!(r#"action="/app/o/{org}/wallets/"#));
    let wallet = wallet.unwrap().split('/').next().unwrap().to_string();
    let topup = format!("/app/o/{org}/wallets/{wallet}/topup");
    let invite = format!("/app/o/{org}/invitations");
    let keys = format!("/app/w/{ws}/keys");
    let budget = format!("/app/w/{ws}/budget");
    let new_ws = format!("/app/o/{org}/workspaces");
    let delete_org = format!("/app/o/{org}/delete");
    let alerts = format!("/app/o/{org}/wallets/{wallet}/alerts");
    let reload = format!("/app/o/{org}/wallets/{wallet}/auto-reload");
    let hooks = format!("/app/o/{org}/webhooks");
    let reload_fields = vec![("enabled", "on"), ("threshold", "10"), ("amount", "100"), ("monthly_max", "1000")];
    let forged: [Forged; 14] = [
        ("member invites", &member, &invite, vec![("email", "forged.invite@example.org")]),
        ("member tops up", &member, &topup, vec![("amount", "500")]),
        ("admin tops up", &admin, &topup, vec![("amount", "500")]),
        ("billing creates a key", &billing, &keys, vec![("name", "b")]),
        ("viewer creates a key", &viewer, &keys, vec![("name", "v")]),
        ("member sets the budget", &member, &budget, vec![("limit", "1")]),
        ("billing creates a workspace", &billing, &new_ws, vec![("name", "w")]),
        ("viewer invites", &viewer, &invite, vec![("email", "forged.viewer@example.org")]),
        ("admin deletes the org", &admin, &delete_org, vec![]),
        ("member sets a low-balance alert", &member, &alerts, vec![("low_balance", "10")]),
        ("viewer sets a low-balance alert", &viewer, &alerts, vec![("low_balance", "10")]),
        ("admin sets auto-reload", &admin, &reload, reload_fields.clone()),
        ("member sets auto-reload", &member, &reload, reload_fields),
        ("billing adds a webhook", &billing, &hooks, vec![("url", "http://127.0.0.1:9/x"), ("scope", "all")]),
    ];
    for (what, w, path, fields) in forged {
        let home: Page = w.open("/app").await;
        let r = w.post(&home, path, &fields).await;
        assert_eq!(r.status, 403, "{what}: {}", r.html);
        assert!(r.has("Your role does not allow this."), "{what}: {}", r.html);
    }
    // Nothing of it happened.
    let credits = owner.get(&format!("/app/o/{org}/credits")).await;
    assert!(!credits.has(">topup<"), "a forged top-up went through: {}", credits.html);
    assert!(credits.has("Off. Enter an amount") && credits.has(r#"id="reload-status-credits">Off."#));
    assert!(owner.get(&hooks).await.has("No endpoints yet."));
    let ws_page = owner.get(&format!("/app/w/{ws}")).await;
    assert_eq!(ws_page.html.matches("/revoke\"").count(), 1, "only the owner's key");
    assert!(!ws_page.has("No cap: ") || ws_page.has("No cap: <strong>0</strong>"));
    assert!(!owner.get(&format!("/app/o/{org}/members")).await.has("forged.invite@example.org"));
    // Allowed ones work: billing tops up, a member creates a key.
    let r = billing.post(&billing.get(&format!("/app/o/{org}/credits")).await, &topup, &[("amount", "500")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let r = member.post(&member.get(&format!("/app/w/{ws}")).await, &keys, &[("name", "mias")]).await;
    assert_eq!(r.status, 200, "{}", r.html);
    assert!(owner.get(&format!("/app/o/{org}/credits")).await.has("<td>topup</td>"));

    // Workspace roles: the owner adds someone from the org as a viewer, then makes them a member;
    // a member may not (forged), and only admins are offered the controls.
    let page = owner.get(&format!("/app/w/{ws}")).await;
    let rows = |p: &Page| p.html.split(r#"id="ws-members""#).nth(1).unwrap_or("").matches("<tr>").count();
    let before = rows(&page);
    let user = page.attr(r#"<select id="add-user" name="user_id"><option value=""#).expect("someone to add");
    assert!(!member.get(&format!("/app/w/{ws}")).await.has(r#"id="add-user""#));
    let forged = member
        .post(&member.open("/app").await, &format!("/app/w/{ws}/members"), &[("user_id", &user), ("role", "admin")])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    let r = owner.post(&page, &format!("/app/w/{ws}/members"), &[("user_id", &user), ("role", "viewer")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let page = owner.get(&format!("/app/w/{ws}")).await;
    assert_eq!(rows(&page), before + 1);
    assert!(page.has(&format!(r#"id="wr-{user}" name="role"><option value="admin">admin</option><option value="member">member</option><option value="viewer" selected>"#)));
    let r = owner.post(&page, &format!("/app/w/{ws}/members/{user}/remove"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert_eq!(rows(&owner.get(&format!("/app/w/{ws}")).await), before);
}
