//! Scenarios: the `roost` CLI, run as a real process against a test server. Each CLI user has a
//! config directory of their own, as if on their own machine.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;

use roost::Client;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use roost_test_kit::TestServer;

const PASSWORD: &str = "correct horse battery";

/// One person's CLI: the binary with their own `ROOST_CONFIG_DIR`.
struct Cli {
    dir: PathBuf,
    base: String,
}

/// What one run of the binary did.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts success and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        &self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the failure shape: exit 1, nothing on stdout, exactly one `error: …` line on stderr.
    fn failed(&self) -> &str {
        assert_eq!(self.code, 1, "expected exit 1: {self:?}");
        assert_eq!(self.stdout, "", "a failing command printed to stdout: {self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "expected one stderr line: {self:?}");
        assert!(self.stderr.starts_with("error: "), "{self:?}");
        self.stderr.trim_end()
    }
}

impl Cli {
    fn new(s: &TestServer) -> Self {
        let dir = std::env::temp_dir().join("roost-cli-tests").join(roost_domain::IdKind::User.generate());
        std::fs::create_dir_all(&dir).expect("config dir");
        Self { dir, base: s.base.clone() }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn config(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.config_path()).expect("read config"))
            .expect("config is JSON")
    }

    fn config_mode(&self) -> u32 {
        std::fs::metadata(self.config_path()).expect("config metadata").permissions().mode() & 0o777
    }

    /// Runs `roost ARGS --server <base>`.
    async fn run(&self, args: &[&str]) -> Out {
        let mut all = args.to_vec();
        all.extend(["--server", &self.base]);
        self.exec(&all, None, &[]).await
    }

    /// Runs the binary with exactly `args`, optional stdin and extra environment.
    async fn exec(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Out {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_roost"));
        cmd.args(args)
            .env("ROOST_CONFIG_DIR", &self.dir)
            .env_remove("ROOST_SERVER")
            .env_remove("ROOST_PASSWORD")
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn roost");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).await.expect("write stdin");
        }
        let out = child.wait_with_output().await.expect("wait for roost");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        }
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn email(name: &str) -> String {
    format!("{name}-{}@example.com", roost_domain::IdKind::User.generate())
}

/// Alice signs up, creates an org and invites Bob; Bob signs up, accepts, switches to the org's
/// workspace, creates an API key and uses it; keys rotate and revoke; logout ends the session.
async fn cli_story(s: TestServer) {
    let alice = Cli::new(&s);
    let alice_email = email("alice");

    // Signup saves the session in a config file only its owner can read.
    let out = alice.run(&["signup", "--email", &alice_email, "--name", "Alice", "--password", PASSWORD]).await;
    assert!(out.ok().contains(&alice_email) && out.ok().contains("Alice"), "{out:?}");
    assert_eq!(alice.config_mode(), 0o600);
    let saved = alice.config();
    assert_eq!(saved["server"], s.base.as_str());
    assert!(saved["token"].as_str().is_some_and(|t| t.starts_with("rsu_")), "{saved}");

    let me = alice.run(&["whoami", "--json"]).await.json();
    assert_eq!(me["user"]["email"], alice_email.as_str());
    assert_eq!(me["user"]["name"], "Alice");

    // Orgs.
    let created = alice.run(&["orgs", "create", "Acme", "--plan", "team", "--json"]).await.json();
    let org = created["org"]["id"].as_str().expect("org id").to_string();
    let primary = created["workspace"]["id"].as_str().expect("workspace id").to_string();
    assert_eq!(created["org"]["plan"], "team");
    let list = alice.run(&["orgs", "list"]).await;
    let row = list.ok().lines().find(|l| l.starts_with(&org)).unwrap_or_else(|| panic!("no row for {org}: {list:?}"));
    assert!(row.contains("Acme") && row.contains("team"), "{row}");
    let whoami = alice.run(&["whoami"]).await;
    assert!(whoami.ok().contains(&alice_email) && whoami.ok().contains("Acme"), "{whoami:?}");

    // A problem answer: one stderr line with the detail, code and status; exit 1.
    let line = alice.run(&["orgs", "create", "X", "--plan", "free"]).await.failed().to_string();
    assert!(line.contains("paid_plan_required") && line.contains("HTTP 402"), "{line}");
    // A usage error is clap's: exit 2.
    assert_eq!(alice.run(&["orgs", "create", "X"]).await.code, 2);

    // Invite Bob into the org and its primary workspace; he signs up (password from the
    // environment) and accepts.
    let bob = Cli::new(&s);
    let bob_email = email("bob");
    let grant = format!("{primary}:member");
    let inv = alice
        .run(&["orgs", "invite", &org, &bob_email, "--role", "member", "--workspace", &grant, "--json"])
        .await
        .json();
    let token = inv["token"].as_str().expect("invitation token").to_string();
    assert_eq!(inv["email"], bob_email.as_str());
    let out = bob
        .exec(
            &["signup", "--email", &bob_email, "--name", "Bob", "--server", &s.base],
            None,
            &[("ROOST_PASSWORD", PASSWORD)],
        )
        .await;
    assert!(out.ok().contains(&bob_email), "{out:?}");
    let accepted = bob.run(&["invitations", "accept", &token]).await;
    assert!(accepted.ok().contains(&org) && accepted.ok().contains(&primary), "{accepted:?}");
    let members = alice.run(&["orgs", "members", &org]).await;
    let row =
        members.ok().lines().find(|l| l.contains(&bob_email)).unwrap_or_else(|| panic!("bob not listed: {members:?}"));
    assert!(row.contains("member"), "{row}");

    // Bob switches to the org's primary workspace; the server saved by signup is the default.
    let switched = bob.exec(&["ws", "switch", &primary], None, &[]).await;
    assert!(switched.ok().contains(&primary), "{switched:?}");
    let wss = bob.run(&["ws", "list"]).await;
    let active = wss.ok().lines().find(|l| l.starts_with('*')).unwrap_or_else(|| panic!("no active row: {wss:?}"));
    assert!(active.contains(&primary) && active.contains("Acme"), "{active}");

    // Bob creates a key in his active workspace; the secret is shown once, with a warning.
    let out = bob.run(&["keys", "create", "ci", "--json"]).await;
    assert!(out.stderr.contains("will not be shown again"), "{out:?}");
    let key = out.json();
    let key_id = key["id"].as_str().expect("key id").to_string();
    let secret = key["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("rsk_"), "{key}");
    assert_eq!(key["workspace_id"], primary.as_str());
    let as_key = s.client.with_token(&secret).get("/v1/me").await.unwrap();
    assert_eq!(as_key.status, 200, "{:?}", as_key.body);
    assert_eq!(as_key.body["key"]["id"], key_id.as_str());
    assert_eq!(as_key.body["key"]["name"], "ci");
    assert_eq!(as_key.body["key"]["workspace_id"], primary.as_str());
    let keys = bob.run(&["keys", "list"]).await;
    let row = keys.ok().lines().find(|l| l.starts_with(&key_id)).unwrap_or_else(|| panic!("key not listed: {keys:?}"));
    assert!(row.contains("ci") && !keys.stdout.contains(&secret), "{keys:?}");

    // Rotation (no grace): the old secret stops at once, the new one works; revoking stops it.
    let rotated = bob.run(&["keys", "rotate", &key_id, "--json"]).await.json();
    let new_secret = rotated["secret"].as_str().expect("new secret").to_string();
    assert_eq!(status(&s, &secret).await, 401);
    assert_eq!(status(&s, &new_secret).await, 200);
    let revoked = bob.run(&["keys", "revoke", &key_id]).await;
    assert!(revoked.ok().contains(&key_id), "{revoked:?}");
    assert_eq!(status(&s, &new_secret).await, 401);

    // The audit log, as the owner sees it.
    let audit = alice.run(&["audit", &org, "--action", "org.created", "--json"]).await.json();
    let events = audit["items"].as_array().expect("audit items");
    assert!(!events.is_empty() && events.iter().all(|e| e["action"] == "org.created"), "{audit}");
    let table = alice.run(&["audit", &org]).await;
    assert!(table.ok().starts_with("AT") && table.ok().contains("org.created"), "{table:?}");
    // Its hash chain: whole, as the owner checks it; a member may not.
    let verified = alice.run(&["audit", "verify", &org]).await;
    assert!(verified.ok().starts_with("ok: the audit chain of "), "{verified:?}");
    let verified = alice.run(&["audit", "verify", &org, "--json"]).await.json();
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["events"].as_u64().is_some_and(|n| n >= events.len() as u64), "{verified}");
    let refused = bob.run(&["audit", "verify", &org]).await;
    assert!(refused.failed().contains("may not"), "{refused:?}");

    // Logout ends the session server-side and forgets the token here.
    let old_token = bob.config()["token"].as_str().expect("bob token").to_string();
    let out = bob.run(&["logout"]).await;
    assert!(out.ok().contains("logged out"), "{out:?}");
    assert_eq!(status(&s, &old_token).await, 401);
    assert!(bob.config().get("token").is_none(), "token still saved: {}", bob.config());
    assert_eq!(bob.config()["server"], s.base.as_str());
    let line = bob.run(&["whoami"]).await.failed().to_string();
    assert_eq!(line, "error: not logged in; run roost login");
}

/// Login reads the password from stdin and tightens a config file that was too open; wrong
/// credentials and an unreachable server are one-line errors.
async fn cli_login(s: TestServer) {
    let (_, signup) = s.signup("Carol").await;
    let carol_email = signup["user"]["email"].as_str().expect("email").to_string();
    let carol = Cli::new(&s);
    std::fs::write(carol.config_path(), "{}").expect("write config");
    std::fs::set_permissions(carol.config_path(), std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let args = ["login", "--email", carol_email.as_str(), "--server", s.base.as_str()];
    let out = carol.exec(&args, Some(&format!("{PASSWORD}\n")), &[]).await;
    assert!(out.ok().contains("logged in as") && out.ok().contains(&carol_email), "{out:?}");
    assert_eq!(carol.config_mode(), 0o600);
    let me = carol.run(&["whoami", "--json"]).await.json();
    assert_eq!(me["user"]["id"], signup["user"]["id"]);

    let line = carol.exec(&args, Some("wrong password\n"), &[]).await.failed().to_string();
    assert!(line.contains("invalid_credentials") && line.contains("HTTP 401"), "{line}");

    let nowhere = Cli::new(&s);
    let out = nowhere
        .exec(
            &[
                "signup",
                "--email",
                "x@example.com",
                "--name",
                "X",
                "--password",
                PASSWORD,
                "--server",
                "http://127.0.0.1:1",
            ],
            None,
            &[],
        )
        .await;
    assert!(out.failed().starts_with("error: cannot reach"), "{out:?}");
    assert!(!nowhere.config_path().exists(), "a failed signup saved a config");
}

async fn status(s: &TestServer, token: &str) -> u16 {
    let c: Client = s.client.with_token(token);
    c.get("/v1/me").await.unwrap().status
}

both_backends!(cli_story, cli_login);
