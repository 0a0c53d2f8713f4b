//! A small W3C WebDriver client over reqwest, enough to drive Chromium through chromedriver.
//!
//! Why not thirtyfour: it switches on serde_json's `preserve_order` for the whole test build, so
//! the server under test would not be the server that ships (its JSON maps change type and
//! order). The protocol needed here is a dozen JSON calls.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// The element key of the W3C protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process on a free port, stopped when dropped.
pub struct Driver {
    url: String,
    http: reqwest::Client,
    _child: tokio::process::Child,
}

/// One browser (a WebDriver session).
pub struct Browser {
    base: String,
    http: reqwest::Client,
}

/// An element of the page.
pub struct Element<'a> {
    b: &'a Browser,
    id: String,
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {url}: {status} {v}");
    v["value"].clone()
}

impl Driver {
    /// Starts `chromedriver` on a free port and waits until it listens.
    pub async fn start(chromedriver: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let child = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new(), _child: child }
    }

    /// A new headless Chromium (`binary`) with the flags that work on this kind of machine.
    pub async fn browser(&self, binary: &str) -> Browser {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1440,1000",
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": args},
        }}});
        let v = call(&self.http, reqwest::Method::POST, &format!("{}/session", self.url), Some(caps)).await;
        let id = v["sessionId"].as_str().expect("a session id").to_string();
        let b = Browser { base: format!("{}/session/{id}", self.url), http: self.http.clone() };
        b.post("/timeouts", json!({"implicit": 5000})).await;
        b
    }
}

impl Browser {
    async fn post(&self, path: &str, body: Value) -> Value {
        call(&self.http, reqwest::Method::POST, &format!("{}{path}", self.base), Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        call(&self.http, reqwest::Method::GET, &format!("{}{path}", self.base), None).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// The page's URL now.
    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or("").to_string()
    }

    /// The page's HTML now.
    pub async fn source(&self) -> String {
        self.get("/source").await.as_str().unwrap_or("").to_string()
    }

    /// The first element matching a CSS selector (waiting up to 5 s for it).
    pub async fn find(&self, css: &str) -> Element<'_> {
        let v = self.post("/element", json!({"using": "css selector", "value": css})).await;
        Element { b: self, id: v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}")).to_string() }
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"x": 0, "y": 0, "width": width, "height": height})).await;
    }

    /// Writes a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let b64 = self.get("/screenshot").await;
        std::fs::write(path, decode_base64(b64.as_str().unwrap_or(""))).expect("write screenshot");
    }

    /// Accepts the open `confirm()` dialog.
    pub async fn accept_alert(&self) {
        self.post("/alert/accept", json!({})).await;
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) {
        call(&self.http, reqwest::Method::DELETE, &self.base, None).await;
    }
}

impl Element<'_> {
    /// Clicks it.
    pub async fn click(&self) {
        self.b.post(&format!("/element/{}/click", self.id), json!({})).await;
    }

    /// Replaces its value by typing `text`.
    pub async fn fill(&self, text: &str) {
        self.b.post(&format!("/element/{}/clear", self.id), json!({})).await;
        self.b.post(&format!("/element/{}/value", self.id), json!({"text": text})).await;
    }

    /// Its visible text.
    pub async fn text(&self) -> String {
        self.b.get(&format!("/element/{}/text", self.id)).await.as_str().unwrap_or("").to_string()
    }
}

/// Standard base64 (the screenshot's encoding).
fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::with_capacity(s.len() * 3 / 4), 0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(decode_base64("aGVsbG8="), b"hello");
    assert_eq!(decode_base64("aGk="), b"hi");
}
