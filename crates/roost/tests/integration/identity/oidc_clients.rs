//! Scenarios: single sign-on from its two clients — `roost login --sso` (a real CLI process on a
//! loopback port, `--no-browser`, the test following the address it prints) and the dashboard's
//! button and `/app/oidc/done`, over plain HTTP with a cookie jar.

use std::process::Stdio;
use std::time::Duration;

use roost_test_kit::TestServer;
use roost_test_kit::peers::{Account, Browser, OidcProvider};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::oidc::{param, start_with_oidc, verified, with_oidc};
use crate::support::fresh_email;

with_oidc!(sso_cli_login_follows_the_printed_address, sso_dashboard_button_signs_in);

/// A CLI user's own config directory, removed when dropped.
struct ConfigDir(std::path::PathBuf);

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config_dir() -> ConfigDir {
    let dir = std::env::temp_dir().join("roost-cli-tests").join(roost_domain::IdKind::User.generate());
    std::fs::create_dir_all(&dir).unwrap();
    ConfigDir(dir)
}

fn roost(dir: &ConfigDir, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(crate::ROOST);
    cmd.args(args)
        .env("ROOST_CONFIG_DIR", &dir.0)
        .env_remove("ROOST_SERVER")
        .env_remove("ROOST_PASSWORD")
        .env_remove("BROWSER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `roost login --sso test --no-browser`, signs `account` in at the address it prints, and
/// returns `(exit code, stdout, stderr)`.
async fn cli_sso(s: &TestServer, dir: &ConfigDir, account: &Account) -> (i32, String, String) {
    let mut child = roost(dir, &["login", "--sso", "test", "--no-browser", "--server", &s.base]).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).await.unwrap() > 0, "the CLI printed no address: {said}");
            said.push_str(&line);
            if let Some(u) = line.trim().strip_prefix("http") {
                return format!("http{u}");
            }
        }
    })
    .await
    .expect("the CLI prints the sign-in address");
    assert!(url.starts_with(&format!("{}/v1/oidc/test/start?redirect_uri=", s.base)), "{url}");
    let redirect = param(&url, "redirect_uri").unwrap();
    assert!(redirect.starts_with("http://127.0.0.1:") && redirect.contains("/callback/cb_"), "{redirect}");
    // Found by review: the CLI took any code brought to its port. One brought by anyone but the
    // browser it sent (who cannot know the path) is refused, and the CLI goes on waiting.
    let port_base = redirect.split('/').take(3).collect::<Vec<_>>().join("/");
    for forged in
        [format!("{port_base}/callback?code=rsc_forged"), format!("{port_base}/callback/cb_x?code=rsc_forged")]
    {
        assert_eq!(reqwest::get(&forged).await.unwrap().status().as_u16(), 404, "{forged}");
    }
    // The browser: through the provider and back to the CLI's loopback port.
    let mut browser = Browser::new();
    let back = browser.follow(&url, account, &redirect).await;
    let page = browser.get(&back).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (out.status.code().unwrap_or(-1), stdout, format!("{said}{rest}"))
}

async fn sso_cli_login_follows_the_printed_address(_idp: OidcProvider, s: TestServer) {
    let dir = config_dir();
    let email = fresh_email("cli-sso");
    let (code, stdout, stderr) = cli_sso(&s, &dir, &verified(&email)).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("logged in as") && stdout.contains(&email), "{stdout}");
    // The session is saved like a password login's.
    let who = roost(&dir, &["whoami", "--server", &s.base]).output().await.unwrap();
    let who_out = String::from_utf8_lossy(&who.stdout);
    assert!(who.status.success() && who_out.contains(&email), "{who_out} {}", String::from_utf8_lossy(&who.stderr));

    // An unverified address: the CLI says why and exits 1, saving nothing new.
    let other = config_dir();
    let (code, stdout, stderr) =
        cli_sso(&s, &other, &Account { email: fresh_email("cli-unverified"), verified: false }).await;
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("error: ") && stderr.contains("verified"), "{stderr}");
    assert!(
        !other.0.join("config.json").exists()
            || !std::fs::read_to_string(other.0.join("config.json")).unwrap().contains("rsu_")
    );

    // A provider the server does not have: refused before any browser.
    let out = roost(&dir, &["login", "--sso", "nope", "--no-browser", "--server", &s.base]).output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no identity provider `nope`") && err.contains("test"), "{err}");
}

async fn sso_dashboard_button_signs_in(_idp: OidcProvider, s: TestServer) {
    let mut b = Browser::new();
    let page = b.get(&format!("{}/app/sign-in?next=%2Fapp", s.base)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"href="/app/oidc/test?next=%2Fapp""#), "{}", page.body);
    assert!(page.body.contains("Sign in with Test IdP"), "{}", page.body);

    let email = fresh_email("dash-sso");
    let done = format!("{}/app/oidc/done", s.base);
    let back = b.follow(&format!("{}/app/oidc/test?next=%2Fapp", s.base), &verified(&email), &done).await;
    assert!(param(&back, "code").is_some(), "{back}");
    // Another browser (no pre-session cookie of this sign-in) cannot take the code.
    let stolen = Browser::new().get(&back).await;
    assert_eq!(stolen.status, 403, "{}", stolen.body);
    // This browser can: the session cookie is set and the dashboard opens.
    let signed_in = b.get(&back).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some(format!("{}/app", s.base).as_str()));
    let home = b.get(&format!("{}/app", s.base)).await;
    assert_eq!(home.status, 303, "{}", home.body);
    let ws = b.get(home.location.as_deref().unwrap()).await;
    assert_eq!(ws.status, 200, "{}", ws.body);
    assert!(ws.body.contains(&email), "the dashboard does not show who is signed in");
    // Signing in spent the pre-session cookie: the same address again is refused.
    let again = b.get(&back).await;
    assert_eq!(again.status, 403, "{}", again.body);

    // A refusal comes back as a message on the sign-in page.
    let mut b = Browser::new();
    let back = b
        .follow(
            &format!("{}/app/oidc/test", s.base),
            &Account { email: fresh_email("dash-unverified"), verified: false },
            &done,
        )
        .await;
    let refused = b.get(&back).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("has not verified this email address"), "{}", refused.body);
}
