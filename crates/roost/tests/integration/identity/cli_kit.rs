//! The `roost` binary as one person runs it (their own `ROOST_CONFIG_DIR`), for the identity
//! commands: plain runs, runs with stdin, and an interactive run that answers a question whose
//! answer depends on what the command printed first (`2fa enable`).

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use roost_test_kit::TestServer;

pub(crate) const PASSWORD: &str = "correct horse battery";

/// One person's CLI.
pub(crate) struct Cli {
    pub dir: PathBuf,
    pub base: String,
}

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        &self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the failure shape (exit 1, nothing on stdout, one `error: …` line); returns it.
    #[track_caller]
    pub fn failed(&self) -> &str {
        assert_eq!(self.code, 1, "expected exit 1: {self:?}");
        assert_eq!(self.stdout, "", "a failing command printed to stdout: {self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "expected one stderr line: {self:?}");
        assert!(self.stderr.starts_with("error: "), "{self:?}");
        self.stderr.trim_end()
    }
}

impl Cli {
    pub fn new(s: &TestServer) -> Self {
        let dir = std::env::temp_dir().join("roost-cli-tests").join(roost_domain::IdKind::User.generate());
        std::fs::create_dir_all(&dir).expect("config dir");
        Self { dir, base: s.base.clone() }
    }

    /// The saved config (server and token).
    pub fn config(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("config.json")).expect("read config"))
            .expect("config is JSON")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_roost"));
        cmd.args(args)
            .args(["--server", &self.base])
            .env("ROOST_CONFIG_DIR", &self.dir)
            .env_remove("ROOST_SERVER")
            .env_remove("ROOST_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `roost ARGS --server <base>` with stdin closed.
    pub async fn run(&self, args: &[&str]) -> Out {
        self.input(args, None).await
    }

    /// Runs `roost ARGS --server <base>` with `stdin` (or none).
    pub async fn input(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().expect("spawn roost");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).await.expect("write stdin");
        }
        finish(child).await
    }

    /// Runs `roost ARGS`, reads stdout until a line satisfies `until`, then writes
    /// `answer(everything printed so far)` and a newline to stdin, and waits for the end.
    pub async fn interact(&self, args: &[&str], until: impl Fn(&str) -> bool, answer: impl Fn(&str) -> String) -> Out {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn roost");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = lines.read_line(&mut line).await.expect("read stdout");
            assert!(n > 0, "the command ended before asking: {seen}");
            seen.push_str(&line);
            if until(&line) {
                break;
            }
        }
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(format!("{}\n", answer(&seen)).as_bytes()).await.expect("answer");
        drop(stdin);
        let mut rest = String::new();
        lines.read_to_string(&mut rest).await.expect("read the rest");
        let mut stderr = String::new();
        child.stderr.take().expect("stderr").read_to_string(&mut stderr).await.expect("stderr");
        let status = child.wait().await.expect("wait for roost");
        Out { code: status.code().unwrap_or(-1), stdout: seen + &rest, stderr }
    }

    /// Signs up through the CLI; returns the email.
    pub async fn signup(&self, name: &str) -> String {
        let email = format!("{}-{}@example.com", name.to_lowercase(), roost_domain::IdKind::User.generate());
        let out = self.run(&["signup", "--email", &email, "--name", name, "--password", PASSWORD]).await;
        assert!(out.ok().contains(&email), "{out:?}");
        email
    }
}

async fn finish(child: tokio::process::Child) -> Out {
    let out = child.wait_with_output().await.expect("wait for roost");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value of the `key:` line of `key: value` output.
pub(crate) fn value_of<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(&format!("{key}:"))).map(str::trim)
}
