//! The CLI's config file: the server and the user token saved by `signup`/`login`.
//!
//! It holds a bearer token, so it is written with mode 0600 (and tightened again on every write,
//! in case it was created more openly), in a directory created with mode 0700.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::CliError;

/// What `config.json` holds. Unknown members are kept as they are.
#[derive(Default, Serialize, Deserialize)]
pub struct Config {
    /// The server the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// A user token (`rsu_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("other", &self.other)
            .finish()
    }
}

/// Where the config file lives: `$ROOST_CONFIG_DIR/config.json`, else
/// `$XDG_CONFIG_HOME/roost/config.json`, else `$HOME/.config/roost/config.json`.
pub fn path() -> Result<PathBuf, CliError> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("ROOST_CONFIG_DIR") {
        return Ok(dir.join("config.json"));
    }
    // The XDG spec says relative values are to be ignored.
    if let Some(dir) = var("XDG_CONFIG_HOME").filter(|d| d.is_absolute()) {
        return Ok(dir.join("roost").join("config.json"));
    }
    if let Some(home) = var("HOME") {
        return Ok(home.join(".config").join("roost").join("config.json"));
    }
    Err(CliError::Config("cannot find a place for the config file; set ROOST_CONFIG_DIR or HOME".into()))
}

/// Reads the config file; a missing file is an empty config.
pub fn load(path: &Path) -> Result<Config, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => return Err(CliError::Config(format!("cannot read {}: {e}", path.display()))),
    };
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    serde_json::from_str(&text).map_err(|e| {
        CliError::Config(format!("{} is not a valid roost config ({e}); fix or delete it", path.display()))
    })
}

/// Writes the config file atomically (a temporary file renamed over it), readable by its owner only.
pub fn save(path: &Path, config: &Config) -> Result<(), CliError> {
    let fail =
        |what: &str, p: &Path, e: std::io::Error| CliError::Config(format!("cannot {what} {}: {e}", p.display()));
    let text =
        serde_json::to_string_pretty(config).map_err(|e| CliError::Config(format!("cannot encode the config: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|e| fail("create", dir, e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut file = open_private(&tmp).map_err(|e| fail("write", &tmp, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("write", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| fail("write", path, e))?;
    restrict(path).map_err(|e| fail("set permissions on", path, e))
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // `mode` applies only when the file is created; a leftover file keeps its own, so set it again.
    restrict(path)?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_members_and_omits_missing_ones() {
        let c: Config = serde_json::from_str(r#"{"server":"http://x","theme":"dark"}"#).expect("parse");
        assert_eq!(c.server.as_deref(), Some("http://x"));
        assert!(c.token.is_none());
        let out = serde_json::to_value(&c).expect("encode");
        assert_eq!(out, serde_json::json!({"server": "http://x", "theme": "dark"}));
        let secret = Config { token: Some("rsu_secret".into()), ..Config::default() };
        assert!(!format!("{secret:?}").contains("rsu_secret"));
    }
}
