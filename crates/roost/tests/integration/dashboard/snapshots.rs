//! Snapshots of the main pages' HTML, ids, times and tokens masked, so that a change to what people
//! see shows up in review.

use roost_test_kit::TestServer;

use super::roles::{join, team};
use super::web::Web;

/// Replaces what differs between runs: TypeIDs, secrets, CSRF tokens and times.
fn mask(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let b = html.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &html[i..];
        // A TypeID or secret: a known prefix and then 26+ base32 characters.
        let prefix = [
            "usr_", "org_", "ws_", "key_", "inv_", "wal_", "grt_", "chg_", "aud_", "rsk_", "rsi_", "rsu_", "dash_",
            "ses_", "whk_", "evt_",
        ]
        .into_iter()
        .find(|p| rest.starts_with(p));
        if let Some(p) = prefix {
            let n = rest[p.len()..].bytes().take_while(u8::is_ascii_alphanumeric).count();
            // Key prefixes shown in lists are 8 characters.
            if n >= 20 || (p == "rsk_" && n >= 8) {
                out.push_str(&format!("[{}]", &p[..p.len() - 1]));
                i += p.len() + n;
                continue;
            }
        }
        // A 64-hex CSRF token.
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 64 {
            out.push_str("[csrf]");
            i += 64;
            continue;
        }
        // A time as pages show it (2026-11-24 20:14 UTC).
        if rest.len() >= 20
            && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && rest.get(10..11) == Some(" ")
            && rest.get(16..20) == Some(" UTC")
        {
            out.push_str("[time]");
            i += 20;
            continue;
        }
        // An RFC 3339 time (2026-…Z).
        if rest.len() >= 20 && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit) && rest.as_bytes()[4] == b'-' {
            let n = rest.bytes().take_while(|c| c.is_ascii_digit() || b"-:.TZ".contains(c)).count();
            if n >= 19 {
                out.push_str("[time]");
                i += n;
                continue;
            }
        }
        let ch = rest.chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages() {
    let s = TestServer::start(roost_test_kit::Backend::Sqlite).await.expect("server");
    let sign_in = Web::new(&s).get("/app/sign-in").await;
    insta::assert_snapshot!("dashboard_sign_in", mask(&sign_in.html));
    let (owner, org, ws) = team(&s).await;
    let _member = join(&s, &owner, &org, &ws, "Mia", "member", Some("member")).await;
    let r = owner.get(&format!("/app/w/{ws}")).await;
    let r = owner.post(&r, &format!("/app/w/{ws}/keys"), &[("name", "ci")]).await;
    let secret = r.html.split(r#"id="new-secret">"#).nth(1).unwrap().split('<').next().unwrap().to_string();
    let key = s.client.with_token(&secret);
    for (i, (amount, action)) in [(30, "render"), (10, "upload")].into_iter().enumerate() {
        let body = serde_json::json!({"amount": amount, "action": action});
        let c = key.post_idem("/v1/charges", &format!("snap-{i}"), &body).await.unwrap();
        assert_eq!(c.status, 201, "{}", c.body);
    }
    for (name, path) in [
        ("dashboard_org", format!("/app/o/{org}")),
        ("dashboard_members", format!("/app/o/{org}/members")),
        ("dashboard_workspace", format!("/app/w/{ws}")),
        ("dashboard_credits", format!("/app/o/{org}/credits?group_by=action")),
        ("dashboard_account", "/app/account".to_string()),
        ("dashboard_webhooks", format!("/app/o/{org}/webhooks")),
    ] {
        let p = owner.get(&path).await;
        assert_eq!(p.status, 200, "{name}: {}", p.html);
        insta::assert_snapshot!(name, mask(&p.html));
    }
}
