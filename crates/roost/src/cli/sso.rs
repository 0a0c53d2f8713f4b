//! `roost login --sso PROVIDER`: single sign-on in the browser. The CLI listens on a loopback port
//! (RFC 8252), opens the server's `/v1/oidc/{provider}/start` with that port as `redirect_uri`,
//! waits for the browser to come back with a one-time `code`, and exchanges it for a session.

use std::time::Duration;

use reqwest::Url;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::ctx::Ctx;
use super::error::CliError;
use super::output::{items, text};

/// How long the CLI waits for the browser to come back.
const WAIT: Duration = Duration::from_secs(300);

/// Signs in through `provider`; returns the server's `{token, user}`.
pub async fn login(ctx: &Ctx, provider: &str, open: bool) -> Result<Value, CliError> {
    let api = ctx.anon();
    let list = api.get("/v1/oidc/providers").await?;
    let known: Vec<String> = items(&list["items"]).iter().map(|p| text(p, "/id").to_string()).collect();
    let name = items(&list["items"]).iter().find(|p| text(p, "/id") == provider).map(|p| text(p, "/name").to_string());
    let Some(name) = name else {
        let have = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        return Err(CliError::Input(format!("the server has no identity provider `{provider}` (it has: {have})")));
    };
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::Input(format!("cannot listen on a loopback port for the browser: {e}")))?;
    let port = listener.local_addr().map_err(|e| CliError::Input(e.to_string()))?.port();
    // A path no one else knows: a code brought to this port by anyone but the browser this
    // sign-in sent (another flow aimed at the port, a page probing loopback ports) is refused
    // (found by review: the CLI took any code that reached `/callback`).
    let path = format!("/callback/{}", roost_domain::tokens::generate("cb_"));
    let redirect = format!("http://127.0.0.1:{port}{path}");
    let mut url = Url::parse(&format!("{}/v1/oidc/{provider}/start", ctx.server))
        .map_err(|e| CliError::Input(format!("the server URL: {e}")))?;
    url.query_pairs_mut().append_pair("redirect_uri", &redirect);
    eprintln!("Sign in with {name} in your browser at:\n  {url}");
    if open && !open_browser(url.as_str()) {
        eprintln!("(no browser could be opened: open the address above yourself)");
    }
    let query = tokio::time::timeout(WAIT, wait_for_code(&listener, &path))
        .await
        .map_err(|_| CliError::Input("no answer from the browser within 5 minutes".into()))??;
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(code) = param("error") {
        let detail = param("error_description").unwrap_or_default();
        let status = match code.as_str() {
            "forbidden" => 403,
            "provider_unavailable" => 503,
            _ => 401,
        };
        return Err(CliError::Problem { status, code: Some(code), detail: Some(detail) });
    }
    let code = param("code").ok_or_else(|| CliError::Input("the browser came back without a code".into()))?;
    api.post("/v1/oidc/exchange", &json!({ "code": code })).await
}

/// Serves the loopback port until a request for `path` comes; answers it with a page that says to
/// go back to the terminal, and returns its query. Any other path is 404.
async fn wait_for_code(listener: &TcpListener, path: &str) -> Result<Vec<(String, String)>, CliError> {
    loop {
        let (mut conn, _) = listener.accept().await.map_err(|e| CliError::Input(e.to_string()))?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut len = 0;
        // Only the request line matters; read until it is complete.
        while len < buf.len() {
            let n = match conn.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            len += n;
            if buf[..len].windows(2).any(|w| w == b"\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..len]);
        let target = head.lines().next().and_then(|l| l.split(' ').nth(1)).unwrap_or("/");
        let url = Url::parse(&format!("http://127.0.0.1{target}")).ok();
        let Some(url) = url.filter(|u| u.path() == path) else {
            let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            continue;
        };
        let query: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let failed = query.iter().any(|(k, _)| k == "error");
        let page = if failed {
            "<!doctype html><title>roost</title><p>Sign-in failed. The terminal says why; you can close this tab."
        } else {
            "<!doctype html><title>roost</title><p>Signed in. You can close this tab and go back to the terminal."
        };
        let res = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = conn.write_all(res.as_bytes()).await;
        let _ = conn.shutdown().await;
        return Ok(query);
    }
}

/// Opens `url` in the person's browser: `$BROWSER`, else the desktop's opener.
fn open_browser(url: &str) -> bool {
    let mut candidates: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(b) = std::env::var_os("BROWSER").and_then(|b| b.into_string().ok()).filter(|b| !b.is_empty()) {
        candidates.push((b, Vec::new()));
    }
    if cfg!(target_os = "macos") {
        candidates.push(("open".into(), Vec::new()));
    } else if cfg!(windows) {
        candidates.push(("cmd".into(), vec!["/C".into(), "start".into(), String::new()]));
    } else {
        candidates.push(("xdg-open".into(), Vec::new()));
    }
    candidates.into_iter().any(|(cmd, args)| {
        std::process::Command::new(cmd)
            .args(args)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
    })
}
