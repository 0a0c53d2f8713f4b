//! What protects the pages: CSRF tokens (missing, or another session's), the pre-session token of
//! the sign-in form, sign-out ending the session, `Secure` cookies behind TLS, and 404 for every page
//! and form of another tenant's org.

use roost_test_kit::TestServer;

use super::web::Web;

both_backends!(csrf_refusals, sign_out_ends_the_session, outsiders_get_404_everywhere);
both_backends_with!(secure_cookies_behind_tls => super::configured_secure);

fn configured_secure(s: &mut roost_server::Settings) {
    s.dashboard.secure_cookies = Some(true);
}

async fn key_count(w: &Web, ws: &str) -> usize {
    w.get(&format!("/app/w/{ws}")).await.html.matches("/revoke\"").count()
}

async fn csrf_refusals(s: TestServer) {
    let (ann, _) = Web::sign_up(&s, "Ann").await;
    let (eve, _) = Web::sign_up(&s, "Eve").await;
    let ws = ann.active_ws().await;
    let page = ann.get(&format!("/app/w/{ws}")).await;
    let path = format!("/app/w/{ws}/keys");

    // No token, an empty one, a made-up one, and Eve's own valid token: all refused, nothing made.
    let eve_page = eve.open("/app").await;
    let eve_token = eve_page.csrf();
    for token in [None, Some(""), Some("0000"), Some(eve_token.as_str())] {
        let mut fields = vec![("name", "forged")];
        if let Some(t) = token {
            fields.push(("_csrf", t));
        }
        let r = ann.post_raw(&path, &fields).await;
        assert_eq!(r.status, 403, "token {token:?}: {}", r.html);
        assert!(r.has("not sent from this page"), "{}", r.html);
    }
    assert_eq!(key_count(&ann, &ws).await, 0, "a refused form made a key");
    // With the page's own token it works.
    let r = ann.post(&page, &path, &[("name", "real")]).await;
    assert_eq!(r.status, 200, "{}", r.html);
    assert_eq!(key_count(&ann, &ws).await, 1);

    // The switcher and sign-out forms are guarded too.
    assert_eq!(ann.post_raw("/app/switch", &[("workspace_id", &ws)]).await.status, 403);
    assert_eq!(ann.post_raw("/app/sign-out", &[]).await.status, 403);
    assert_eq!(ann.open("/app").await.status, 200, "a refused sign-out did not end the session");

    // Sign-in needs the token tied to this browser's pre-session cookie.
    let stranger = Web::new(&s);
    let r = stranger.post_raw("/app/sign-in", &[("email", "a@example.com"), ("password", "x")]).await;
    assert_eq!(r.status, 403);
    let form = stranger.get("/app/sign-in").await;
    let other = Web::new(&s);
    other.get("/app/sign-in").await;
    let r =
        other.post(&form, "/app/sign-in", &[("email", "a@example.com"), ("password", "correct horse battery")]).await;
    assert_eq!(r.status, 403, "another browser's sign-in token");
    let r =
        stranger.post(&form, "/app/sign-in", &[("email", "nobody@example.com"), ("password", "wrong password")]).await;
    assert_eq!(r.status, 401);
    assert!(r.has("Wrong email or password."));
}

async fn sign_out_ends_the_session(s: TestServer) {
    let (ann, email) = Web::sign_up(&s, "Ann").await;
    let token = ann.cookie("roost_session").unwrap();
    let home = ann.open("/app").await;
    let r = ann.post(&home, "/app/sign-out", &[]).await;
    assert_eq!(r.location.as_deref(), Some("/app/sign-in"));
    assert!(ann.cookie("roost_session").is_none(), "the cookie is cleared");
    // A copy of the old cookie no longer works, in the dashboard or the API.
    let copy = Web::new(&s);
    copy.set_cookie("roost_session", &token);
    let r = copy.get("/app/account").await;
    assert_eq!(r.status, 303);
    assert!(r.location.unwrap().starts_with("/app/sign-in?next=%2Fapp%2Faccount"));
    assert_eq!(s.client.with_token(&token).get("/v1/me").await.unwrap().status, 401);
    // Signing in again works, and lands where it was asked to (never on another site).
    let form = ann.get("/app/sign-in?next=https://evil.example/").await;
    assert!(form.has(r#"name="next" value="/app""#), "{}", form.html);
    let r = ann
        .post(&form, "/app/sign-in", &[("email", &email), ("password", "correct horse battery"), ("next", "//evil")])
        .await;
    assert_eq!(r.location.as_deref(), Some("/app"));
    assert_eq!(ann.open("/app/account").await.status, 200);
}

async fn secure_cookies_behind_tls(s: TestServer) {
    let w = Web::new(&s);
    let form = w.get("/app/sign-up").await;
    let pre = form.headers["set-cookie"].to_str().unwrap();
    assert!(pre.contains("Secure") && pre.contains("HttpOnly"), "{pre}");
    let email = crate::support::fresh_email("sec");
    let r = w
        .post(&form, "/app/sign-up", &[("name", "Sec"), ("email", &email), ("password", "correct horse battery")])
        .await;
    let c: Vec<_> = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(c.iter().any(|c| c.starts_with("roost_session=") && c.contains("; Secure")), "{c:?}");
}

async fn outsiders_get_404_everywhere(s: TestServer) {
    let (owner, _) = Web::sign_up(&s, "Olivia").await;
    let new = owner.get("/app/orgs/new").await;
    let r = owner.post(&new, "/app/orgs", &[("name", "Acme"), ("plan", "team")]).await;
    let org = r.location.unwrap().trim_start_matches("/app/o/").split('?').next().unwrap().to_string();
    let ws = owner.get(&format!("/app/o/{org}")).await.attr(r#"<li><a href="/app/w/"#).unwrap();
    let wallet = owner.get(&format!("/app/o/{org}/credits")).await.attr(&format!(r#"action="/app/o/{org}/wallets/"#));
    let wallet = wallet.unwrap().split('/').next().unwrap().to_string();

    let (eve, _) = Web::sign_up(&s, "Eve").await;
    for page in ["", "/members", "/credits", "/audit"] {
        let r = eve.get(&format!("/app/o/{org}{page}")).await;
        assert_eq!(r.status, 404, "/app/o/{{org}}{page}: {}", r.html);
        assert!(!r.has("Acme"), "the page names the org");
    }
    assert_eq!(eve.get(&format!("/app/w/{ws}")).await.status, 404);
    // A made-up id is answered the same way.
    assert_eq!(eve.get("/app/o/org_01m80000000000000000000000").await.status, 404);
    assert_eq!(eve.get("/app/w/not-an-id").await.status, 404);
    assert_eq!(eve.get("/app/no-such-page").await.status, 404);
    // Forged forms against the org, with Eve's own valid token: 404, nothing done.
    let mine = eve.open("/app").await;
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/app/o/{org}/invitations"), vec![("email", "forged.eve@example.org")]),
        (format!("/app/o/{org}/workspaces"), vec![("name", "mine")]),
        (format!("/app/o/{org}/wallets/{wallet}/topup"), vec![("amount", "1000")]),
        (format!("/app/w/{ws}/keys"), vec![("name", "stolen")]),
        (format!("/app/o/{org}/rename"), vec![("name", "Pwned")]),
        (format!("/app/o/{org}/delete"), vec![]),
    ];
    for (path, fields) in forms {
        let r = eve.post(&mine, &path, &fields).await;
        assert_eq!(r.status, 404, "{path}: {}", r.html);
    }
    let overview = owner.get(&format!("/app/o/{org}")).await;
    assert!(overview.has("Acme") && !overview.has("Pwned"));
    assert!(!owner.get(&format!("/app/o/{org}/members")).await.has("forged.eve@example.org"));
    assert!(owner.get(&format!("/app/o/{org}/credits")).await.has(r#"id="available-credits">10000<"#));
    // The owner may delete it; then it is gone for her too.
    let r = owner.post(&overview, &format!("/app/o/{org}/delete"), &[]).await;
    assert_eq!(r.location.as_deref(), Some("/app?done=deleted"), "{}", r.html);
    assert_eq!(owner.get(&format!("/app/o/{org}")).await.status, 404);
}
