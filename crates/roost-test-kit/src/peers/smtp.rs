//! A real SMTP server (aiosmtpd) on 127.0.0.1: tests point `smtp_url` at it and read what it got.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SCRIPT: &str = include_str!("smtp_server.py");

/// A running SMTP server; stopped and its mail folder removed when dropped.
pub struct SmtpServer {
    pub port: u16,
    dir: PathBuf,
    _child: Child,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl SmtpServer {
    /// Starts one; `cache` is where aiosmtpd is installed if the machine lacks it (integration
    /// tests pass `env!("CARGO_TARGET_TMPDIR")`). `Err` is a `SKIPPED: …` line to print.
    pub async fn start(cache: impl AsRef<Path>) -> Result<Self, String> {
        let cache = cache.as_ref();
        std::fs::create_dir_all(cache).map_err(|e| format!("cache dir: {e}"))?;
        let pythonpath = super::python_with(cache, "aiosmtpd", "aiosmtpd")?;
        let dir = cache.join(format!("smtp-{}", roost_domain::IdKind::Event.generate()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mail dir: {e}"))?;
        let script = dir.join("smtp_server.py");
        std::fs::write(&script, SCRIPT).map_err(|e| format!("script: {e}"))?;
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(&dir).stdin(Stdio::null()).stdout(Stdio::piped()).kill_on_drop(true);
        if let Some(p) = pythonpath {
            cmd.env("PYTHONPATH", p);
        }
        let mut child = cmd.spawn().map_err(|e| super::skipped(&format!("cannot run python3: {e}")))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        tokio::time::timeout(Duration::from_secs(20), reader.read_line(&mut line))
            .await
            .map_err(|_| "the SMTP server did not start in 20 s".to_string())?
            .map_err(|e| format!("reading the SMTP server's port: {e}"))?;
        let port = line.trim().parse().map_err(|_| format!("the SMTP server said {line:?}, not its port"))?;
        Ok(Self { port, dir, _child: child })
    }

    /// The `smtp_url` that reaches it (plain SMTP on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// While on, every message is refused with a transient `451`.
    pub fn fail(&self, on: bool) {
        let flag = self.dir.join("FAIL");
        if on {
            std::fs::write(flag, "").expect("fail flag");
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    /// Every message received so far, oldest first: `{mail_from, rcpt_tos, from, to, subject,
    /// content_type, text, html}`.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|x| x == "json"));
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    }

    /// The messages whose envelope recipients include `to`.
    pub fn messages_to(&self, to: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["rcpt_tos"].as_array().is_some_and(|r| r.iter().any(|x| x.as_str() == Some(to))))
            .collect()
    }

    /// Waits (up to 10 s) until `n` messages to `to` arrived; returns them all.
    ///
    /// # Panics
    /// When they do not arrive in time.
    pub async fn wait_for(&self, to: &str, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let got = self.messages_to(to);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} mail(s) to {to}; the SMTP server got {:?}", self.messages());
    }
}

/// The first `http(s)://…` link in `text`.
pub fn first_link(text: &str) -> Option<String> {
    let start = text.find("http://").or_else(|| text.find("https://"))?;
    Some(text[start..].split(|c: char| c.is_whitespace() || c == '"' || c == '<').next()?.to_string())
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
}
