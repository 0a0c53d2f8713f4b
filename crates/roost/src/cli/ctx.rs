//! What every client command works with: the server, the saved session, and API calls that turn
//! non-2xx answers into [`CliError`]s.

use std::fmt::Write as _;
use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;

use super::GlobalOpts;
use super::config::{self, Config};
use super::error::CliError;
use super::output::{items, text};
use crate::Client;

/// The server used when neither `--server`, `ROOST_SERVER` nor a saved session names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The state of one CLI invocation.
#[derive(Debug)]
pub struct Ctx {
    /// `--json`: print the server's answers instead of tables.
    pub json: bool,
    /// The server in use, without a trailing slash.
    pub server: String,
    config_path: PathBuf,
    config: Config,
}

impl Ctx {
    /// Reads the config file and settles which server to talk to.
    pub fn load(opts: &GlobalOpts) -> Result<Self, CliError> {
        let config_path = config::path()?;
        let config = config::load(&config_path)?;
        let server = match opts.server.as_deref().or(config.server.as_deref()) {
            Some(s) => normalize(s)?,
            None => DEFAULT_SERVER.to_string(),
        };
        Ok(Self { json: opts.json, server, config_path, config })
    }

    /// A client for unauthenticated calls (signup, login).
    pub fn anon(&self) -> Api {
        Api { client: Client::new(&self.server) }
    }

    /// A client acting as the logged-in user. The saved token is sent only to the server it was
    /// issued by, never to another one named with `--server`.
    pub fn user(&self) -> Result<Api, CliError> {
        let token = self.config.token.as_deref().ok_or(CliError::NotLoggedIn)?;
        let saved = self.config.server.as_deref().map(normalize).transpose()?.unwrap_or_else(|| DEFAULT_SERVER.into());
        if saved != self.server {
            return Err(CliError::OtherServer { server: self.server.clone(), saved });
        }
        Ok(Api { client: Client::new(&self.server).with_token(token) })
    }

    /// A client acting as the operator, with an operator key (`rso_…`).
    pub fn operator(&self, key: &str) -> Api {
        Api { client: Client::new(&self.server).with_token(key) }
    }

    /// Saves a new session for the current server.
    pub fn save_session(&mut self, token: &str) -> Result<(), CliError> {
        self.config.server = Some(self.server.clone());
        self.config.token = Some(token.to_string());
        config::save(&self.config_path, &self.config)
    }

    /// Forgets the saved token (the server stays remembered).
    pub fn forget_token(&mut self) -> Result<(), CliError> {
        self.config.token = None;
        config::save(&self.config_path, &self.config)
    }
}

fn normalize(server: &str) -> Result<String, CliError> {
    let s = server.trim().trim_end_matches('/');
    if s.starts_with("http://") || s.starts_with("https://") {
        Ok(s.to_string())
    } else {
        Err(CliError::Input(format!("the server must be an http:// or https:// URL, not `{server}`")))
    }
}

/// The roost API through [`Client`], answering the body of a 2xx response or an error.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
}

impl Api {
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let r = self.client.send(method, path, body).await.map_err(|e| CliError::transport(&e))?;
        if r.is_success() { Ok(r.body) } else { Err(CliError::from_response(&r)) }
    }

    /// The HTTP client underneath, for calls that need the answer's headers or its body as a stream.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The same API acting in workspace `ws` (the `Roost-Workspace` header).
    pub fn in_workspace(&self, ws: &str) -> Api {
        Api { client: self.client.in_workspace(ws) }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.send(Method::DELETE, path, None).await
    }

    /// `DELETE path` with a JSON body.
    pub async fn delete_json(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(Method::DELETE, path, Some(body)).await
    }

    /// The org named by `arg`: an id as it is, or the name of an org the user belongs to.
    pub async fn org_id(&self, arg: &str) -> Result<String, CliError> {
        if arg.starts_with("org_") {
            return Ok(arg.to_string());
        }
        let me = self.get("/v1/me").await?;
        let found =
            memberships(&me).filter(|m| text(m, "/org_name").eq_ignore_ascii_case(arg)).map(|m| text(m, "/org_id"));
        one_of(found.collect(), "organization", arg)
    }

    /// The workspace named by `arg`: an id as it is, or the name of a workspace the user sees —
    /// `Org/Workspace` to name it within one organization (two orgs may both have a `Default`).
    pub async fn workspace_id(&self, arg: &str) -> Result<String, CliError> {
        if arg.starts_with("ws_") {
            return Ok(arg.to_string());
        }
        let me = self.get("/v1/me").await?;
        let (org, name) = match arg.rsplit_once('/') {
            Some((org, name)) if !org.is_empty() && !name.is_empty() => (Some(org), name),
            _ => (None, arg),
        };
        let found = memberships(&me)
            .filter(|m| org.is_none_or(|o| text(m, "/org_name").eq_ignore_ascii_case(o) || text(m, "/org_id") == o))
            .flat_map(|m| items(&m["workspaces"]))
            .filter(|w| text(w, "/name").eq_ignore_ascii_case(name))
            .map(|w| text(w, "/id"));
        one_of(found.collect(), "workspace", arg)
    }

    /// The workspace named by `ws` (see [`Api::workspace_id`]), else the one calls act in now.
    pub async fn workspace_or_current(&self, ws: Option<&str>) -> Result<String, CliError> {
        match ws {
            Some(ws) => self.workspace_id(ws).await,
            None => self.current_workspace_id().await,
        }
    }

    /// The workspace workspace-scoped calls act in now.
    pub async fn current_workspace_id(&self) -> Result<String, CliError> {
        let ws = self.get("/v1/workspaces/current").await?;
        Ok(text(&ws, "/id").to_string())
    }

    /// The member of `org` named by `arg`: an email is looked up, anything else (an id, `me`) is
    /// passed on as it is.
    pub async fn member_id(&self, org: &str, arg: &str) -> Result<String, CliError> {
        if !arg.contains('@') {
            return Ok(arg.to_string());
        }
        let members = self.get(&format!("/v1/orgs/{}/members?limit=500", seg(org))).await?;
        let found =
            items(&members).iter().filter(|m| text(m, "/email").eq_ignore_ascii_case(arg)).map(|m| text(m, "/user_id"));
        one_of(found.collect(), "member", arg)
    }
}

fn memberships(me: &Value) -> impl Iterator<Item = &Value> {
    items(&me["memberships"]).iter()
}

fn one_of(found: Vec<&str>, what: &str, name: &str) -> Result<String, CliError> {
    match found.as_slice() {
        [one] => Ok((*one).to_string()),
        [] => Err(CliError::Input(format!("no {what} named `{name}` that you can see"))),
        many => {
            let hint = if what == "workspace" { "an id or ORG/WORKSPACE" } else { "an id" };
            Err(CliError::Input(format!("several of your {what}s are named `{name}`; use {hint}: {}", many.join(", "))))
        }
    }
}

/// `s` percent-encoded for use as one path segment or query value.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A query string (`?a=1&b=2`) of the pairs that have a value; "" when none has.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", seg(v)))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_segments_and_queries() {
        assert_eq!(seg("org_01jd"), "org_01jd");
        assert_eq!(seg("a b/../c?"), "a%20b%2F..%2Fc%3F");
        assert_eq!(
            query(&[("a", None), ("action", Some("key.created".into())), ("limit", Some("5".into()))]),
            "?action=key.created&limit=5"
        );
        assert_eq!(query(&[("a", None)]), "");
    }

    #[test]
    fn servers_are_urls_without_trailing_slash() {
        assert_eq!(normalize("http://h:1/").ok().as_deref(), Some("http://h:1"));
        assert!(normalize("h:1").is_err());
    }
}
