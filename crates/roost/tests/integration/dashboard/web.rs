//! A person with a browser, over plain HTTP: cookies kept, redirects seen (not followed), forms
//! posted with the CSRF token of the page they came from.

use std::collections::HashMap;
use std::sync::Mutex;

use roost_test_kit::TestServer;

/// One answer of the dashboard.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        attr_after(&self.html, r#"name="_csrf" value=""#).unwrap_or_default()
    }

    /// Whether the page's HTML contains `s`.
    pub fn has(&self, s: &str) -> bool {
        self.html.contains(s)
    }

    /// A value of the page: the text between `before` and the next `"`.
    pub fn attr(&self, before: &str) -> Option<String> {
        attr_after(&self.html, before)
    }
}

fn attr_after(html: &str, before: &str) -> Option<String> {
    let i = html.find(before)? + before.len();
    html[i..].split('"').next().map(|s| s.replace("&amp;", "&"))
}

/// A browser session on one server.
pub struct Web {
    base: String,
    http: reqwest::Client,
    cookies: Mutex<HashMap<String, String>>,
}

impl Web {
    /// A browser with no cookies.
    pub fn new(s: &TestServer) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("roost-dashboard-tests")
            .build()
            .expect("client");
        Self { base: s.base.clone(), http, cookies: Mutex::new(HashMap::new()) }
    }

    /// The cookie `name`, if set.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("cookies").get(name).cloned()
    }

    /// Sets a cookie by hand (to replay another browser's).
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies.lock().expect("cookies").insert(name.into(), value.into());
    }

    fn cookie_header(&self) -> String {
        self.cookies.lock().expect("cookies").iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&self, req: reqwest::RequestBuilder) -> Page {
        let res = req.header("cookie", self.cookie_header()).send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        for c in headers.get_all("set-cookie") {
            let c = c.to_str().expect("cookie text");
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').expect("cookie pair");
            let mut jar = self.cookies.lock().expect("cookies");
            if attrs.contains("Max-Age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.to_string(), v.to_string());
            }
        }
        let location = headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let html = res.text().await.expect("body");
        Page { status, location, headers, html }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Page {
        self.finish(self.http.get(format!("{}{path}", self.base))).await
    }

    /// `GET path`, following redirects within the dashboard.
    pub async fn open(&self, path: &str) -> Page {
        let mut p = self.get(path).await;
        for _ in 0..5 {
            match (&p.status, &p.location) {
                (301..=303, Some(l)) => p = self.get(&l.clone()).await,
                _ => break,
            }
        }
        p
    }

    /// Posts `fields` as a form, exactly as given (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).expect("form");
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.finish(req).await
    }

    /// Posts a form with the CSRF token of `from` (a page this browser just got).
    pub async fn post(&self, from: &Page, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = from.csrf();
        let mut all = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Signs up through the pages; returns the browser and the email used.
    pub async fn sign_up(s: &TestServer, name: &str) -> (Self, String) {
        let w = Self::new(s);
        let email = crate::support::fresh_email(&name.to_lowercase());
        let form = w.get("/app/sign-up").await;
        assert_eq!(form.status, 200);
        let r = w
            .post(&form, "/app/sign-up", &[("name", name), ("email", &email), ("password", "correct horse battery")])
            .await;
        assert_eq!(r.status, 303, "sign-up failed: {}", r.html);
        assert!(w.cookie("roost_session").is_some(), "no session cookie after sign-up");
        (w, email)
    }

    /// A signed-in page's id of the active workspace (from the switcher).
    pub async fn active_ws(&self) -> String {
        let p = self.open("/app").await;
        let loc = p.attr(r#"<option value=""#);
        assert!(loc.is_some(), "no switcher on {}", p.html);
        p.html
            .split("<option value=\"")
            .skip(1)
            .find(|o| o.contains(" selected>"))
            .and_then(|o| o.split('"').next())
            .expect("a current workspace")
            .to_string()
    }
}
