//! The webhooks page against a real receiver: an endpoint made (its secret shown once, and the one
//! the receiver checks signatures with), a refused URL, a test event, a failed delivery waiting for
//! its retry and then delivered, rotation, turning off and on, deletion, and 404 for outsiders.

use std::sync::atomic::Ordering;
use std::time::Duration;

use roost_test_kit::TestServer;
use serde_json::json;

use super::roles::team;
use super::web::{Page, Web};
use crate::webhooks::receiver::Receiver;

both_backends_with!(webhooks_page_with_a_real_receiver => crate::webhooks::fast);

fn secret_of(p: &Page) -> String {
    p.html.split(r#"id="new-secret">"#).nth(1).expect("a secret shown").split('<').next().unwrap().to_string()
}

/// Polls the endpoint's page (without moving the clock) until `ok`.
async fn until(w: &Web, path: &str, what: &str, ok: impl Fn(&Page) -> bool) -> Page {
    for _ in 0..200 {
        let p = w.get(path).await;
        if ok(&p) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn webhooks_page_with_a_real_receiver(s: TestServer) {
    let rx = Receiver::start().await;
    let (owner, org, ws) = team(&s).await;
    let path = format!("/app/o/{org}/webhooks");
    let page = owner.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has("No endpoints yet.") && page.has(&format!(r#"href="{path}" aria-current="page""#)));

    // A URL that is not http(s): refused next to the form, what was typed kept.
    let r = owner.post(&page, &path, &[("url", "ftp://example.org/x"), ("scope", "all"), ("description", "d")]).await;
    assert_eq!(r.status, 422, "{}", r.html);
    assert!(r.has(r#"id="create-error""#) && r.has(r#"value="ftp://example.org/x""#), "{}", r.html);
    // Some events, none ticked: refused.
    let r = owner.post(&page, &path, &[("url", &rx.url), ("scope", "some")]).await;
    assert_eq!(r.status, 422, "{}", r.html);

    let r = owner
        .post(&page, &path, &[("url", &rx.url), ("scope", "some"), ("events", "key.created"), ("description", "ci")])
        .await;
    assert_eq!(r.status, 200, "{}", r.html);
    let secret = secret_of(&r);
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(r.has(r#"data-copy="new-secret""#) && r.has("<td>key.created</td>"), "{}", r.html);
    rx.know(&secret);
    let hook = r.attr(&format!(r#"<a href="{path}/"#)).unwrap();
    assert!(hook.starts_with("whk_"), "{hook}");
    assert!(!owner.get(&path).await.has(&secret), "the secret is shown once");

    // A test event: delivered, signed with that secret, and said so.
    let r = owner.post(&page, &format!("{path}/{hook}/test"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.html);
    assert!(r.has("Test event delivered: the endpoint answered 204"), "{}", r.html);
    assert_eq!(rx.accepted().last().unwrap().signed_by, vec![0]);

    // A real event whose first attempt fails: the endpoint shows the failure and its next retry.
    rx.inner.fail_first.store(1, Ordering::SeqCst);
    let api = s.client.with_token(&owner.cookie("roost_session").unwrap());
    let k = api.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "hooked"})).await.unwrap();
    assert_eq!(k.status, 201, "{}", k.body);
    let detail = format!("{path}/{hook}");
    let p = until(&owner, &detail, "a failed attempt", |p| p.has("1 failed attempts")).await;
    assert!(p.has("next retry at"), "{}", p.html);
    assert!(p.has("<td class=\"num\">500</td>") && p.has("failed"), "{}", p.html);
    assert!(owner.get(&path).await.has("1 failed attempts, next retry"));
    // Its retry (1 s later on the server's clock) is delivered.
    s.clock.advance(1_500);
    let p = until(&owner, &detail, "the retry", |p| p.has("Nothing waiting for a retry.")).await;
    assert!(p.has("<td class=\"num\">204</td>") && p.has("delivered"), "{}", p.html);
    assert!(p.has("<td class=\"num\">2</td>"), "the second attempt: {}", p.html);

    // Rotation: a new secret shown once; both sign for a while.
    let r = owner.post(&page, &format!("{path}/{hook}/rotate"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.html);
    let new = secret_of(&r);
    assert!(new.starts_with("whsec_") && new != secret);
    assert!(r.has("Secret rotated. The old secret keeps signing alongside until"), "{}", r.html);

    // Off and on again.
    let r = owner.post(&page, &format!("{path}/{hook}/enabled"), &[("enabled", "off")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert!(owner.get(&detail).await.has(r#"id="hook-state">off<"#));
    owner.post(&page, &format!("{path}/{hook}/enabled"), &[("enabled", "on")]).await;
    assert!(owner.get(&detail).await.has(r#"id="hook-state">on<"#));

    // Outsiders: 404 on the page, the endpoint and every action.
    let (eve, _) = Web::sign_up(&s, "Eve").await;
    assert_eq!(eve.get(&path).await.status, 404);
    assert_eq!(eve.get(&detail).await.status, 404);
    let home = eve.open("/app").await;
    for action in ["test", "rotate", "delete"] {
        let r = eve.post(&home, &format!("{path}/{hook}/{action}"), &[]).await;
        assert_eq!(r.status, 404, "{action}: {}", r.html);
    }
    let r = eve.post(&home, &path, &[("url", &rx.url), ("scope", "all")]).await;
    assert_eq!(r.status, 404, "{}", r.html);

    // Deleted.
    let r = owner.post(&page, &format!("{path}/{hook}/delete"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let p = owner.open(&r.location.unwrap()).await;
    assert!(p.has("Webhook endpoint deleted.") && p.has("No endpoints yet."), "{}", p.html);
    assert_eq!(owner.get(&detail).await.status, 404);
}
