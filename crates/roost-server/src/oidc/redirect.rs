//! Where a finished sign-in may send its one-time code: the server's own dashboard (`/app/…`), or
//! a loopback address with an explicit port, where the CLI listens (RFC 8252 §7.3). Anything else
//! could hand a sign-in to someone else's site.

use reqwest::Url;

/// The longest `redirect_uri` accepted.
pub const MAX_LEN: usize = 2000;

/// Checks `uri`; `Err` says why it is refused.
pub fn check(uri: &str, public_url: &str) -> Result<(), &'static str> {
    if uri.is_empty() || uri.len() > MAX_LEN || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a URL of at most 2000 characters");
    }
    if uri.contains('#') || uri.contains('\\') {
        return Err("must not carry a fragment or a backslash");
    }
    if uri.starts_with('/') {
        return if dashboard_path(uri) { Ok(()) } else { Err("a path must be on the dashboard (/app/…)") };
    }
    let u = Url::parse(uri).map_err(|_| "is not a URL")?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials");
    }
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "[::1]"));
    if u.scheme() == "http" && loopback && u.port().is_some() {
        return Ok(());
    }
    let ours = Url::parse(public_url).ok().is_some_and(|p| p.origin() == u.origin());
    if ours && dashboard_path(u.path()) {
        return Ok(());
    }
    Err("must be this server's dashboard (/app/…) or http://127.0.0.1:PORT/… (a local client)")
}

fn dashboard_path(p: &str) -> bool {
    (p == "/app" || p.starts_with("/app/") || p.starts_with("/app?")) && !p.starts_with("//")
}

/// `uri` with `params` added to its query.
pub fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", serde_urlencoded::to_string(params).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "https://roost.example.com";

    #[test]
    fn the_dashboard_and_loopback_ports_are_allowed() {
        for ok in [
            "/app/oidc/done",
            "/app/oidc/done?next=%2Fapp",
            "https://roost.example.com/app/oidc/done",
            "http://127.0.0.1:53111/callback",
            "http://[::1]:8000/cb?x=1",
        ] {
            assert_eq!(check(ok, PUBLIC), Ok(()), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "",
            "https://evil.example.com/app/oidc/done",
            "https://roost.example.com/v1/me",
            "https://roost.example.com.evil.test/app/",
            "http://roost.example.com/app/oidc/done",
            "//evil.example.com/app/",
            "/v1/oidc/exchange",
            "/apps",
            "http://127.0.0.1/callback",
            "https://127.0.0.1:80/callback",
            "http://localhost:8000/callback",
            "http://user:pw@127.0.0.1:8000/cb",
            "http://127.0.0.1:8000/cb#frag",
            "/app\\@evil.test",
            "javascript:alert(1)",
        ] {
            assert!(check(bad, PUBLIC).is_err(), "{bad} accepted");
        }
        assert!(check(&format!("/app/{}", "x".repeat(MAX_LEN)), PUBLIC).is_err());
    }

    #[test]
    fn params_are_appended() {
        assert_eq!(with_params("/app/oidc/done", &[("code", "a b")]), "/app/oidc/done?code=a+b");
        assert_eq!(with_params("http://127.0.0.1:1/cb?x=1", &[("code", "c")]), "http://127.0.0.1:1/cb?x=1&code=c");
    }
}
