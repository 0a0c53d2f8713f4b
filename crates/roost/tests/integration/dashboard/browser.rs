//! The team story in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver), with screenshots of each page at 375 px and 1440 px wide written to
//! `$CARGO_TARGET_TMPDIR/dashboard-screenshots/<backend>/`. Without chromedriver the test says
//! SKIPPED (and `browser_suite_skipped_notice` says so in every run); `.ci/run` installs it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use roost_test_kit::TestServer;
use serde_json::json;

use super::webdriver::{Browser, Driver};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Why the browser tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    [CHROMEDRIVER, CHROMIUM].into_iter().find(|p| !Path::new(p).exists()).map(|p| {
        format!("SKIPPED: {p} is missing, so the dashboard's browser test did not run (apt-get install chromium chromium-driver)")
    })
}

/// Says plainly, in every run, whether the browser test ran.
#[test]
fn browser_suite_skipped_notice() {
    match missing() {
        Some(why) => {
            println!("{why}");
            eprintln!("{why}");
        }
        None => println!("Browser suite: running with {CHROMIUM} through {CHROMEDRIVER}"),
    }
}

/// Screenshots of the current page at both widths.
async fn shots(d: &Browser, dir: &Path, name: &str) {
    for (w, h) in [(375, 812), (1440, 1000)] {
        d.resize(w, h).await;
        d.screenshot(&dir.join(format!("{name}-{w}.png"))).await;
    }
}

async fn fill(d: &Browser, id: &str, text: &str) {
    d.find(&format!("#{id}")).await.fill(text).await;
}

async fn click(d: &Browser, id: &str) {
    d.find(&format!("#{id}")).await.click().await;
}

async fn text(d: &Browser, id: &str) -> String {
    d.find(&format!("#{id}")).await.text().await
}

/// Waits until the page's URL contains `part`.
async fn wait_url(d: &Browser, part: &str) -> String {
    for _ in 0..100 {
        let u = d.url().await;
        if u.contains(part) {
            return u;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never reached a URL with {part}: {}", d.url().await);
}

both_backends!(team_story_in_a_browser);

async fn team_story_in_a_browser(s: TestServer) {
    if let Some(why) = missing() {
        eprintln!("{why}");
        return;
    }
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots").join(format!("{:?}", s.backend()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = s.base.clone();
    let driver = Driver::start(CHROMEDRIVER).await;
    let owner = driver.browser(CHROMIUM).await;
    let bob = driver.browser(CHROMIUM).await;

    // Olivia signs up and creates an org.
    owner.goto(&format!("{base}/app/sign-up")).await;
    shots(&owner, &dir, "01-sign-up").await;
    fill(&owner, "name", "Olivia").await;
    fill(&owner, "email", &crate::support::fresh_email("olivia")).await;
    fill(&owner, "password", "correct horse battery").await;
    click(&owner, "auth-submit").await;
    wait_url(&owner, "/app/w/").await;
    shots(&owner, &dir, "02-personal-workspace").await;
    owner.goto(&format!("{base}/app/orgs/new")).await;
    fill(&owner, "org-name", "Acme").await;
    click(&owner, "plan-team").await;
    shots(&owner, &dir, "03-new-org").await;
    click(&owner, "create-org").await;
    let org_url = wait_url(&owner, "/app/o/").await;
    let org = org_url.split("/app/o/").nth(1).unwrap().split('?').next().unwrap().to_string();
    assert!(owner.source().await.contains("Organization created."));
    shots(&owner, &dir, "04-org-overview").await;

    // She invites Bob; the page shows the link.
    let bob_email = crate::support::fresh_email("bob");
    owner.goto(&format!("{base}/app/o/{org}/members")).await;
    fill(&owner, "inv-email", &bob_email).await;
    click(&owner, "send-invite").await;
    let link = text(&owner, "invite-link").await;
    assert!(link.starts_with(&format!("{base}/app/invitations/accept?token=")), "{link}");
    shots(&owner, &dir, "05-members").await;

    // Bob opens the link, signs up on the way, and accepts.
    bob.goto(&link).await;
    wait_url(&bob, "/app/sign-in").await;
    shots(&bob, &dir, "06-sign-in").await;
    bob.find("a[href^='/app/sign-up']").await.click().await;
    fill(&bob, "name", "Bob").await;
    fill(&bob, "email", &bob_email).await;
    fill(&bob, "password", "correct horse battery").await;
    click(&bob, "auth-submit").await;
    wait_url(&bob, "/app/invitations/accept").await;
    shots(&bob, &dir, "07-accept").await;
    click(&bob, "accept-invite").await;
    wait_url(&bob, &format!("/app/o/{org}")).await;
    assert!(bob.source().await.contains("Invitation accepted"));

    // Bob switches to the org's workspace in the topbar: picking an option fires `change`, and the
    // script submits the form.
    bob.find("#switch-ws option:not([selected])").await.click().await;
    let ws_url = wait_url(&bob, "done=switched").await;
    let ws = ws_url.split("/app/w/").nth(1).unwrap().split('?').next().unwrap().to_string();
    assert!(bob.source().await.contains("Default (current)"));

    // Bob creates a key; the secret is shown once.
    fill(&bob, "key-name", "ci").await;
    click(&bob, "create-key").await;
    let secret = text(&bob, "new-secret").await;
    assert!(secret.starts_with("rsk_"), "{secret}");
    shots(&bob, &dir, "08-workspace-new-key").await;

    // A charge through the API with that key appears in the journal and the usage chart.
    let key = s.client.with_token(&secret);
    let c = key.post_idem("/v1/charges", "browser-1", &json!({"amount": 42, "action": "render"})).await.unwrap();
    assert_eq!(c.status, 201, "{}", c.body);
    let c = key.post_idem("/v1/charges", "browser-2", &json!({"amount": 14, "action": "upload"})).await.unwrap();
    assert_eq!(c.status, 201, "{}", c.body);
    owner.goto(&format!("{base}/app/o/{org}/credits")).await;
    owner.find("#u-group option[value='action']").await.click().await;
    click(&owner, "usage-go").await;
    wait_url(&owner, "group_by=action").await;
    let journal = text(&owner, "journal").await;
    assert!(journal.contains("render") && journal.contains("42") && journal.contains("key ci"), "{journal}");
    let chart = owner.find("#usage-chart svg").await;
    let chart = chart.text().await;
    assert!(chart.contains("42 (75.0%)") && chart.contains("14 (25.0%)"), "{chart}");
    shots(&owner, &dir, "09-credits").await;
    // The whole credits page at once, for the README.
    owner.resize(1440, 1900).await;
    owner.screenshot(&dir.join("09-credits-full-1440.png")).await;
    // On the same page, Olivia sets a low-balance alert.
    fill(&owner, "alert-credits", "500").await;
    click(&owner, "alert-save-credits").await;
    wait_url(&owner, "done=alerts").await;
    let alert = text(&owner, "alert-status-credits").await;
    assert!(alert.contains("fall below 500"), "{alert}");

    // Olivia revokes the key (confirming the dialog); the next request with it gets 401.
    owner.goto(&format!("{base}/app/w/{ws}")).await;
    owner.find("button[data-revoke='ci']").await.click().await;
    owner.accept_alert().await;
    wait_url(&owner, "done=revoked").await;
    shots(&owner, &dir, "10-workspace-revoked").await;
    let after = key.post_idem("/v1/charges", "browser-3", &json!({"amount": 1, "action": "render"})).await.unwrap();
    assert_eq!(after.status, 401);

    // The audit log shows it all.
    owner.goto(&format!("{base}/app/o/{org}/audit")).await;
    let audit = text(&owner, "audit").await;
    for action in ["org.created", "member.invited", "member.joined", "key.created", "key.revoked"] {
        assert!(audit.contains(action), "{action} missing: {audit}");
    }
    shots(&owner, &dir, "11-audit").await;
    owner.goto(&format!("{base}/app/account")).await;
    shots(&owner, &dir, "12-account").await;
    owner.quit().await;
    bob.quit().await;
    s.assert_ledger().await;
}
