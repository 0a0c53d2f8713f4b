//! The dashboard's invoice pages (billing on): the list and one invoice for the owner, a "forbidden"
//! page for a plain member, and nothing for a stranger.

use super::common::*;
use crate::dashboard::web::Web;
use roost_test_kit::TestServer;

async fn signed_in(s: &TestServer, email: &str) -> Web {
    let w = Web::new(s);
    let form = w.get("/app/sign-in").await;
    let r = w.post(&form, "/app/sign-in", &[("email", email), ("password", "correct horse battery")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    w
}

async fn dashboard_invoice_pages(s: TestServer) {
    let (owner, owner_signup) = s.signup("Owner").await;
    let (member, member_signup) = s.signup("Member").await;
    let (org, _) = s.org(&owner, "Acme", "team").await;
    s.add_member(&owner, &org, &member, &member_signup, "member").await;
    buy(&owner, &org, 1).await;

    let w = signed_in(&s, owner_signup["user"]["email"].as_str().unwrap()).await;
    let list = w.open(&format!("/app/o/{org}/invoices")).await;
    assert_eq!(list.status, 200, "{}", list.html);
    assert!(list.has(&format!(r#"href="/app/o/{org}/invoices""#)), "the nav links the page");
    assert!(list.has(">draft<"), "{}", list.html);
    let id = list.attr(&format!(r#"<a href="/app/o/{org}/invoices/"#)).unwrap();
    let page = w.open(&format!("/app/o/{org}/invoices/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has("Team plan") && page.has("1 credit pack"), "{}", page.html);
    assert!(page.has(r#"<td id="due">IDR 249000</td>"#), "{}", page.html);

    let m = signed_in(&s, member_signup["user"]["email"].as_str().unwrap()).await;
    let refused = m.open(&format!("/app/o/{org}/invoices")).await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert!(!m.open(&format!("/app/o/{org}")).await.has("/invoices\""), "no nav link for a plain member");
    let (_, stranger) = s.signup("Stranger").await;
    let x = signed_in(&s, stranger["user"]["email"].as_str().unwrap()).await;
    assert_eq!(x.open(&format!("/app/o/{org}/invoices/{id}")).await.status, 404);
}

roost_test_kit::both_backends_with!(dashboard_invoice_pages => super::billing_on);
