//! Scenario: an account made by single sign-on joins, on that first sign-in, the org that verified
//! its email's domain (auto-join) — a real OpenID provider and a real DNS server (dnsmasq).

use roost_test_kit::Backend;
use roost_test_kit::peers::DnsServer;
use serde_json::json;

use super::oidc::{param, sign_in, start_with_oidc_and, verified};
use crate::support::{expect_status, membership};

async fn sso_account_auto_joins_a_verified_domain(backend: Backend) {
    let mut dns = match DnsServer::start("test").await {
        Ok(d) => d,
        Err(why) => {
            println!("{why}");
            eprintln!("{why}");
            return;
        }
    };
    let resolver = dns.addr();
    let Some((_idp, s)) = start_with_oidc_and(backend, move |s| s.dns_resolver = Some(resolver)).await else { return };
    let (alice, _) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    let domain = format!("sso-{}.test", roost_domain::IdKind::Event.generate().trim_start_matches("evt_"));
    let r =
        alice.post(&format!("/v1/orgs/{org}/domains"), &json!({"domain": domain, "mode": "auto_join"})).await.unwrap();
    expect_status(&r, 201);
    let v = &r.body["verification"];
    dns.set_txt(&[(v["name"].as_str().unwrap(), v["value"].as_str().unwrap())]).await;
    let ok = alice.post(&format!("/v1/orgs/{org}/domains/{}/verify", r.str("id")), &json!({})).await.unwrap();
    expect_status(&ok, 200);

    let email = format!("carol@{domain}");
    let back = sign_in(&s, &verified(&email)).await;
    let r = s.client.post("/v1/oidc/exchange", &json!({"code": param(&back, "code").unwrap()})).await.unwrap();
    expect_status(&r, 201);
    let carol = s.client.with_token(r.str("token"));
    let me = carol.get("/v1/me").await.unwrap().body;
    let joined = membership(&me, &org).unwrap_or_else(|| panic!("not in the domain's org: {me}"));
    assert_eq!(joined["org_role"], "member", "{me}");
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2, "{me}");
    let audit = alice.get(&format!("/v1/orgs/{org}/audit?action=member.joined")).await.unwrap().body;
    let entry = audit["items"].as_array().unwrap().iter().find(|e| e["actor"]["id"] == r.body["user"]["id"]);
    assert!(entry.is_some_and(|e| e["detail"]["via"]["method"] == "domain"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_account_auto_joins_a_verified_domain_sqlite() {
    sso_account_auto_joins_a_verified_domain(Backend::Sqlite).await;
}

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_account_auto_joins_a_verified_domain_postgres() {
    sso_account_auto_joins_a_verified_domain(Backend::Postgres).await;
}
}
