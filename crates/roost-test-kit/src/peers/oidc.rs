//! A real OpenID provider (npm `oidc-provider`, installed on demand into a cache under the target
//! dir) on 127.0.0.1, and a small cookie-jar browser that drives its sign-in over plain HTTP.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SCRIPT: &str = include_str!("oidc_provider.mjs");
/// The npm package and the major version the script is written for.
pub const PACKAGE: &str = "oidc-provider@9";

/// A client registered at the provider.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
}

/// A running provider; stopped when dropped.
pub struct OidcProvider {
    pub port: u16,
    script: PathBuf,
    _child: Child,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

/// The folder holding `node_modules/oidc-provider`, installed there on first use (into a scratch
/// folder renamed into place, so parallel test processes never see half an install).
fn install(cache: &Path) -> Result<PathBuf, String> {
    let dir = cache.join("npmdeps-oidc-provider");
    let has = |d: &Path| d.join("node_modules/oidc-provider/package.json").exists();
    if has(&dir) {
        return Ok(dir);
    }
    let scratch = cache.join(format!("npmdeps-oidc-provider.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("npm scratch dir: {e}"))?;
    let ok = std::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
        .arg(&scratch)
        .arg(PACKAGE)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !has(&scratch) {
        let _ = std::fs::remove_dir_all(&scratch);
        return Err(super::skipped(&format!("`npm install {PACKAGE}` failed: the OpenID provider cannot run")));
    }
    if std::fs::rename(&scratch, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    if has(&dir) { Ok(dir) } else { Err(super::skipped("oidc-provider installed but not found")) }
}

/// The major version of the machine's Node, which must be 20 or later (oidc-provider 9 needs it).
pub fn node_major() -> Result<u32, String> {
    let out = std::process::Command::new("node").arg("--version").output();
    let version = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => {
            return Err(super::skipped(
                "node is not installed (the OpenID provider's runtime): apt-get install nodejs npm",
            ));
        }
    };
    let major = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
    if major < 20 {
        return Err(super::skipped(&format!("node {version} is too old for oidc-provider 9 (Node 20 or later)")));
    }
    Ok(major)
}

impl OidcProvider {
    /// Starts one with `clients`, each allowed to send people back to `callback_path` on any
    /// loopback port (e.g. `/v1/oidc/test/callback`). `cache` is where oidc-provider is installed
    /// (integration tests pass `env!("CARGO_TARGET_TMPDIR")`). `Err` is a `SKIPPED: …` line to print.
    pub async fn start(cache: impl AsRef<Path>, clients: &[OidcClient], callback_path: &str) -> Result<Self, String> {
        let cache = cache.as_ref();
        std::fs::create_dir_all(cache).map_err(|e| format!("cache dir: {e}"))?;
        node_major()?;
        let dir = install(cache)?;
        // Beside node_modules, so that `import 'oidc-provider'` finds it.
        let script = dir.join(format!("provider-{}.mjs", roost_domain::IdKind::Event.generate()));
        std::fs::write(&script, SCRIPT).map_err(|e| format!("script: {e}"))?;
        let clients: Vec<Value> = clients
            .iter()
            .map(|c| {
                json!({"client_id": c.client_id, "client_secret": c.client_secret,
                       "redirect_uris": [format!("http://127.0.0.1{callback_path}")]})
            })
            .collect();
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg(json!({ "clients": clients }).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Shown with a failing test's output.
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| super::skipped(&format!("cannot run node: {e}")))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut reader = BufReader::new(stdout);
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
                    return Err("the OpenID provider exited before listening".to_string());
                }
                if let Some(p) = line.trim().strip_prefix("PORT ") {
                    return p.parse::<u16>().map_err(|e| e.to_string());
                }
            }
        })
        .await
        .map_err(|_| "the OpenID provider did not start in 30 s".to_string())??;
        // Keep reading what it prints later (notices): a closed pipe would make its writes fail.
        tokio::spawn(async move {
            let mut sink = String::new();
            while reader.read_line(&mut sink).await.is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        Ok(Self { port, script, _child: child })
    }

    /// The issuer URL roost's `[[oidc]] issuer` names.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Who signs in at the provider.
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    /// The `email_verified` claim the provider gives.
    pub verified: bool,
}

/// One answer of a [`Browser`] request.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    /// The `Location` header, made absolute.
    pub location: Option<String>,
    pub content_type: String,
    pub body: String,
}

/// A browser with a cookie jar that never follows redirects by itself.
pub struct Browser {
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// An empty jar.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http, cookies: Vec::new() }
    }

    /// GETs `url` with the jar's cookies, keeping the cookies it sets.
    ///
    /// # Panics
    /// When the request gets no answer.
    pub async fn get(&mut self, url: &str) -> Page {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut req = self.http.get(url);
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        for v in res.headers().get_all("set-cookie") {
            let Some((name, value)) =
                v.to_str().ok().and_then(|s| s.split(';').next()).and_then(|kv| kv.split_once('='))
            else {
                continue;
            };
            self.cookies.retain(|(k, _)| k != name.trim());
            if !value.is_empty() {
                self.cookies.push((name.trim().to_string(), value.to_string()));
            }
        }
        let base = res.url().clone();
        let location = res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| base.join(l).ok())
            .map(String::from);
        let status = res.status().as_u16();
        let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = res.text().await.unwrap_or_default();
        Page { status, location, content_type, body }
    }

    /// Follows redirects from `url`, signing in at the provider as `account` when it asks, until a
    /// redirect points at a URL starting with `stop_at`; returns that URL. Panics on any other
    /// answer (printing it), and after 20 redirects.
    pub async fn follow(&mut self, url: &str, account: &Account, stop_at: &str) -> String {
        let mut url = url.to_string();
        for _ in 0..20 {
            if url.starts_with(stop_at) {
                return url;
            }
            let target = match reqwest::Url::parse(&url) {
                // The login prompt reads these; the consent prompt ignores them.
                Ok(u) if u.path().starts_with("/interaction/") => {
                    let mut u = u;
                    u.query_pairs_mut()
                        .append_pair("login", &account.email)
                        .append_pair("verified", if account.verified { "true" } else { "false" });
                    u.to_string()
                }
                _ => url.clone(),
            };
            let page = self.get(&target).await;
            match page.location {
                Some(next) if (300..400).contains(&page.status) => url = next,
                _ => panic!("GET {target}: {} {}: {}", page.status, page.content_type, page.body),
            }
        }
        panic!("more than 20 redirects from {url}");
    }
}
