//! The endpoints' rules through HTTP: roles and tenants, validation, SSRF refusals (every new
//! error code), the test event, redirects not followed, the audit log, the OpenAPI document, and
//! the events written outside the ledger.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::receiver::Receiver;
use super::{create, events, fast, key_event};
use crate::credits::common::{business, member};
use crate::support::{expect_problem, expect_status, uid};
use roost_test_kit::TestServer;

async fn roles_tenants_and_validation(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Rules").await;
    let rx = Receiver::start().await;
    let w = create(&owner, &org, &rx.url, json!(["key.created", "key.created", "plan.changed"])).await;
    assert_eq!(w["events"], json!(["key.created", "plan.changed"]), "repeats dropped: {w}");
    let id = w["id"].as_str().unwrap();
    assert!(id.starts_with("whk_"), "{w}");
    let hooks = format!("/v1/orgs/{org}/webhooks");

    // Admins manage webhooks; billing and members may not; another tenant sees nothing.
    let (admin, _) = member(&s, &owner, &org, &ws, "admin", None).await;
    let r = admin.get(&hooks).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    assert!(r.body["items"][0].get("secret").is_none(), "{}", r.body);
    for role in ["billing", "member"] {
        let (c, _) = member(&s, &owner, &org, &ws, role, None).await;
        expect_problem(&c.get(&hooks).await.unwrap(), 403, "forbidden");
        expect_problem(&c.get(&format!("/v1/webhooks/{id}")).await.unwrap(), 403, "forbidden");
    }
    let (stranger, _) = s.signup("Stranger").await;
    expect_problem(&stranger.get(&hooks).await.unwrap(), 404, "not_found");
    let body = json!({"url": rx.url, "events": ["*"]});
    expect_problem(&stranger.post(&hooks, &body).await.unwrap(), 404, "not_found");
    for path in [format!("/v1/webhooks/{id}"), format!("/v1/webhooks/{id}/deliveries")] {
        expect_problem(&stranger.get(&path).await.unwrap(), 404, "not_found");
    }
    for path in [format!("/v1/webhooks/{id}/rotate-secret"), format!("/v1/webhooks/{id}/test")] {
        expect_problem(&stranger.post(&path, &json!({})).await.unwrap(), 404, "not_found");
    }
    expect_problem(
        &stranger.patch(&format!("/v1/webhooks/{id}"), &json!({"enabled": false})).await.unwrap(),
        404,
        "not_found",
    );
    expect_problem(&stranger.delete(&format!("/v1/webhooks/{id}")).await.unwrap(), 404, "not_found");
    expect_problem(&owner.get("/v1/webhooks/whk_nope").await.unwrap(), 404, "not_found");
    expect_problem(&owner.get("/v1/webhooks/whk_00000000000000000000000000").await.unwrap(), 404, "not_found");

    // Validation: 422 invalid_request naming the field.
    for (body, field) in [
        (json!({"url": "ftp://example.com/x", "events": ["*"]}), "url"),
        (json!({"url": "not a url", "events": ["*"]}), "url"),
        (json!({"url": "http://u:p@127.0.0.1/", "events": ["*"]}), "url"),
        (json!({"url": rx.url, "events": []}), "events"),
        (json!({"url": rx.url, "events": ["credits.nope"]}), "events"),
        (json!({"url": rx.url, "events": ["*", "key.created"]}), "events"),
        (json!({"url": rx.url, "events": ["webhook.test"]}), "events"),
    ] {
        let r = owner.post(&hooks, &body).await.unwrap();
        expect_problem(&r, 422, "invalid_request");
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.body);
    }
    let r = owner.patch(&format!("/v1/webhooks/{id}"), &json!({"events": []})).await.unwrap();
    expect_problem(&r, 422, "invalid_request");

    // PATCH, then DELETE; both audited, as are creation and rotation.
    let r = owner.patch(&format!("/v1/webhooks/{id}"), &json!({"events": ["*"], "enabled": false})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!((&r.body["events"], &r.body["enabled"]), (&json!(["*"]), &json!(false)), "{}", r.body);
    expect_status(&owner.post(&format!("/v1/webhooks/{id}/rotate-secret"), &json!({})).await.unwrap(), 200);
    expect_status(&admin.delete(&format!("/v1/webhooks/{id}")).await.unwrap(), 204);
    expect_problem(&owner.get(&format!("/v1/webhooks/{id}")).await.unwrap(), 404, "not_found");
    let audit = owner.get(&format!("/v1/orgs/{org}/audit?limit=500")).await.unwrap();
    let actions: Vec<_> = audit.body["items"].as_array().unwrap().iter().map(|a| a["action"].clone()).collect();
    for a in ["webhook.created", "webhook.updated", "webhook.secret_rotated", "webhook.deleted"] {
        assert!(actions.contains(&json!(a)), "{a} audited: {actions:?}");
    }

    // Every new path is in the OpenAPI document.
    let doc = s.client.get("/v1/openapi.json").await.unwrap().body;
    for p in [
        "/v1/orgs/{org}/webhooks",
        "/v1/webhooks/{id}",
        "/v1/webhooks/{id}/rotate-secret",
        "/v1/webhooks/{id}/test",
        "/v1/webhooks/{id}/deliveries",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} documented");
    }
}

async fn test_event_and_redirects(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Test").await;
    let rx = Receiver::start().await;
    let w = create(&owner, &org, &rx.url, json!(["key.created"])).await;
    let id = w["id"].as_str().unwrap();
    rx.know(w["secret"].as_str().unwrap());
    let r = owner.post(&format!("/v1/webhooks/{id}/test"), &json!({})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!((&r.body["status_code"], &r.body["attempt"]), (&json!(204), &json!(1)), "{}", r.body);
    let got = rx.got();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((&got[0].body["type"], &got[0].body["data"]["webhook_id"]), (&json!("webhook.test"), &json!(id)));
    assert_eq!(got[0].signed_by, vec![0], "{:?}", got[0]);
    assert_eq!(r.body["event_id"], json!(got[0].id));
    assert!(events(&owner, &org).await.iter().all(|e| e["type"] != "webhook.test"), "never stored");
    // A failing receiver: the answer says so.
    rx.inner.down.store(true, Ordering::SeqCst);
    let r = owner.post(&format!("/v1/webhooks/{id}/test"), &json!({})).await.unwrap();
    assert_eq!(r.body["status_code"], 500, "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("500"), "{}", r.body);

    // A redirect is not followed: it is a failed delivery.
    let hop = create(&owner, &org, &format!("{}/redirect", rx.base), json!(["*"])).await;
    let hop_id = hop["id"].as_str().unwrap();
    let r = owner.post(&format!("/v1/webhooks/{hop_id}/test"), &json!({})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(r.body["status_code"], 302, "{}", r.body);
    assert!(!r.body["error"].is_null(), "{}", r.body);
    assert_eq!(rx.inner.elsewhere.load(Ordering::SeqCst), 0, "the redirect was not followed");
    let log = super::deliveries(&owner, hop_id).await;
    assert_eq!((log.len(), &log[0]["status_code"]), (1, &json!(302)), "{log:?}");
}

async fn ssrf_refused(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Ssrf").await;
    let hooks = format!("/v1/orgs/{org}/webhooks");
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]/hook",
        "http://10.0.0.1/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ] {
        let r = owner.post(&hooks, &json!({"url": url, "events": ["*"]})).await.unwrap();
        expect_problem(&r, 422, "webhook_url_private");
        assert_eq!(r.body["errors"][0]["field"], "url", "{url}: {}", r.body);
    }
    let r = owner.post(&hooks, &json!({"url": "http://no-such-host.invalid/hook", "events": ["*"]})).await.unwrap();
    expect_problem(&r, 422, "webhook_url_unresolvable");
    // A public address is fine (nothing is sent at creation), and cannot be moved somewhere private.
    let w = create(&owner, &org, "https://1.1.1.1/hook", json!(["*"])).await;
    let path = format!("/v1/webhooks/{}", w["id"].as_str().unwrap());
    let r = owner.patch(&path, &json!({"url": "http://127.0.0.1/x"})).await.unwrap();
    expect_problem(&r, 422, "webhook_url_private");
    assert_eq!(owner.get(&path).await.unwrap().body["url"], "https://1.1.1.1/hook");
}

async fn events_outside_the_ledger(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Outside").await;
    let key = key_event(&owner, &ws, "k").await;
    expect_status(&owner.delete(&format!("/v1/keys/{key}")).await.unwrap(), 204);
    let (m, sg) = member(&s, &owner, &org, &ws, "member", None).await;
    drop(m);
    let user = uid(&sg);
    expect_status(&owner.delete(&format!("/v1/orgs/{org}/members/{user}")).await.unwrap(), 204);
    let r = owner.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "scale"})).await.unwrap();
    expect_status(&r, 200);
    let all = events(&owner, &org).await;
    let of = |t: &str| all.iter().filter(|e| e["type"] == t).cloned().collect::<Vec<_>>();
    let created = of("key.created");
    assert_eq!(
        (created.len(), &created[0]["data"]["key_id"], &created[0]["workspace_id"]),
        (1, &json!(key), &json!(ws))
    );
    assert_eq!(of("key.revoked")[0]["data"]["key_id"], json!(key));
    assert_eq!(of("member.joined")[0]["data"]["user_id"], json!(user));
    assert_eq!(of("member.joined")[0]["data"]["role"], "member");
    assert_eq!(of("member.removed")[0]["data"]["user_id"], json!(user));
    let plan = of("plan.changed");
    assert_eq!(
        (plan.len(), &plan[0]["data"]["from"], &plan[0]["data"]["to"]),
        (1, &json!("business"), &json!("scale"))
    );
    // In the order they happened.
    let order: Vec<_> = all
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .filter(|t| !t.starts_with("wallet.") && !t.starts_with("cycle."))
        .collect();
    assert_eq!(order, ["key.created", "key.revoked", "member.joined", "member.removed", "plan.changed"]);
}

/// Default settings: private targets are refused.
fn strict(s: &mut roost_server::Settings) {
    fast(s);
    s.webhooks_allow_private = false;
}

both_backends_with!(
    roles_tenants_and_validation => super::fast,
    test_event_and_redirects => super::fast,
    ssrf_refused => super::strict,
    events_outside_the_ledger => super::fast,
);
