//! The `roost` binary itself: the server on its defaults, migrations, configuration, shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use roost::Client;

use crate::ROOST;

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("roost-bin-{}", roost_domain::IdKind::Org.generate()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts `roost serve` in `dir` and returns the child and its base URL (read from stdout).
fn serve(dir: &std::path::Path, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(ROOST)
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .env_remove("ROOST_DATABASE_URL")
        .env_remove("ROOST_LISTEN")
        .env_remove("ROOST_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "unexpected first line: {line:?}");
    (child, base)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test]
async fn serve_on_defaults_creates_sqlite_and_stops_on_sigterm() {
    let dir = temp_dir();
    let (mut child, base) = serve(&dir, &["--listen", "127.0.0.1:0"]);
    let client = Client::new(&base);
    let health = client.get("/healthz").await.unwrap();
    assert_eq!((health.status, health.body["database"].as_str()), (200, Some("sqlite")));
    assert!(dir.join("roost.db").exists(), "the default database is ./roost.db");
    let signup = client
        .post("/v1/signup", &serde_json::json!({"email": "a@example.com", "password": "long enough pw", "name": "A"}))
        .await
        .unwrap();
    assert_eq!(signup.status, 201);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("roost did not stop on SIGTERM");
    assert!(status.success(), "graceful shutdown exits 0, got {status:?}");

    // The data survived the restart.
    let (mut child, base) = serve(&dir, &["--listen", "127.0.0.1:0"]);
    let login = Client::new(&base)
        .post("/v1/sessions", &serde_json::json!({"email": "a@example.com", "password": "long enough pw"}))
        .await
        .unwrap();
    assert_eq!(login.status, 201, "{:?}", login.body);
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn migrate_applies_once() {
    let dir = temp_dir();
    let url = format!("sqlite://{}", dir.join("m.db").display());
    let run = || Command::new(ROOST).args(["migrate", "--database-url", &url]).output().unwrap();
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(String::from_utf8_lossy(&first.stdout).trim(), "migrations applied: [1, 2, 3, 4]");
    let second = run();
    assert!(second.status.success());
    assert_eq!(String::from_utf8_lossy(&second.stdout).trim(), "migrations applied: none (up to date)");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_configuration_is_refused_with_a_clear_error() {
    let dir = temp_dir();
    std::fs::write(dir.join("roost.toml"), "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(ROOST).arg("serve").current_dir(&dir).env_remove("ROOST_CONFIG").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("roost.toml") && err.contains("lisen"), "{err}");

    std::fs::remove_file(dir.join("roost.toml")).unwrap();
    let out = Command::new(ROOST)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", "mysql://x"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));

    let out = Command::new(ROOST).args(["config", "default"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("database_url = \"sqlite://roost.db\""));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_config_file_is_read_and_flags_override_it() {
    let dir = temp_dir();
    std::fs::write(dir.join("roost.toml"), "database_url = \"sqlite://from-file.db\"\nlisten = \"127.0.0.1:1\"\n")
        .unwrap();
    // The file's listen address (port 1) is overridden by the flag; its database is used.
    let (mut child, base) = serve(&dir, &["--listen", "127.0.0.1:0"]);
    assert_eq!(Client::new(&base).get("/healthz").await.unwrap().status, 200);
    assert!(dir.join("from-file.db").exists());
    assert!(!dir.join("roost.db").exists());
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}
