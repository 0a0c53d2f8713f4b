//! The story of a team through the pages: sign up, create an org, invite a second person who
//! accepts through the link, switch workspace, create a key, charge with it through the API, see
//! the charge in the journal and the usage chart, revoke the key, and find it all in the audit log.

use roost_test_kit::TestServer;
use serde_json::json;

use super::web::Web;

both_backends!(team_story);

async fn team_story(s: TestServer) {
    // Sign up: the session cookie is HttpOnly and SameSite=Lax; pages carry a CSP without inline script.
    let owner_web = Web::new(&s);
    let form = owner_web.get("/app/sign-up").await;
    let email = crate::support::fresh_email("olivia");
    let r = owner_web
        .post(&form, "/app/sign-up", &[("name", "Olivia"), ("email", &email), ("password", "correct horse battery")])
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    let set = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    let session = set.iter().find(|c| c.starts_with("roost_session=")).expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "plain HTTP: no Secure flag: {session}");
    let home = owner_web.open("/app").await;
    assert_eq!(home.status, 200);
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(!home.html.contains("<script>") && home.has(r#"<script src="/app/static/app.js""#));
    assert!(home.has("Personal (current)"), "{}", home.html);

    // Create an org on a paid plan.
    let new = owner_web.get("/app/orgs/new").await;
    assert!(new.has("Team") && new.has("45000"), "plan picker with prices: {}", new.html);
    let r = owner_web.post(&new, "/app/orgs", &[("name", "Acme"), ("plan", "team")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let org_page = owner_web.open(r.location.as_deref().unwrap()).await;
    let org = r.location.unwrap().trim_start_matches("/app/o/").split('?').next().unwrap().to_string();
    assert!(org_page.has("Organization created.") && org_page.has("Acme"));
    assert!(org_page.has("Billable extra seats: <strong>0</strong>"), "{}", org_page.html);

    // Invite Bob to the org and its primary workspace as a member; the page shows the link once.
    let members = owner_web.get(&format!("/app/o/{org}/members")).await;
    let primary = members.attr(r#"name="ws" value=""#).expect("the primary workspace in the invite form");
    let bob_web = Web::new(&s);
    let bob_email = crate::support::fresh_email("bob");
    let ws_role = format!("ws_role_{primary}");
    let r = owner_web
        .post(
            &members,
            &format!("/app/o/{org}/invitations"),
            &[("email", &bob_email), ("role", "member"), ("ws", &primary), (&ws_role, "member")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.html);
    let link = r.attr(r#"<p class="secret" id="invite-link">"#).map(|_| ());
    assert!(link.is_some());
    let link = r.html.split(r#"id="invite-link">"#).nth(1).unwrap().split('<').next().unwrap().replace("&amp;", "&");
    let link = link
        .split_once("/app/")
        .map(|(origin, path)| {
            assert_eq!(origin, s.base, "the link names this server");
            format!("/app/{path}")
        })
        .unwrap();
    assert!(link.starts_with("/app/invitations/accept?token=rsi_"), "{link}");
    assert!(r.has(&bob_email), "pending invitation listed");

    // Bob opens the link: sign in first (he signs up), then comes back to it and accepts.
    let r = bob_web.get(&link).await;
    assert_eq!(r.status, 303);
    let to_sign_in = r.location.unwrap();
    assert!(to_sign_in.starts_with("/app/sign-in?next="), "{to_sign_in}");
    let next = to_sign_in.split("next=").nth(1).unwrap().to_string();
    let form = bob_web.get(&format!("/app/sign-up?next={next}")).await;
    let r = bob_web
        .post(
            &form,
            "/app/sign-up",
            &[("name", "Bob"), ("email", &bob_email), ("password", "correct horse battery"), ("next", &link)],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some(link.as_str()), "back to the invitation after sign-up");
    let accept = bob_web.get(&link).await;
    assert!(accept.has("Accept invitation"), "{}", accept.html);
    let token = accept.attr(r#"name="token" value=""#).unwrap();
    let r = bob_web.post(&accept, "/app/invitations/accept", &[("token", &token)]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let joined = bob_web.open(r.location.as_deref().unwrap()).await;
    assert!(joined.has("Invitation accepted") && joined.has("Acme"), "{}", joined.html);
    // The same link again: used.
    let again = bob_web.post(&accept, "/app/invitations/accept", &[("token", &token)]).await;
    assert_eq!(again.status, 410);
    assert!(again.has("used, revoked or has expired"));

    // Bob switches to the org's workspace in the topbar.
    let home = bob_web.open("/app").await;
    assert!(home.has("<optgroup label=\"Acme\">"), "{}", home.html);
    let r = bob_web.post(&home, "/app/switch", &[("workspace_id", &primary)]).await;
    assert_eq!(r.location.as_deref(), Some(format!("/app/w/{primary}?done=switched").as_str()));
    assert_eq!(bob_web.active_ws().await, primary);

    // Bob creates a key: the secret is shown once, with a copy button.
    let ws_page = bob_web.get(&format!("/app/w/{primary}")).await;
    let r = bob_web.post(&ws_page, &format!("/app/w/{primary}/keys"), &[("name", "ci")]).await;
    assert_eq!(r.status, 200, "{}", r.html);
    let secret = r.html.split(r#"id="new-secret">"#).nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(secret.starts_with("rsk_"), "{secret}");
    assert!(r.has(r#"data-copy="new-secret""#));
    assert!(!bob_web.get(&format!("/app/w/{primary}")).await.has(&secret), "the secret is shown only once");

    // A charge through the API with that key shows in the journal and the usage chart.
    let key = s.client.with_token(&secret);
    let c = key.post_idem("/v1/charges", "story-1", &json!({"amount": 42, "action": "render"})).await.unwrap();
    assert_eq!(c.status, 201, "{}", c.body);
    let credits = owner_web.get(&format!("/app/o/{org}/credits?group_by=key")).await;
    assert_eq!(credits.status, 200, "{}", credits.html);
    let journal = credits.html.split(r#"id="journal""#).nth(1).expect("a journal");
    assert!(journal.contains("render") && journal.contains("42") && journal.contains("key ci"), "{journal}");
    let chart = credits.html.split(r#"id="usage-chart""#).nth(1).expect("a chart");
    assert!(chart.contains("<svg") && chart.contains("key ci") && chart.contains("42 (100.0%)"), "{chart}");

    // The owner revokes the key: the next request with it gets 401; the audit log shows it all.
    let ws_page = owner_web.get(&format!("/app/w/{primary}")).await;
    let key_id = ws_page.attr(&format!(r#"action="/app/w/{primary}/keys/"#)).unwrap();
    let key_id = key_id.split('/').next().unwrap().to_string();
    let r = owner_web.post(&ws_page, &format!("/app/w/{primary}/keys/{key_id}/revoke"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let after = key.post_idem("/v1/charges", "story-2", &json!({"amount": 1, "action": "render"})).await.unwrap();
    assert_eq!(after.status, 401);
    let audit = owner_web.get(&format!("/app/o/{org}/audit")).await;
    for action in ["org.created", "member.invited", "member.joined", "key.created", "key.revoked"] {
        assert!(audit.has(action), "{action} missing from the audit page: {}", audit.html);
    }
    let only_revoked = owner_web.get(&format!("/app/o/{org}/audit?action=key.revoked")).await;
    assert!(only_revoked.has("key.revoked") && !only_revoked.has("key.created"));
    s.assert_ledger().await;
}
