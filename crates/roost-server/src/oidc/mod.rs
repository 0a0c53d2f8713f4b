//! Single sign-on through OpenID Connect providers listed in `roost.toml` (`[[oidc]]`): their
//! settings, and the client side of the authorization code flow — the discovery document and the
//! JWKS (fetched with connect and total timeouts, cached), the code exchange at the token endpoint,
//! and the ID token's verification (`jwt`). The HTTP routes are in `api::oidc`.

pub mod jwt;
pub mod redirect;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use jwt::{Expected, Identity, JwkSet, JwtError};

/// The scopes asked for when a provider names none.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// How long a fetched discovery document and JWKS are used before they are fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// The soonest a JWKS is fetched again for a key it did not have (a rotation at the provider).
const REFETCH_KEYS_AFTER: Duration = Duration::from_secs(30);
/// Connecting to a provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole request to a provider.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest discovery document, JWKS or token answer read.
const MAX_BODY: usize = 256 * 1024;

/// One `[[oidc]]` entry of `roost.toml`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// The name in URLs (`/v1/oidc/{id}/start`) and in `roost login --sso ID`: 1–32 of a-z, 0-9, `-`, `_`.
    pub id: String,
    /// What the sign-in button says ("Sign in with NAME"); the id when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The issuer URL; its discovery document is at `ISSUER/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The scopes asked for (`openid` is always added); [`DEFAULT_SCOPES`] when absent.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl ProviderSettings {
    /// The name people see.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// The `scope` parameter of the authorization request.
    pub fn scope(&self) -> String {
        let mut scopes: Vec<&str> = match &self.scopes {
            Some(s) => s.iter().map(String::as_str).collect(),
            None => DEFAULT_SCOPES.to_vec(),
        };
        if !scopes.contains(&"openid") {
            scopes.insert(0, "openid");
        }
        scopes.join(" ")
    }
}

/// Checks the `[[oidc]]` entries: ids, URLs, non-empty client credentials.
pub fn validate(providers: &[ProviderSettings]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for p in providers {
        let id_ok = !p.id.is_empty()
            && p.id.len() <= 32
            && p.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(format!("oidc id `{}` must be 1–32 of a-z, 0-9, -, _", p.id));
        }
        if !seen.insert(p.id.as_str()) {
            return Err(format!("oidc id `{}` is listed twice", p.id));
        }
        if !issuer_ok(&p.issuer) {
            return Err(format!(
                "oidc `{}`: issuer `{}` must be an https:// URL (http:// only on a loopback address, for development)",
                p.id, p.issuer
            ));
        }
        if p.client_id.trim().is_empty() || p.client_secret.is_empty() {
            return Err(format!("oidc `{}`: client_id and client_secret must be set", p.id));
        }
        if p.name.as_deref().is_some_and(|n| n.trim().is_empty() || n.chars().count() > 60) {
            return Err(format!("oidc `{}`: name must be 1–60 characters", p.id));
        }
        let scope_ok = |s: &String| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if p.scopes.as_ref().is_some_and(|s| !s.iter().all(scope_ok)) {
            return Err(format!("oidc `{}`: scopes must be words without spaces", p.id));
        }
    }
    Ok(())
}

fn issuer_ok(issuer: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(issuer) else { return false };
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    (u.scheme() == "https" || (u.scheme() == "http" && loopback))
        && u.query().is_none()
        && u.fragment().is_none()
        && u.username().is_empty()
}

/// Why talking to a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense: nothing was decided (503).
    #[error("the identity provider `{0}` is unavailable: {1}")]
    Unavailable(String, String),
    /// The provider refused the code, or its answer does not prove the sign-in (401).
    #[error("{0}")]
    Refused(String),
    /// The provider does not vouch for the email address (403).
    #[error("the identity provider has not verified this email address")]
    EmailUnverified,
}

impl From<JwtError> for OidcError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::EmailUnverified => Self::EmailUnverified,
            e => Self::Refused(e.to_string()),
        }
    }
}

/// The parts of a provider's discovery document roost uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

struct Cached<T> {
    value: T,
    at: Instant,
}

/// One configured provider and what was fetched from it.
struct Provider {
    settings: ProviderSettings,
    discovery: Mutex<Option<Cached<Discovery>>>,
    keys: Mutex<Option<Cached<JwkSet>>>,
}

/// The configured providers, the HTTP client that reaches them, and their cached documents.
pub struct Oidc {
    http: reqwest::Client,
    providers: HashMap<String, Arc<Provider>>,
    /// In configuration order, for sign-in pages.
    order: Vec<String>,
}

/// A random value of 64 characters from `[0-9a-z]` (320 bits): state, nonce, PKCE verifier.
pub fn random_secret() -> String {
    let a = roost_domain::tokens::generate("");
    let b = roost_domain::tokens::generate("");
    format!("{a}{b}")
}

/// The PKCE `code_challenge` (S256) of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    /// The providers of `settings`, nothing fetched yet.
    pub fn new(providers: &[ProviderSettings]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            // The token endpoint is POSTed to with the client's secret: never follow it elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("roost/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let map = providers
            .iter()
            .map(|p| {
                let prov = Provider { settings: p.clone(), discovery: Mutex::new(None), keys: Mutex::new(None) };
                (p.id.clone(), Arc::new(prov))
            })
            .collect();
        Self { http, providers: map, order: providers.iter().map(|p| p.id.clone()).collect() }
    }

    /// The settings of provider `id`, if configured.
    pub fn settings(&self, id: &str) -> Option<&ProviderSettings> {
        self.providers.get(id).map(|p| &p.settings)
    }

    /// Every configured provider, in configuration order.
    pub fn all(&self) -> Vec<&ProviderSettings> {
        self.order.iter().filter_map(|id| self.settings(id)).collect()
    }

    fn provider(&self, id: &str) -> Result<&Arc<Provider>, OidcError> {
        self.providers.get(id).ok_or_else(|| OidcError::Refused(format!("no identity provider `{id}`")))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, id: &str, url: &str) -> Result<T, OidcError> {
        let down = |why: String| OidcError::Unavailable(id.to_string(), why);
        let res =
            self.http.get(url).header("accept", "application/json").send().await.map_err(|e| down(describe(&e)))?;
        if !res.status().is_success() {
            return Err(down(format!("{url} answered {}", res.status())));
        }
        let body = read_body(res).await.map_err(down)?;
        serde_json::from_slice(&body).map_err(|e| down(format!("{url} is not the expected JSON: {e}")))
    }

    /// The provider's discovery document (cached for an hour).
    pub async fn discovery(&self, id: &str) -> Result<Discovery, OidcError> {
        let p = self.provider(id)?;
        let mut slot = p.discovery.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.at.elapsed() < CACHE_FOR) {
            return Ok(c.value.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", p.settings.issuer.trim_end_matches('/'));
        let d: Discovery = self.get_json(id, &url).await?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
        if d.issuer.trim_end_matches('/') != p.settings.issuer.trim_end_matches('/') {
            return Err(OidcError::Unavailable(
                id.to_string(),
                format!("its discovery document names the issuer `{}`, not `{}`", d.issuer, p.settings.issuer),
            ));
        }
        *slot = Some(Cached { value: d.clone(), at: Instant::now() });
        Ok(d)
    }

    /// The provider's keys: cached for an hour, fetched again sooner when `stale` (a token named a
    /// key the cached set does not have), but at most every 30 seconds.
    async fn keys(&self, id: &str, d: &Discovery, stale: bool) -> Result<JwkSet, OidcError> {
        let p = self.provider(id)?;
        let mut slot = p.keys.lock().await;
        if let Some(c) = slot.as_ref() {
            let age = c.at.elapsed();
            if age < CACHE_FOR && !(stale && age >= REFETCH_KEYS_AFTER) {
                return Ok(c.value.clone());
            }
        }
        let keys: JwkSet = self.get_json(id, &d.jwks_uri).await?;
        *slot = Some(Cached { value: keys.clone(), at: Instant::now() });
        Ok(keys)
    }

    /// Exchanges an authorization `code` (with its PKCE verifier) at the token endpoint and
    /// verifies the ID token it answers with: signature, issuer, audience, expiry and `nonce`; then
    /// that the provider vouches for the email address.
    pub async fn finish(
        &self,
        id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
        now_ms: i64,
    ) -> Result<Identity, OidcError> {
        let p = self.provider(id)?;
        let d = self.discovery(id).await?;
        let s = &p.settings;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        // client_secret_basic unless the provider says it only takes client_secret_post.
        let methods = d.token_endpoint_auth_methods_supported.as_deref().unwrap_or_default();
        let post = !methods.is_empty() && !methods.iter().any(|m| m == "client_secret_basic");
        if post {
            form.extend([("client_id", s.client_id.as_str()), ("client_secret", s.client_secret.as_str())]);
        }
        let body = serde_urlencoded::to_string(&form).map_err(|e| OidcError::Refused(e.to_string()))?;
        let mut req = self
            .http
            .post(&d.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        if !post {
            // RFC 6749 §2.3.1: each part form-encoded, then Basic.
            let enc = |v: &str| serde_urlencoded::to_string([("", v)]).unwrap_or_default().split_off(1);
            let basic = STANDARD.encode(format!("{}:{}", enc(&s.client_id), enc(&s.client_secret)));
            req = req.header("authorization", format!("Basic {basic}"));
        }
        let res = req.send().await.map_err(|e| OidcError::Unavailable(id.to_string(), describe(&e)))?;
        let status = res.status();
        let raw = read_body(res).await.map_err(|e| OidcError::Unavailable(id.to_string(), e))?;
        let answer: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        if status.is_server_error() {
            return Err(OidcError::Unavailable(id.to_string(), format!("the token endpoint answered {status}")));
        }
        if !status.is_success() {
            let err = answer["error"].as_str().unwrap_or("an error");
            return Err(OidcError::Refused(format!("the identity provider refused the sign-in code: {err}")));
        }
        let token = answer["id_token"]
            .as_str()
            .ok_or_else(|| OidcError::Refused("the identity provider answered without an ID token".into()))?;
        let keys = self.keys(id, &d, false).await?;
        let claims = match jwt::verify_signature(token, &keys.keys) {
            Err(JwtError::UnknownKey(_)) => jwt::verify_signature(token, &self.keys(id, &d, true).await?.keys)?,
            other => other?,
        };
        let want = Expected { issuer: &d.issuer, client_id: &s.client_id, nonce, now_s: now_ms.div_euclid(1000) };
        Ok(jwt::check_claims(&claims, &want)?)
    }
}

async fn read_body(mut res: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("an answer larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "it did not answer in time".into()
    } else if e.is_connect() {
        "cannot connect to it".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, issuer: &str) -> ProviderSettings {
        ProviderSettings {
            id: id.into(),
            name: None,
            issuer: issuer.into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            scopes: None,
        }
    }

    #[test]
    fn provider_settings_are_checked() {
        assert!(validate(&[p("google", "https://accounts.google.com"), p("dev", "http://127.0.0.1:9000")]).is_ok());
        for bad in [
            vec![p("Google", "https://accounts.google.com")],
            vec![p("a", "https://x.test"), p("a", "https://y.test")],
            vec![p("a", "http://idp.example.com")],
            vec![p("a", "ftp://x.test")],
            vec![p("a", "https://x.test?q=1")],
            vec![ProviderSettings { client_secret: String::new(), ..p("a", "https://x.test") }],
        ] {
            assert!(validate(&bad).is_err(), "{bad:?} accepted");
        }
        assert!(!format!("{:?}", p("a", "https://x.test")).contains("\"s\""));
    }

    #[test]
    fn scope_always_has_openid_and_pkce_is_s256() {
        assert_eq!(p("a", "https://x").scope(), "openid email profile");
        let custom = ProviderSettings { scopes: Some(vec!["email".into()]), ..p("a", "https://x") };
        assert_eq!(custom.scope(), "openid email");
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(random_secret().len(), 64);
    }
}

#[cfg(test)]
mod settings_tests {
    use crate::settings::{FileConfig, Settings};

    #[test]
    fn oidc_tables_are_read_from_roost_toml() {
        let f: FileConfig = toml::from_str(
            "[[oidc]]\nid = \"okta\"\nname = \"Okta\"\nissuer = \"https://acme.okta.com\"\nclient_id = \"c\"\nclient_secret = \"s3cret\"\nscopes = [\"openid\", \"email\"]\n",
        )
        .expect("parses");
        let mut s = Settings::default();
        s.apply(f).expect("valid");
        assert_eq!(s.oidc.len(), 1);
        assert_eq!(s.oidc[0].display_name(), "Okta");
        assert!(!format!("{s:?}").contains("s3cret"));
        let bad: FileConfig = toml::from_str(
            "[[oidc]]\nid = \"x\"\nissuer = \"http://idp.example.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
        )
        .expect("parses");
        assert!(Settings::default().apply(bad).is_err());
        assert!(
            toml::from_str::<FileConfig>(
                "[[oidc]]\nid = \"x\"\nissuer = \"https://x\"\nclient_id = \"c\"\nclient_secret = \"s\"\ncolour = 1\n"
            )
            .is_err()
        );
    }
}
