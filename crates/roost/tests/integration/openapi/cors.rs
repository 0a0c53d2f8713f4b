//! CORS: off by default; with `cors_origins`, a listed origin's preflight is answered with the
//! methods and headers the API takes, and its requests may read the answer and roost's headers.

use reqwest::Method;
use roost_test_kit::{Backend, TestServer};

const APP: &str = "https://app.example.com";

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn preflight(base: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, format!("{base}/v1/charges"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type, idempotency-key, roost-workspace")
        .send()
        .await
        .expect("preflight")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default() {
    let s = TestServer::start(Backend::Sqlite).await.expect("server");
    let r = preflight(&s.base, APP).await;
    assert!(header(&r, "access-control-allow-origin").is_none(), "CORS answered without cors_origins: {r:?}");
    let r = reqwest::Client::new().get(format!("{}/v1/plans", s.base)).header("Origin", APP).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "access-control-allow-origin").is_none(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_listed_origins_only() {
    let s = TestServer::start_with(Backend::Sqlite, |st| st.cors_origins = vec![APP.into()]).await.expect("server");
    let r = preflight(&s.base, APP).await;
    assert!(r.status().is_success(), "preflight: {}", r.status());
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    let methods = header(&r, "access-control-allow-methods").unwrap_or("").to_lowercase();
    for m in ["get", "post", "put", "patch", "delete"] {
        assert!(methods.contains(m), "allow-methods {methods:?} lacks {m}");
    }
    let headers = header(&r, "access-control-allow-headers").unwrap_or("").to_lowercase();
    for h in ["authorization", "content-type", "idempotency-key", "roost-workspace"] {
        assert!(headers.contains(h), "allow-headers {headers:?} lacks {h}");
    }
    assert_eq!(header(&r, "access-control-max-age"), Some("600"));
    assert!(header(&r, "access-control-allow-credentials").is_none(), "credentials must not be allowed");

    // A real request from the page: the answer is readable, with roost's headers exposed.
    let (alice, _) = s.signup("Alice").await;
    let token = alice.token().unwrap().to_string();
    let r = reqwest::Client::new()
        .get(format!("{}/v1/me", s.base))
        .header("Origin", APP)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));
    let exposed = header(&r, "access-control-expose-headers").unwrap_or("").to_lowercase();
    for h in ["ratelimit-remaining", "retry-after", "x-request-id", "roost-credits-available"] {
        assert!(exposed.contains(h), "expose-headers {exposed:?} lacks {h}");
    }
    // Problems carry the headers too, so that a page can read why it was refused.
    let r = reqwest::Client::new().get(format!("{}/v1/me", s.base)).header("Origin", APP).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(APP));

    // Another origin gets nothing a browser would accept.
    let r = preflight(&s.base, "https://evil.example.com").await;
    assert!(header(&r, "access-control-allow-origin").is_none(), "{r:?}");
    let r = reqwest::Client::new()
        .get(format!("{}/v1/me", s.base))
        .header("Origin", "https://evil.example.com")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(header(&r, "access-control-allow-origin").is_none(), "{r:?}");
}
