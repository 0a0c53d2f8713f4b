//! Verified domains against a real DNS server (dnsmasq on a loopback port): the TXT record present,
//! absent or wrong; public mail domains refused; people with a verified address at the domain
//! joining on their first sign-in (seats checked, audited) or seeing the org suggested.

use roost::Client;
use roost_test_kit::peers::{DnsServer, SmtpServer};
use roost_test_kit::{Backend, TestServer};
use serde_json::{Value, json};

use super::{PEER_CACHE, PUBLIC_URL};
use crate::support::{expect_invalid, expect_problem, expect_status, membership};

/// A DNS server for the `test` zone, an SMTP server, and roost using both (`None`: skipped).
async fn start(backend: Backend) -> Option<(DnsServer, SmtpServer, TestServer)> {
    let dns = match DnsServer::start("test").await {
        Ok(d) => d,
        Err(why) => {
            println!("{why}");
            eprintln!("{why}");
            return None;
        }
    };
    let smtp = match SmtpServer::start(PEER_CACHE).await {
        Ok(s) => s,
        Err(why) => {
            println!("{why}");
            return None;
        }
    };
    let (resolver, smtp_url) = (dns.addr(), smtp.url());
    let s = TestServer::start_with(backend, move |s| {
        s.dns_resolver = Some(resolver);
        s.smtp_url = Some(smtp_url);
        s.public_url = PUBLIC_URL.into();
        s.mail_poll_ms = 50;
    })
    .await;
    match s {
        Some(s) => Some((dns, smtp, s)),
        None => {
            eprintln!("{}", roost_test_kit::SKIPPED);
            None
        }
    }
}

macro_rules! with_dns {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some((dns, smtp, s)) = super::start(roost_test_kit::Backend::Sqlite).await {
                    super::$name(dns, smtp, s).await;
                }
            }

            pg_test! {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((dns, smtp, s)) = super::start(roost_test_kit::Backend::Postgres).await {
                    super::$name(dns, smtp, s).await;
                }
            }
            }
        }
    )*};
}

/// A fresh domain under the `test` zone.
fn fresh_domain(tag: &str) -> String {
    format!("{tag}-{}.test", roost_domain::IdKind::Event.generate().trim_start_matches("evt_"))
}

async fn add(c: &Client, org: &str, body: Value) -> roost::Response {
    c.post(&format!("/v1/orgs/{org}/domains"), &body).await.unwrap()
}

/// Claims and verifies `domain` for `org` (publishing the record on `dns`).
async fn claim(dns: &mut DnsServer, c: &Client, org: &str, domain: &str, mode: &str) -> Value {
    let r = add(c, org, json!({"domain": domain, "mode": mode})).await;
    expect_status(&r, 201);
    let v = &r.body["verification"];
    dns.set_txt(&[(v["name"].as_str().unwrap(), v["value"].as_str().unwrap())]).await;
    let ok = c.post(&format!("/v1/orgs/{org}/domains/{}/verify", r.str("id")), &json!({})).await.unwrap();
    expect_status(&ok, 200);
    ok.body
}

async fn verify_by_dns_txt(mut dns: DnsServer, _smtp: SmtpServer, s: TestServer) {
    let (alice, alice_s) = s.signup("Alice").await;
    let (bob, bob_s) = s.signup("Bob").await;
    let (eve, _) = s.signup("Eve").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &bob, &bob_s, "member").await;
    let domain = fresh_domain("acme");

    for public in ["gmail.com", "Outlook.com"] {
        expect_invalid(&add(&alice, &org, json!({"domain": public, "mode": "auto_join"})).await, "domain");
    }
    expect_invalid(&add(&alice, &org, json!({"domain": "not a domain", "mode": "auto_join"})).await, "domain");
    expect_invalid(&add(&alice, &org, json!({"domain": domain, "mode": "always"})).await, "mode");
    expect_invalid(&add(&alice, &org, json!({"domain": domain, "mode": "suggest", "role": "admin"})).await, "role");
    expect_problem(&add(&bob, &org, json!({"domain": domain, "mode": "suggest"})).await, 403, "forbidden");
    expect_problem(&add(&eve, &org, json!({"domain": domain, "mode": "suggest"})).await, 404, "not_found");
    let personal = alice_s["personal"]["org_id"].as_str().unwrap();
    expect_problem(&add(&alice, personal, json!({"domain": domain, "mode": "suggest"})).await, 403, "personal_org");

    let r = add(&alice, &org, json!({"domain": domain.to_uppercase(), "mode": "auto_join"})).await;
    expect_status(&r, 201);
    assert!(r.str("id").starts_with("dom_"));
    assert_eq!(
        (r.body["domain"].as_str(), r.body["mode"].as_str(), r.body["role"].as_str()),
        (Some(domain.as_str()), Some("auto_join"), Some("member"))
    );
    assert_eq!(r.body["verified"], false);
    let (name, value) =
        (r.body["verification"]["name"].as_str().unwrap(), r.body["verification"]["value"].as_str().unwrap());
    assert_eq!(r.body["verification"]["type"], "dns_txt");
    assert_eq!(name, format!("_roost-verification.{domain}"));
    assert!(value.starts_with("roost-verification="), "{value}");
    expect_problem(&add(&alice, &org, json!({"domain": domain, "mode": "suggest"})).await, 409, "domain_taken");
    let verify = format!("/v1/orgs/{org}/domains/{}/verify", r.str("id"));

    // No record; then the record with another value; then at another name: all refused.
    expect_problem(&alice.post(&verify, &json!({})).await.unwrap(), 422, "domain_unverified");
    dns.set_txt(&[(name, "roost-verification=someone-elses")]).await;
    expect_problem(&alice.post(&verify, &json!({})).await.unwrap(), 422, "domain_unverified");
    dns.set_txt(&[(&format!("_other.{domain}"), value)]).await;
    expect_problem(&alice.post(&verify, &json!({})).await.unwrap(), 422, "domain_unverified");
    expect_problem(&bob.post(&verify, &json!({})).await.unwrap(), 403, "forbidden");
    // The right one, among others.
    dns.set_txt(&[(name, "v=spf1 -all"), (name, value)]).await;
    let ok = alice.post(&verify, &json!({})).await.unwrap();
    expect_status(&ok, 200);
    assert_eq!(ok.body["verified"], true);
    let list = alice.get(&format!("/v1/orgs/{org}/domains")).await.unwrap();
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["items"][0]["verified"], true);

    // Another org may claim it, but not verify it while Acme holds it.
    let (other, _) = s.org(&eve, "Other", "team").await;
    let theirs = add(&eve, &other, json!({"domain": domain, "mode": "suggest"})).await;
    expect_status(&theirs, 201);
    dns.set_txt(&[(name, value), (name, theirs.body["verification"]["value"].as_str().unwrap())]).await;
    let taken = eve.post(&format!("/v1/orgs/{other}/domains/{}/verify", theirs.str("id")), &json!({})).await.unwrap();
    expect_problem(&taken, 409, "domain_taken");
    // Another org's domain id is not found here.
    expect_problem(
        &alice.post(&format!("/v1/orgs/{org}/domains/{}/verify", theirs.str("id")), &json!({})).await.unwrap(),
        404,
        "not_found",
    );

    let del = format!("/v1/orgs/{org}/domains/{}", r.str("id"));
    expect_status(&alice.delete(&del).await.unwrap(), 204);
    expect_problem(&alice.delete(&del).await.unwrap(), 404, "not_found");
    let audit = alice.get(&format!("/v1/orgs/{org}/audit")).await.unwrap();
    let actions: Vec<&str> =
        audit.body["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for a in ["domain.added", "domain.verified", "domain.removed"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

/// Signs `who` up at `email`, verifies the address through the mailed link; returns the client.
async fn verified_user(s: &TestServer, smtp: &SmtpServer, name: &str, email: &str) -> Client {
    let r = s
        .client
        .post("/v1/signup", &json!({"email": email, "password": "correct horse battery", "name": name}))
        .await
        .unwrap();
    expect_status(&r, 201);
    let c = s.client.with_token(r.str("token"));
    expect_status(&c.post("/v1/me/email-verification", &json!({})).await.unwrap(), 202);
    let mail = smtp.wait_for(email, 1).await;
    let link = roost_test_kit::peers::first_link(mail[0]["text"].as_str().unwrap()).unwrap();
    let token = roost_test_kit::peers::query_param(&link, "token").unwrap();
    expect_status(&s.client.post("/v1/email-verification/confirm", &json!({"token": token})).await.unwrap(), 200);
    c
}

async fn join_by_verified_domain(mut dns: DnsServer, smtp: SmtpServer, s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (acme, _) = s.org(&alice, "Acme", "team").await;
    let (globex, _) = s.org(&alice, "Globex", "team").await;
    let (small, _) = s.org(&alice, "Small", "build").await; // three seats
    let (acme_d, globex_d, small_d) = (fresh_domain("acme"), fresh_domain("globex"), fresh_domain("small"));
    claim(&mut dns, &alice, &acme, &acme_d, "auto_join").await;
    claim(&mut dns, &alice, &globex, &globex_d, "suggest").await;
    claim(&mut dns, &alice, &small, &small_d, "auto_join").await;

    // An unverified address joins nothing, even at sign-in.
    let bob_email = format!("bob@{acme_d}");
    let r = s
        .client
        .post("/v1/signup", &json!({"email": bob_email, "password": "correct horse battery", "name": "Bob"}))
        .await
        .unwrap();
    let bob = s.client.with_token(r.str("token"));
    assert!(membership(&bob.get("/v1/me").await.unwrap().body, &acme).is_none());
    assert_eq!(bob.get("/v1/me/suggested-orgs").await.unwrap().body["items"], json!([]));
    // Verified: Bob is in Acme as a member, audited with how he came.
    expect_status(&bob.post("/v1/me/email-verification", &json!({})).await.unwrap(), 202);
    let mail = smtp.wait_for(&bob_email, 1).await;
    let token = roost_test_kit::peers::query_param(
        &roost_test_kit::peers::first_link(mail[0]["text"].as_str().unwrap()).unwrap(),
        "token",
    )
    .unwrap();
    expect_status(&s.client.post("/v1/email-verification/confirm", &json!({"token": token})).await.unwrap(), 200);
    let me = bob.get("/v1/me").await.unwrap();
    assert_eq!(membership(&me.body, &acme).expect("auto-joined")["org_role"], "member");
    assert!(membership(&me.body, &globex).is_none());
    let audit = alice.get(&format!("/v1/orgs/{acme}/audit?action=member.joined")).await.unwrap();
    let joined = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"]["id"] == me.body["user"]["id"] && e["actor"]["id"] == me.body["user"]["id"])
        .cloned();
    let joined = joined.unwrap_or_else(|| panic!("member.joined for Bob: {}", audit.body));
    assert_eq!(joined["detail"]["via"]["method"], "domain", "{joined}");
    assert_eq!(joined["detail"]["via"]["domain"], acme_d.as_str());
    // Once: leaving and signing in again does not rejoin.
    expect_status(&bob.delete(&format!("/v1/orgs/{acme}/members/me")).await.unwrap(), 204);
    let again =
        s.client.post("/v1/sessions", &json!({"email": bob_email, "password": "correct horse battery"})).await.unwrap();
    expect_status(&again, 201);
    assert!(membership(&bob.get("/v1/me").await.unwrap().body, &acme).is_none());

    // Suggest: Carol sees Globex and joins it herself; then it is no longer suggested.
    let carol = verified_user(&s, &smtp, "Carol", &format!("carol@{globex_d}")).await;
    assert!(membership(&carol.get("/v1/me").await.unwrap().body, &globex).is_none(), "suggest never joins by itself");
    let sug = carol.get("/v1/me/suggested-orgs").await.unwrap();
    expect_status(&sug, 200);
    assert_eq!(
        sug.body["items"],
        json!([{"org_id": globex, "org_name": "Globex", "domain": globex_d, "mode": "suggest", "role": "member"}])
    );
    expect_problem(
        &carol.post(&format!("/v1/me/suggested-orgs/{acme}/join"), &json!({})).await.unwrap(),
        404,
        "not_found",
    );
    let j = carol.post(&format!("/v1/me/suggested-orgs/{globex}/join"), &json!({})).await.unwrap();
    expect_status(&j, 200);
    assert_eq!(membership(&carol.get("/v1/me").await.unwrap().body, &globex).unwrap()["org_role"], "member");
    assert_eq!(carol.get("/v1/me/suggested-orgs").await.unwrap().body["items"], json!([]));

    // Seats: Small holds three; the third person at its domain finds it full and gets a suggestion.
    for n in ["dan", "erin"] {
        let c = verified_user(&s, &smtp, n, &format!("{n}@{small_d}")).await;
        assert!(membership(&c.get("/v1/me").await.unwrap().body, &small).is_some(), "{n} auto-joined");
    }
    let frank = verified_user(&s, &smtp, "Frank", &format!("frank@{small_d}")).await;
    assert!(membership(&frank.get("/v1/me").await.unwrap().body, &small).is_none(), "full: not joined");
    let sug = frank.get("/v1/me/suggested-orgs").await.unwrap();
    assert_eq!(sug.body["items"][0]["org_id"], small.as_str(), "{}", sug.body);
    let full = frank.post(&format!("/v1/me/suggested-orgs/{small}/join"), &json!({})).await.unwrap();
    expect_problem(&full, 403, "plan_limit");
}

with_dns!(verify_by_dns_txt, join_by_verified_domain);
