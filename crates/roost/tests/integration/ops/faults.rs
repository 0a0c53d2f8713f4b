//! Faults the server survives by itself: a full disk under SQLite (a small tmpfs the test mounts
//! and removes) and a PostgreSQL that goes away and comes back (a TCP relay of the test's own in
//! front of the real server, closed and reopened).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roost_test_kit::{Backend, TestServer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

/// A tmpfs of `size` mounted for one test, unmounted and removed when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("roost-tmpfs-{}", roost_domain::IdKind::Event.generate()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fills the filesystem of `dir` with one file until the write fails.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let f = dir.join("filler");
    let mut file = std::fs::File::create(&f).unwrap();
    let block = vec![7u8; 16 * 1024];
    while file.write_all(&block).is_ok() {}
    let small = [7u8; 512];
    while file.write_all(&small).is_ok() {}
    let _ = file.flush();
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_the_server_recovers_when_space_returns() {
    let Some(fs) = Tmpfs::mount("4m") else {
        println!(
            "SKIPPED: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); the full-disk fault was not tested"
        );
        return;
    };
    let url = format!("sqlite://{}", fs.0.join("roost.db").display());
    let s = TestServer::start_with(Backend::Sqlite, |s| s.database_url = url.clone()).await.unwrap();
    let (owner, _) = s.signup("disk").await;
    let filler = fill(&fs.0);
    let mut unavailable = 0;
    let mut last = None;
    for i in 0..2000 {
        let email = format!("u{i}-{}@example.com", "x".repeat(150));
        let body = json!({"email": email, "password": "correct horse battery", "name": "y".repeat(100)});
        let r = s.client.post("/v1/signup", &body).await.unwrap();
        assert_ne!(r.status, 500, "a full disk must not answer 500: {:?}", r.body);
        assert!([201, 503].contains(&r.status), "{:?}", r.body);
        if r.status == 503 {
            assert!(["database_unavailable", "ledger_unavailable"].contains(&r.code().unwrap()), "{:?}", r.body);
            unavailable += 1;
            if unavailable >= 3 {
                break;
            }
        }
        last = Some(r);
    }
    assert!(unavailable >= 3, "the disk never filled up: {last:?}");
    let raw = reqwest::Client::new()
        .post(format!("{}/v1/orgs", s.base))
        .bearer_auth(owner.token().unwrap())
        .json(&json!({"name": "Still full", "plan": "team"}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 503);
    assert_eq!(raw.headers()["retry-after"], "1");
    let r = owner.post_idem("/v1/charges", "full-1", &json!({"amount": 1, "action": "a"})).await.unwrap();
    assert_ne!(r.status, 500, "{:?}", r.body);

    std::fs::remove_file(&filler).unwrap();
    // Recovers by itself: no restart, the same process and pool.
    let started = Instant::now();
    let org = loop {
        let r = owner.post("/v1/orgs", &json!({"name": "After the disk", "plan": "team"})).await.unwrap();
        if r.status == 201 {
            break r.body["org"]["id"].as_str().unwrap().to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no recovery: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for i in 0..10 {
        let r = owner.get(&format!("/v1/orgs/{org}")).await.unwrap();
        assert_eq!(r.status, 200, "read {i}: {:?}", r.body);
        let r = owner.post("/v1/orgs", &json!({"name": format!("Again {i}"), "plan": "team"})).await.unwrap();
        assert_eq!(r.status, 201, "write {i}: {:?}", r.body);
    }
    let r = owner.post_idem("/v1/charges", "full-2", &json!({"amount": 1, "action": "a"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(s.client.get("/readyz").await.unwrap().status, 200);
    s.assert_ledger().await;
    drop(s);
}

/// A TCP relay to `target` that can be cut (every open link closed, new ones refused) and restored.
struct Relay {
    port: u16,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let mut r = Self { port, target, task: None };
        r.task = Some(tokio::spawn(relay(l, r.target.clone())));
        r
    }

    fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    async fn restore(&mut self) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.task = Some(tokio::spawn(relay(l, self.target.clone())));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Accepts and pipes; aborting it drops the listener and every link (the links are its children).
async fn relay(l: TcpListener, target: String) {
    let mut links = tokio::task::JoinSet::new();
    loop {
        let Ok((mut a, _)) = l.accept().await else { continue };
        let target = target.clone();
        links.spawn(async move {
            if let Ok(mut b) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
            }
        });
    }
}

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_answers_503_fast_and_recovers() {
    let Some(admin) = roost_test_kit::pg_url() else {
        println!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let (_, target) = host_port(&admin);
    let mut relay = Relay::start(target).await;
    let port = relay.port;
    let s = TestServer::start_with(Backend::Postgres, |s| {
        s.database_url = with_port(&s.database_url, port);
        s.db_acquire_timeout_ms = 1500;
    })
    .await
    .unwrap();
    let (owner, _) = s.signup("outage").await;
    assert_eq!(owner.get("/v1/orgs").await.unwrap().status, 200);

    relay.cut();
    let raw = reqwest::Client::new();
    let mut fast = 0;
    for i in 0..8 {
        let started = Instant::now();
        let r = raw.get(format!("{}/v1/orgs", s.base)).bearer_auth(owner.token().unwrap()).send().await.unwrap();
        let took = started.elapsed();
        assert_eq!(r.status(), 503, "request {i} during the outage");
        assert_eq!(r.headers()["retry-after"], "1");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "database_unavailable", "{body}");
        assert!(took < Duration::from_secs(2), "request {i} took {took:?}");
        if took < Duration::from_millis(100) {
            fast += 1;
        }
    }
    assert!(fast >= 5, "the circuit did not answer at once while the database was down ({fast} of 8 fast)");
    let r = s.client.get("/healthz").await.unwrap();
    assert_eq!(r.status, 200, "liveness does not depend on the database");
    let started = Instant::now();
    let r = s.client.get("/readyz").await.unwrap();
    assert_eq!((r.status, r.body["check"].as_str()), (503, Some("database")), "{:?}", r.body);
    assert!(started.elapsed() < Duration::from_secs(2));

    relay.restore().await;
    let started = Instant::now();
    loop {
        let r = owner.get("/v1/orgs").await.unwrap();
        if r.status == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no recovery: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = owner.post_idem("/v1/charges", "after-outage", &json!({"amount": 1, "action": "a"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(s.client.get("/readyz").await.unwrap().status, 200);
    drop(s);
}
}

/// The `host:port` of a PostgreSQL URL, and where in the URL it is.
fn host_port(url: &str) -> (std::ops::Range<usize>, String) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    let hp = &url[start..end];
    let hp = if hp.contains(':') { hp.to_string() } else { format!("{hp}:5432") };
    (start..end, hp)
}

/// `url` with its port replaced.
fn with_port(url: &str, port: u16) -> String {
    let (range, hp) = host_port(url);
    let host = hp.rsplit_once(':').map_or(hp.as_str(), |(h, _)| h);
    format!("{}{host}:{port}{}", &url[..range.start], &url[range.end..])
}
