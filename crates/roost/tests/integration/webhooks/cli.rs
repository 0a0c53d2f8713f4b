//! `roost webhooks …` and `roost events`, run as real processes against a test server.

use std::time::Duration;

use serde_json::Value;

use super::receiver::Receiver;
use roost_test_kit::TestServer;

/// Runs the CLI with its own config directory; returns `(exit code, stdout, stderr)`.
async fn roost(dir: &std::path::Path, base: &str, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(crate::ROOST)
        .args(args)
        .args(["--server", base])
        .env("ROOST_CONFIG_DIR", dir)
        .env_remove("ROOST_SERVER")
        .env_remove("ROOST_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

async fn ok_json(dir: &std::path::Path, base: &str, args: &[&str]) -> Value {
    let (code, out, err) = roost(dir, base, args).await;
    assert_eq!(code, 0, "{args:?}: {out} {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

async fn cli_webhooks(s: TestServer) {
    let dir = std::env::temp_dir().join("roost-cli-tests").join(roost_domain::IdKind::User.generate());
    std::fs::create_dir_all(&dir).unwrap();
    let b = s.base.as_str();
    let email = format!("hooks-{}@example.com", roost_domain::IdKind::User.generate());
    let (code, _, err) =
        roost(&dir, b, &["signup", "--email", &email, "--name", "H", "--password", "correct horse battery"]).await;
    assert_eq!(code, 0, "{err}");
    let orgs = ok_json(&dir, b, &["orgs", "list", "--json"]).await;
    let org = orgs["items"][0]["id"].as_str().unwrap().to_string();
    let rx = Receiver::start().await;

    let (code, out, err) = roost(&dir, b, &["webhooks", "create", &org, &rx.url, "--events", "key.created"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("will not be shown again"), "{err}");
    let secret = out.lines().find_map(|l| l.split_whitespace().find(|w| w.starts_with("whsec_"))).unwrap();
    rx.know(secret);
    let list = ok_json(&dir, b, &["webhooks", "list", &org, "--json"]).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(list["items"][0]["events"], serde_json::json!(["key.created"]));
    let (code, table, _) = roost(&dir, b, &["webhooks", "list", &org]).await;
    assert!(code == 0 && table.contains(&id) && table.contains(&rx.url), "{table}");

    let test = ok_json(&dir, b, &["webhooks", "test", &id, "--json"]).await;
    assert_eq!(test["status_code"], 204, "{test}");
    let (code, _, err) = roost(&dir, b, &["keys", "create", "ci"]).await;
    assert_eq!(code, 0, "{err}");
    let events = ok_json(&dir, b, &["events", &org, "--type", "key.created", "--json"]).await;
    let event = events["items"][0]["id"].as_str().unwrap().to_string();
    for _ in 0..200 {
        if rx.accepted().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids: Vec<_> = rx.accepted().iter().map(|g| g.id.clone()).collect();
    assert_eq!(ids[1], event, "the key.created event arrived: {ids:?}");
    assert!(rx.got().iter().all(|g| g.signed_by == vec![0]));
    let (code, table, _) = roost(&dir, b, &["webhooks", "deliveries", &id]).await;
    assert!(code == 0 && table.contains(&event) && table.contains("204"), "{table}");
    let (code, table, _) = roost(&dir, b, &["events", &org]).await;
    assert!(code == 0 && table.contains("key.created"), "{table}");

    let (code, out, _) = roost(&dir, b, &["webhooks", "rotate", &id]).await;
    assert!(code == 0 && out.contains("whsec_") && !out.contains(secret), "{out}");
    // Errors: exit 1, one line, the server's words.
    let (code, out, err) = roost(&dir, b, &["webhooks", "create", &org, "ftp://example.com/"]).await;
    assert_eq!((code, out.as_str(), err.lines().count()), (1, "", 1), "{err}");
    assert!(err.starts_with("error: ") && err.contains("url"), "{err}");
    let (code, out, _) = roost(&dir, b, &["webhooks", "delete", &id]).await;
    assert_eq!((code, out.trim()), (0, format!("deleted {id}").as_str()));
    let (code, _, err) = roost(&dir, b, &["webhooks", "deliveries", &id]).await;
    assert_eq!(code, 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

both_backends_with!(cli_webhooks => super::super::fast);
