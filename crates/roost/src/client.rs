//! The HTTP client of the roost API: the CLI and the integration tests both talk through it.

use reqwest::Method;
use serde_json::Value;

/// A client bound to one server, optionally with a bearer token and a workspace override.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    workspace: Option<String>,
    /// Extra headers sent with every request.
    headers: Vec<(String, String)>,
}

/// An answer: status and JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Value,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The `ETag` header (a state document's version), if any.
    pub etag: Option<String>,
}

impl Response {
    /// The problem `code`, if the body is a problem document.
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }

    /// A string field of the body, or "".
    pub fn str(&self, field: &str) -> &str {
        self.body.get(field).and_then(Value::as_str).unwrap_or("")
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a request did not get an answer at all.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the roost server at {base}: {source}")]
    Transport { base: String, source: reqwest::Error },
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        // HTTPS servers: rustls with the ring provider, trusting the system's certificates. The
        // provider is process-wide; a second install is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            // Named in the server's session list (`roost sessions list`).
            .user_agent(concat!("roost-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http, base: base.trim_end_matches('/').to_string(), token: None, workspace: None, headers: Vec::new() }
    }

    /// The same client acting with `token`.
    pub fn with_token(&self, token: &str) -> Self {
        Self { token: Some(token.to_string()), ..self.clone() }
    }

    /// The same client sending `Roost-Workspace: ws` on every request.
    pub fn in_workspace(&self, ws: &str) -> Self {
        Self { workspace: Some(ws.to_string()), ..self.clone() }
    }

    /// The same client sending `name: value` on every request (replacing an earlier value).
    pub fn with_header(&self, name: &str, value: &str) -> Self {
        let mut c = self.clone();
        c.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        c.headers.push((name.to_string(), value.to_string()));
        c
    }

    /// `POST path` with an `Idempotency-Key` (for the ledger's (idem) endpoints).
    pub async fn post_idem(&self, path: &str, key: &str, body: &Value) -> Result<Response, ClientError> {
        self.with_header("Idempotency-Key", key).post(path, body).await
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The token in use, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response, ClientError> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(ws) = &self.workspace {
            req = req.header("Roost-Workspace", ws);
        }
        for (n, v) in &self.headers {
            req = req.header(n.as_str(), v.as_str());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.finish(req).await
    }

    /// Sends raw bytes as the body (for tests of malformed input).
    pub async fn send_raw(&self, method: Method, path: &str, body: Vec<u8>) -> Result<Response, ClientError> {
        let mut req =
            self.http.request(method, format!("{}{}", self.base, path)).header("content-type", "application/json");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(ws) = &self.workspace {
            req = req.header("Roost-Workspace", ws);
        }
        for (n, v) in &self.headers {
            req = req.header(n.as_str(), v.as_str());
        }
        self.finish(req.body(body)).await
    }

    async fn finish(&self, req: reqwest::RequestBuilder) -> Result<Response, ClientError> {
        let transport = |source| ClientError::Transport { base: self.base.clone(), source };
        let res = req.send().await.map_err(transport)?;
        let status = res.status().as_u16();
        let content_type =
            res.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let etag = res.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = res.bytes().await.map_err(transport)?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Response { status, body, content_type, etag })
    }

    /// `GET path`, answering the response as it arrives (for bodies read as a stream, such as a
    /// workspace export).
    pub async fn get_stream(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let mut req = self.http.get(format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(ws) = &self.workspace {
            req = req.header("Roost-Workspace", ws);
        }
        for (n, v) in &self.headers {
            req = req.header(n.as_str(), v.as_str());
        }
        req.send().await.map_err(|source| ClientError::Transport { base: self.base.clone(), source })
    }

    /// `GET path`, answering the body as text (for bodies that are not one JSON value, such as
    /// JSON lines).
    pub async fn get_text(&self, path: &str) -> Result<(u16, String), ClientError> {
        let res = self.get_stream(path).await?;
        let status = res.status().as_u16();
        let text = res.text().await.map_err(|source| ClientError::Transport { base: self.base.clone(), source })?;
        Ok((status, text))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Response, ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Response, ClientError> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Response, ClientError> {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Response, ClientError> {
        self.send(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Response, ClientError> {
        self.send(Method::DELETE, path, None).await
    }

    /// `DELETE path` with a JSON body (e.g. turning two-factor off takes a code).
    pub async fn delete_json(&self, path: &str, body: &Value) -> Result<Response, ClientError> {
        self.send(Method::DELETE, path, Some(body)).await
    }
}
