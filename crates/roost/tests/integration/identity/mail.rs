//! Mail: invitations arrive by SMTP with an accept link that works; failures are retried with
//! backoff; without `smtp_url` mail goes to the log; a sent mail keeps no body in the outbox.

use roost_store::{MailStatus, Store};
use roost_test_kit::TestServer;
use roost_test_kit::peers::{SmtpServer, first_link, query_param};
use serde_json::json;

use super::{PUBLIC_URL, with_smtp};
use crate::support::{email_of, expect_status, fresh_email, membership};

async fn store(s: &TestServer) -> Store {
    Store::connect(&s.admin_url).await.expect("store")
}

/// Waits until the outbox has settled mail `id` as sent (the SMTP server has the message a moment
/// before the sender records it); returns its status.
async fn wait_sent(st: &Store, id: &str) -> MailStatus {
    for _ in 0..200 {
        let m = st.mail_status(id).await.unwrap().expect("mail row");
        if m.status == "sent" {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("mail {id} never marked sent: {:?}", st.mail_status(id).await);
}

async fn invitation_mail_is_delivered_and_its_link_accepts(smtp: SmtpServer, s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Acme <Rockets>", "team").await;
    let (bob, bob_s) = s.signup("Bob").await;
    let bob_email = email_of(&bob_s);
    let inv = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": bob_email})).await.unwrap();
    expect_status(&inv, 201);

    let mails = smtp.wait_for(&bob_email, 1).await;
    assert_eq!(mails.len(), 1, "one invitation, one mail: {mails:?}");
    let m = &mails[0];
    assert_eq!(m["mail_from"], "noreply@roost.test");
    assert_eq!(m["from"], "Roost Test <noreply@roost.test>");
    assert_eq!(m["to"], bob_email.as_str());
    assert_eq!(m["content_type"], "multipart/alternative", "plain text and HTML parts: {m}");
    let subject = m["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("[Roost Test] ") && subject.contains("Alice") && subject.contains("Acme <Rockets>"),
        "{subject}"
    );
    let text = m["text"].as_str().expect("a text/plain part");
    let html = m["html"].as_str().expect("a text/html part");
    let link = first_link(text).expect("a link in the text part");
    assert!(link.starts_with(&format!("{PUBLIC_URL}/app/invitations/accept?token=rsi_")), "{link}");
    assert_eq!(first_link(html).as_deref(), Some(link.as_str()), "the HTML part links to the same place");
    assert!(html.contains("Acme &lt;Rockets&gt;") && !html.contains("<Rockets>"), "names are escaped in HTML: {html}");
    let token = query_param(&link, "token").unwrap();
    assert_eq!(token, inv.str("token"), "the mailed token is the invitation's");

    // Follow the link: the dashboard page posts its token to the API.
    let acc = bob.post("/v1/invitations/accept", &json!({"token": token})).await.unwrap();
    expect_status(&acc, 200);
    assert_eq!(acc.body["org_id"], org.as_str());
    let me = bob.get("/v1/me").await.unwrap();
    assert!(membership(&me.body, &org).is_some(), "{}", me.body);

    // Sent: the outbox keeps no body (it held a single-use link).
    let st = store(&s).await;
    let ids = st.mails_to(&bob_email).await.unwrap();
    assert_eq!(ids.len(), 1);
    let status = wait_sent(&st, &ids[0]).await;
    assert_eq!((status.status.as_str(), status.attempts), ("sent", 1));
    let body: String = sqlx::query_scalar("SELECT text_body || html_body FROM mail_outbox WHERE id = $1")
        .bind(&ids[0])
        .fetch_one(st.pool())
        .await
        .unwrap();
    assert_eq!(body, "");
}

async fn failed_mail_is_retried_with_backoff(smtp: SmtpServer, s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    smtp.fail(true);
    let to = fresh_email("carol");
    let r = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": to})).await.unwrap();
    expect_status(&r, 201);
    let st = store(&s).await;
    let id = st.mails_to(&to).await.unwrap().pop().expect("queued with the invitation");
    // The SMTP server refuses (451): the attempt is recorded, the mail stays pending.
    let mut status = None;
    for _ in 0..200 {
        status = st.mail_status(&id).await.unwrap();
        if status.as_ref().is_some_and(|m| m.attempts >= 1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = status.unwrap();
    assert_eq!((status.status.as_str(), status.attempts), ("pending", 1), "{status:?}");
    assert!(status.last_error.as_deref().unwrap_or("").contains("451"), "{status:?}");
    smtp.fail(false);
    // Not before the backoff has passed (30 s of the server's clock).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(smtp.messages_to(&to).is_empty(), "retried before its time");
    assert_eq!(st.mail_status(&id).await.unwrap().unwrap().attempts, 1);
    s.clock.advance(31_000);
    let mails = smtp.wait_for(&to, 1).await;
    assert_eq!(mails.len(), 1, "delivered once");
    let status = wait_sent(&st, &id).await;
    assert_eq!((status.status.as_str(), status.attempts, status.last_error), ("sent", 2, None));
}

with_smtp!(invitation_mail_is_delivered_and_its_link_accepts, failed_mail_is_retried_with_backoff);

/// Without `smtp_url` the mail is written to the log and counts as handled.
async fn without_smtp_mail_goes_to_the_log(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    let to = fresh_email("dave");
    expect_status(&alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": to})).await.unwrap(), 201);
    let st = store(&s).await;
    let id = st.mails_to(&to).await.unwrap().pop().expect("queued");
    assert_eq!(wait_sent(&st, &id).await.attempts, 1);
}

fn fast_poll(s: &mut roost_server::Settings) {
    s.mail_poll_ms = 50;
}

both_backends_with!(without_smtp_mail_goes_to_the_log => super::fast_poll);
