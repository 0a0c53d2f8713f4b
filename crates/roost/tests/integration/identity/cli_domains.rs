//! `roost domains add|verify|list|remove` against a real DNS server (dnsmasq on a loopback port).

use roost_test_kit::peers::DnsServer;
use roost_test_kit::{Backend, TestServer};

use super::cli_kit::{Cli, value_of};

/// A DNS server for the `test` zone and roost asking it (`None`: skipped, and said so).
async fn start(backend: Backend) -> Option<(DnsServer, TestServer)> {
    let dns = match DnsServer::start("test").await {
        Ok(d) => d,
        Err(why) => {
            println!("{why}");
            eprintln!("{why}");
            return None;
        }
    };
    let resolver = dns.addr();
    match TestServer::start_with(backend, move |s| s.dns_resolver = Some(resolver)).await {
        Some(s) => Some((dns, s)),
        None => {
            eprintln!("{}", roost_test_kit::SKIPPED);
            None
        }
    }
}

async fn domains_add_verify_list_remove(mut dns: DnsServer, s: TestServer) {
    let alice = Cli::new(&s);
    alice.signup("Alice").await;
    let created = alice.run(&["orgs", "create", "Acme Domains", "--plan", "team", "--json"]).await.json();
    let org = created["org"]["id"].as_str().unwrap().to_string();
    let domain = format!("acme-{}.test", roost_domain::IdKind::Event.generate().trim_start_matches("evt_"));

    // Added by the org's name: the record to publish is printed.
    let out = alice.run(&["domains", "add", &domain.to_uppercase(), "--org", "Acme Domains"]).await;
    let text = out.ok();
    let id = value_of(text, "domain").and_then(|v| v.split(['(', ')']).nth(1)).expect("an id").to_string();
    assert!(id.starts_with("dom_"), "{text}");
    assert_eq!(value_of(text, "mode"), Some("auto_join"));
    assert_eq!(value_of(text, "verified"), Some("no"));
    let record = text.lines().find(|l| l.contains(" TXT ")).unwrap_or_else(|| panic!("no record: {text}"));
    assert!(record.contains(&format!("_roost-verification.{domain}.")), "{record}");
    let value = record.split('"').nth(1).expect("a quoted value").to_string();
    assert!(value.starts_with("roost-verification="), "{value}");
    assert!(text.contains(&format!("roost domains verify {id} --org {org}")), "{text}");

    // Problems: a public mail domain, a bad mode (clap's), a domain claimed twice.
    let line = alice.run(&["domains", "add", "gmail.com", "--org", &org]).await.failed().to_string();
    assert!(line.contains("invalid_request") && line.contains("HTTP 422"), "{line}");
    assert_eq!(alice.run(&["domains", "add", "x.test", "--org", &org, "--mode", "always"]).await.code, 2);
    assert!(alice.run(&["domains", "add", &domain, "--org", &org]).await.failed().contains("domain_taken"));

    // Not published yet: 422 domain_unverified, with what DNS said.
    let line = alice.run(&["domains", "verify", &id, "--org", &org]).await.failed().to_string();
    assert!(line.contains("domain_unverified") && line.contains("HTTP 422"), "{line}");
    dns.set_txt(&[(&format!("_roost-verification.{domain}"), &value)]).await;
    // Named by the domain this time.
    let out = alice.run(&["domains", "verify", &domain, "--org", &org]).await;
    assert!(value_of(out.ok(), "verified").is_some_and(|v| v.starts_with("yes (")), "{out:?}");

    let list = alice.run(&["domains", "list", "--org", &org]).await;
    let row = list.ok().lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("not listed: {list:?}"));
    assert!(
        row.contains(&domain) && row.contains("auto_join") && row.contains("yes (") && row.contains(&value),
        "{row}"
    );
    let json = alice.run(&["domains", "list", "--org", &org, "--json"]).await.json();
    assert_eq!(json["items"][0]["verified"], true, "{json}");
    assert_eq!(json["items"][0]["verification"]["value"], value.as_str());

    // Another person sees nothing of the org.
    let eve = Cli::new(&s);
    eve.signup("Eve").await;
    assert!(eve.run(&["domains", "list", "--org", &org]).await.failed().contains("HTTP 404"));

    let out = alice.run(&["domains", "remove", &id, "--org", &org]).await;
    assert_eq!(out.ok(), format!("removed {id} from {org}\n"));
    assert_eq!(alice.run(&["domains", "list", "--org", &org]).await.ok(), format!("no domains claimed by {org}\n"));
    assert!(alice.run(&["domains", "remove", &domain, "--org", &org]).await.failed().contains("has no claim"));
}

mod domains_add_verify_list_remove {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some((dns, s)) = super::start(roost_test_kit::Backend::Sqlite).await {
            super::domains_add_verify_list_remove(dns, s).await;
        }
    }

    pg_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some((dns, s)) = super::start(roost_test_kit::Backend::Postgres).await {
            super::domains_add_verify_list_remove(dns, s).await;
        }
    }
    }
}
