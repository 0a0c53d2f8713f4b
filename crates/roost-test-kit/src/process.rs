//! Real `roost serve` processes: started on a database, read for their address, killed with SIGKILL.
//!
//! Only integration tests of the `roost` package know where Cargo put the binary
//! (`env!("CARGO_BIN_EXE_roost")`), so they pass its path in.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use roost::Client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// A running `roost serve`; killed (SIGKILL) when dropped.
pub struct Roost {
    child: Child,
    pub base: String,
    /// An unauthenticated client of it.
    pub client: Client,
    /// Kept open: the server may still write to stdout.
    _stdout: BufReader<ChildStdout>,
    /// Where its stderr (the log) goes.
    pub log: PathBuf,
    config: PathBuf,
}

impl Drop for Roost {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Roost {
    /// Starts `BIN serve --listen 127.0.0.1:0 --database-url URL` (with cheap password hashing
    /// from a config file) and waits until `/healthz` answers.
    pub async fn start(bin: impl AsRef<Path>, database_url: &str) -> Self {
        Self::start_logging(bin, database_url, "warn").await
    }

    /// [`Roost::start`] with `ROOST_LOG` set to `level` (the log goes to [`Roost::log`]).
    pub async fn start_logging(bin: impl AsRef<Path>, database_url: &str, level: &str) -> Self {
        Self::start_configured(bin, database_url, level, "").await
    }

    /// [`Roost::start_logging`] with more `roost.toml` lines (e.g. `redis_url = "…"`).
    pub async fn start_configured(bin: impl AsRef<Path>, database_url: &str, level: &str, extra: &str) -> Self {
        let dir = std::env::temp_dir().join("roost-ledger-load");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let id = roost_domain::IdKind::Event.generate();
        let config = dir.join(format!("{id}.toml"));
        std::fs::write(&config, format!("password_hash_memory_kib = 64\npassword_hash_iterations = 1\ndb_max_connections = 5\ndb_acquire_timeout_ms = 10000\n{extra}\n")).expect("config");
        let log = dir.join(format!("{id}.log"));
        let mut child = Command::new(bin.as_ref())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--database-url", database_url, "--config"])
            .arg(&config)
            .env_remove("ROOST_DATABASE_URL")
            .env_remove("ROOST_LISTEN")
            .env_remove("ROOST_CONFIG")
            .env("ROOST_LOG", level)
            .env_remove("ROOST_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn roost serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(20), stdout.read_line(&mut line)).await;
        let base = line.trim().strip_prefix("roost listening on ").map(str::to_string);
        let Some(base) = base.filter(|_| matches!(read, Ok(Ok(n)) if n > 0)) else {
            let _ = child.start_kill();
            panic!("roost serve did not announce its address (got {line:?}); log: {}", read_log(&log));
        };
        assert!(base.starts_with("http://127.0.0.1:"), "unexpected address line {line:?}");
        let client = Client::new(&base);
        let mut up = false;
        for _ in 0..400 {
            if client.get("/healthz").await.is_ok_and(|r| r.status == 200) {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(up, "roost serve at {base} never became healthy; log: {}", read_log(&log));
        Self { child, base, client, _stdout: stdout, log, config }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL roost serve");
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
