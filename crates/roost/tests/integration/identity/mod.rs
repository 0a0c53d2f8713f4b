//! Scenarios: identity — mail through a real SMTP server (aiosmtpd on a loopback port), read as
//! it arrived and its links followed.

mod cli;
mod cli_domains;
mod cli_kit;
mod domains;
mod email;
mod mail;
mod notices;
pub(crate) mod oidc;
mod oidc_clients;
mod oidc_domains;
pub(crate) mod rfc6238;
mod sessions;
mod two_factor;

use roost_server::Settings;
use roost_test_kit::peers::SmtpServer;
use roost_test_kit::{Backend, TestServer};

/// Where on-demand test peers (aiosmtpd) are installed.
pub(crate) const PEER_CACHE: &str = env!("CARGO_TARGET_TMPDIR");

/// Links in test mails point here (the dashboard's address, which these tests never browse).
pub(crate) const PUBLIC_URL: &str = "https://roost.test";

/// A real SMTP server and a roost server that sends to it (`None`: skipped, and said so).
pub(crate) async fn start_with_smtp(backend: Backend) -> Option<(SmtpServer, TestServer)> {
    let smtp = match SmtpServer::start(PEER_CACHE).await {
        Ok(smtp) => smtp,
        Err(why) => {
            println!("{why}");
            eprintln!("{why}");
            return None;
        }
    };
    let url = smtp.url();
    let adjust = move |s: &mut Settings| {
        s.smtp_url = Some(url);
        s.mail_from = "Roost Test <noreply@roost.test>".into();
        s.public_url = PUBLIC_URL.into();
        s.product_name = "Roost Test".into();
        s.mail_poll_ms = 50;
    };
    match TestServer::start_with(backend, adjust).await {
        Some(s) => Some((smtp, s)),
        None => {
            eprintln!("{}", roost_test_kit::SKIPPED);
            None
        }
    }
}

/// For each `async fn NAME(smtp: SmtpServer, s: TestServer)`, tests `NAME::sqlite` and
/// `NAME::postgres` on a server that sends mail to a real SMTP server.
macro_rules! with_smtp {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if let Some((smtp, s)) = super::super::start_with_smtp(roost_test_kit::Backend::Sqlite).await {
                        super::$name(smtp, s).await;
                    }
                }

                pg_test! {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some((smtp, s)) = super::super::start_with_smtp(roost_test_kit::Backend::Postgres).await {
                        super::$name(smtp, s).await;
                    }
                }
                }
            }
        )*
    };
}
pub(crate) use with_smtp;

/// Says plainly, in every run, whether the DNS tests could run (they need Debian's dnsmasq).
#[test]
fn dns_peer_skipped_notice() {
    if ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].iter().any(|p| std::path::Path::new(p).exists()) {
        println!("DNS tests: running against dnsmasq");
    } else {
        println!(
            "SKIPPED: dnsmasq is not installed, so the verified-domain tests did not run (apt-get install dnsmasq-base)"
        );
        eprintln!(
            "SKIPPED: dnsmasq is not installed, so the verified-domain tests did not run (apt-get install dnsmasq-base)"
        );
    }
}

/// Says plainly, in every run, whether the single sign-on tests could run (they need Node 20+ for
/// npm's oidc-provider).
#[test]
fn oidc_peer_skipped_notice() {
    match roost_test_kit::peers::node_major() {
        Ok(v) => println!("single sign-on tests: running against oidc-provider on Node {v}"),
        Err(why) => {
            println!("{why}: the single sign-on tests did not run");
            eprintln!("{why}: the single sign-on tests did not run");
        }
    }
}
