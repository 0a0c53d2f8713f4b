//! The credits page for who watches the money: the low-balance alert set, refused and cleared,
//! auto-reload set (with a refusal next to its fields) and seen working after a real charge with a
//! key, and the org's events with a type filter and paging.

use roost_test_kit::TestServer;
use serde_json::json;

use super::roles::team;
use super::web::Page;

both_backends!(alerts_auto_reload_and_events_on_the_credits_page);

async fn alerts_auto_reload_and_events_on_the_credits_page(s: TestServer) {
    let (owner, org, ws) = team(&s).await;
    let credits_path = format!("/app/o/{org}/credits");
    let credits = owner.get(&credits_path).await;
    let wallet = credits.attr(&format!(r#"action="/app/o/{org}/wallets/"#)).unwrap();
    let wallet = wallet.split('/').next().unwrap().to_string();
    let alerts = format!("/app/o/{org}/wallets/{wallet}/alerts");
    let reload = format!("/app/o/{org}/wallets/{wallet}/auto-reload");
    assert!(credits.has("Off. Enter an amount to be told"), "{}", credits.html);
    assert!(credits.has(r#"id="reload-status-credits">Off."#), "{}", credits.html);

    // The alert: a bad threshold is refused next to it; a good one is shown; then cleared.
    let r = owner.post(&credits, &alerts, &[("low_balance", "-5")]).await;
    assert_eq!(r.status, 422, "{}", r.html);
    assert!(r.has(r#"id="alerts-error""#) && r.has("must be from 0 to"), "{}", r.html);
    let r = owner.post(&credits, &alerts, &[("low_balance", "4000")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let page = owner.open(&r.location.unwrap()).await;
    assert!(page.has("Low-balance alert saved.") && page.has("fall below <strong>4000</strong>"), "{}", page.html);
    assert!(page.has(r#"id="alert-credits" name="low_balance" inputmode="numeric" size="10" value="4000""#));
    let r = owner.post(&page, &alerts, &[("low_balance", "")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert!(owner.get(&credits_path).await.has("Off. Enter an amount to be told"));
    owner.post(&page, &alerts, &[("low_balance", "4000")]).await;

    // Auto-reload: a reload larger than the monthly maximum is refused next to the fields.
    let fields =
        |max: &'static str| [("enabled", "on"), ("threshold", "3000"), ("amount", "1000"), ("monthly_max", max)];
    let r = owner.post(&page, &reload, &fields("500")).await;
    assert_eq!(r.status, 422, "{}", r.html);
    assert!(r.has("monthly_max: must be at least one reload"), "{}", r.html);
    let r = owner.post(&page, &reload, &fields("5000")).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let page = owner.open(&r.location.unwrap()).await;
    assert!(page.has("Auto-reload saved."), "{}", page.html);
    assert!(page.has("On: when a charge leaves fewer than 3000 credits available, 1000 credits are bought at once"));
    assert!(page.has(r#"id="reloaded-credits">0</strong> of 5000"#), "{}", page.html);

    // A charge with a key crosses both: one reload, and both events in the list.
    let token = owner.cookie("roost_session").unwrap();
    let api = s.client.with_token(&token);
    let k = api.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "signals"})).await.unwrap();
    let key = s.client.with_token(k.body["secret"].as_str().unwrap());
    let c = key.post_idem("/v1/charges", "sig-1", &json!({"amount": 7500, "action": "render"})).await.unwrap();
    assert_eq!(c.status, 201, "{}", c.body);
    let page = owner.get(&credits_path).await;
    assert!(page.has(r#"id="reloaded-credits">1000</strong> of 5000"#), "{}", page.html);
    assert!(page.has(r#"id="available-credits">3500<"#), "{}", page.html);
    let events = page.html.split(r#"id="event-list""#).nth(1).expect("the events table");
    for t in ["<td>wallet.auto_reloaded</td>", "<td>credits.low_balance</td>", "<td>key.created</td>"] {
        assert!(events.contains(t), "{t} in {events}");
    }
    assert!(events.contains("threshold: 4000"), "the data summary: {events}");

    // The type filter keeps one type.
    let only = owner.get(&format!("{credits_path}?ev_type=wallet.auto_reloaded")).await;
    let rows = only.html.split(r#"id="event-list""#).nth(1).unwrap().split("</table>").next().unwrap();
    assert_eq!(rows.matches("<td>wallet.auto_reloaded</td>").count(), 1, "{rows}");
    assert!(!rows.contains("<td>key.created</td>"), "{rows}");
    assert!(only.has(r#"<option value="wallet.auto_reloaded" selected>"#));

    // Paging: 20 to a page, older ones behind a link.
    for i in 0..20 {
        let r = api.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": format!("k{i}")})).await.unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let first = owner.get(&format!("{credits_path}?ev_type=key.created")).await;
    let count = |p: &Page| p.html.matches("<td>key.created</td>").count();
    assert_eq!(count(&first), 20, "{}", first.html);
    assert!(first.has(r#"id="events-older""#), "{}", first.html);
    let older = first.html.split(r#"id="events-older""#).next().unwrap().rsplit(r#"href=""#).next().unwrap();
    let older = older.split('"').next().unwrap().replace("&#38;", "&");
    let second = owner.get(&older).await;
    assert_eq!(count(&second), 1, "21 key.created events in all ({older}): {}", second.html);
    assert!(!second.has(r#"id="events-older""#));
}
