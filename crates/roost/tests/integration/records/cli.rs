//! The CLI over workspace records: `roost state …`, `roost history …`, `roost ws export`, as a
//! real process against a real server.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use roost_test_kit::TestServer;

/// Runs `roost ARGS --server BASE` with its own config dir (and `stdin`); answers (code, stdout, stderr).
async fn roost(dir: &std::path::Path, base: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(crate::ROOST);
    cmd.args(args)
        .args(["--server", base])
        .env("ROOST_CONFIG_DIR", dir)
        .env_remove("ROOST_SERVER")
        .env_remove("ROOST_PASSWORD")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn roost");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).await.expect("write stdin");
    }
    let out = child.wait_with_output().await.expect("wait for roost");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

async fn cli_keeps_state_and_history(s: TestServer) {
    let dir = std::env::temp_dir().join(format!("roost-records-cli-{}", roost_domain::IdKind::Event.generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let email = format!("cli-{}@example.com", roost_domain::IdKind::User.generate());
    let run = |args: Vec<&'static str>| {
        let (dir, base) = (dir.clone(), s.base.clone());
        async move { roost(&dir, &base, &args, None).await }
    };
    let (code, _, err) = roost(
        &dir,
        &s.base,
        &["signup", "--email", &email, "--name", "Cli", "--password", "correct horse battery"],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(vec!["state", "put", "settings", r#"{"model": "large"}"#, "--create-only"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("version"), "{out}");
    let (code, _, err) = run(vec!["state", "put", "settings", "{}", "--create-only"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("version_conflict") && err.contains("412"), "{err}");
    let (code, out, err) = run(vec!["state", "get", "settings", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["doc"]["model"], "large");
    let v = got["version"].as_i64().unwrap().to_string();
    let (code, _, err) =
        roost(&dir, &s.base, &["state", "put", "settings", "-", "--if-version", &v], Some(r#"{"model": "small"}"#))
            .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = roost(&dir, &s.base, &["state", "delete", "settings", "--if-version", &v], None).await;
    assert!(code == 1 && err.contains("version_conflict"), "{err}");
    let (code, _, err) = run(vec!["state", "put", "conv/7f3", r#"{"turns": 2}"#]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(vec!["state", "list", "--prefix", "conv/"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("conv/7f3") && !out.contains("settings"), "{out}");

    for text in ["hello", "again"] {
        let data = format!(r#"{{"role": "user", "text": "{text}"}}"#);
        let (code, out, err) =
            roost(&dir, &s.base, &["history", "append", "conversation.turn", &data, "--ref", "conv-7f3"], None).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("his_"), "{out}");
    }
    let (code, out, err) = run(vec!["history", "list", "--ref", "conv-7f3", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let texts: Vec<&str> =
        listed["items"].as_array().unwrap().iter().filter_map(|e| e["data"]["text"].as_str()).collect();
    assert_eq!(texts, ["again", "hello"]);

    let file = dir.join("export.jsonl");
    let (code, out, err) = roost(&dir, &s.base, &["ws", "export", "--output", file.to_str().unwrap()], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("exported 5 lines"), "{out}");
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let types: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(types, ["workspace", "state", "state", "history", "history"]);
    assert_eq!(lines[2]["doc"], serde_json::json!({"model": "small"}));
    let _ = std::fs::remove_dir_all(&dir);
}

both_backends!(cli_keeps_state_and_history);
