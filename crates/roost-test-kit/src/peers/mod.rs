//! Real peers the server talks to, started by tests on loopback ports: an SMTP server (PyPI
//! `aiosmtpd`, installed on demand into a cache under the target dir), a DNS server (Debian's
//! `dnsmasq`, which `.ci/run` installs; without it the DNS tests say SKIPPED), an OpenID
//! provider (npm `oidc-provider` on the machine's Node, installed on demand like aiosmtpd), and
//! PostgreSQL clusters of a test's own (`initdb`, `pg_basebackup`) for TLS and failover.

mod dns;
mod oidc;
mod pg;
mod smtp;

pub use dns::DnsServer;
pub use oidc::{Account, Browser, OidcClient, OidcProvider, Page, node_major};
pub use pg::{PgCluster, chown, pg_bin_dir};
pub use smtp::{SmtpServer, first_link, query_param};

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Says why a peer cannot run here, and how to install it; tests print it and return.
pub fn skipped(why: &str) -> String {
    format!("SKIPPED: {why}")
}

/// A `PYTHONPATH` under which `import MODULE` works: none needed when the machine's python3 has
/// it already, else `cache/pydeps-PACKAGE`, filled by `pip install --target` on first use (into a
/// scratch folder renamed into place, so parallel test processes never see half an install).
pub(crate) fn python_with(cache: &Path, module: &str, package: &str) -> Result<Option<PathBuf>, String> {
    let has = |path: Option<&Path>| {
        let mut c = std::process::Command::new("python3");
        c.args(["-c", &format!("import {module}")]).stdout(Stdio::null()).stderr(Stdio::null());
        if let Some(p) = path {
            c.env("PYTHONPATH", p);
        }
        c.status().is_ok_and(|s| s.success())
    };
    if has(None) {
        return Ok(None);
    }
    let dir = cache.join(format!("pydeps-{package}"));
    if dir.exists() && has(Some(&dir)) {
        return Ok(Some(dir));
    }
    let scratch = cache.join(format!("pydeps-{package}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let ok = std::process::Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
        .arg(&scratch)
        .arg(package)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = std::fs::remove_dir_all(&scratch);
        return Err(skipped(&format!(
            "python3 cannot import {module} and `pip install {package}` failed; install it with `python3 -m pip install {package}`"
        )));
    }
    // Another process may have won the race: then its copy is used and ours dropped.
    if std::fs::rename(&scratch, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    if has(Some(&dir)) { Ok(Some(dir)) } else { Err(skipped(&format!("{package} installed but not importable"))) }
}

// The Python tools that check the served OpenAPI (`openapi-spec-validator`, `schemathesis`),
// installed on demand like aiosmtpd.
mod python;
pub use python::PythonTool;
