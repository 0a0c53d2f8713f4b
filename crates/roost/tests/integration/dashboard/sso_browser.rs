//! Single sign-on in a real browser (headless Chromium through chromedriver): the sign-in page's
//! button, the provider (npm `oidc-provider`), and back to the signed-in dashboard, with a
//! screenshot of the sign-in page in `$CARGO_TARGET_TMPDIR/dashboard-screenshots/`. Without
//! chromedriver, Chromium or Node the test says SKIPPED.

use std::path::{Path, PathBuf};
use std::time::Duration;

use roost_test_kit::Backend;

use super::webdriver::{Browser, Driver};
use crate::identity::oidc::start_with_oidc;
use crate::support::{encode, fresh_email};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Waits until the page's URL contains `part`.
async fn wait_url(d: &Browser, part: &str) -> String {
    for _ in 0..200 {
        let u = d.url().await;
        if u.contains(part) {
            return u;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never reached a URL with {part}: {}", d.url().await);
}

async fn sso_in_a_browser(backend: Backend) {
    if let Some(p) = [CHROMEDRIVER, CHROMIUM].into_iter().find(|p| !Path::new(p).exists()) {
        eprintln!("SKIPPED: {p} is missing, so the single sign-on browser test did not run");
        return;
    }
    let Some((_idp, s)) = start_with_oidc(backend).await else { return };
    let driver = Driver::start(CHROMEDRIVER).await;
    let b = driver.browser(CHROMIUM).await;
    b.goto(&format!("{}/app/sign-in", s.base)).await;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots").join(format!("{backend:?}"));
    std::fs::create_dir_all(&dir).unwrap();
    b.screenshot(&dir.join("sign-in-sso.png")).await;
    assert_eq!(b.find("#sso-test").await.text().await, "Sign in with Test IdP");
    b.find("#sso-test").await.click().await;
    // At the provider: its login step is the test's (it signs in whoever the query names).
    let at = wait_url(&b, "/interaction/").await;
    let email = fresh_email("browser-sso");
    b.goto(&format!("{at}?login={}&verified=true", encode(&email))).await;
    let landed = wait_url(&b, "/app/w/").await;
    assert!(landed.starts_with(&s.base), "{landed}");
    let page = b.source().await;
    assert!(page.contains(&email), "the dashboard does not show who signed in");
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_in_a_browser_sqlite() {
    sso_in_a_browser(Backend::Sqlite).await;
}

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_in_a_browser_postgres() {
    sso_in_a_browser(Backend::Postgres).await;
}
}
