//! The export: every document and entry of the workspace, as JSON lines, over several chunks;
//! workspace admins only. (Its memory under 100,000 entries is measured in BENCHMARKS.md.)

use serde_json::{Value, json};

use crate::support::{expect_problem, personal_ws};
use roost_test_kit::TestServer;

use super::{append, key_client, put};

async fn export_streams_every_record_as_json_lines(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    // More documents and entries than one chunk of each.
    for i in 0..70 {
        put(&alice, &ws, &format!("doc/{i:03}"), &json!({"i": i, "text": "line\nbreak"})).await;
    }
    let mut appended = Vec::new();
    for batch in 0..11 {
        let mut tasks = Vec::new();
        for j in 0..50 {
            let (c, ws) = (alice.clone(), ws.clone());
            tasks.push(tokio::spawn(async move { append(&c, &ws, "turn", json!({"n": batch * 50 + j}), None).await }));
        }
        for t in tasks {
            appended.push(t.await.unwrap()["id"].as_str().unwrap().to_string());
        }
    }
    appended.sort();

    let (status, text) = alice.get_text(&format!("/v1/workspaces/{ws}/export")).await.unwrap();
    assert_eq!(status, 200, "{text}");
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(text.ends_with('\n'));
    assert_eq!(lines[0]["type"], "workspace");
    assert_eq!(lines[0]["workspace_id"], ws.as_str());
    let docs: Vec<&Value> = lines.iter().filter(|l| l["type"] == "state").collect();
    let entries: Vec<&Value> = lines.iter().filter(|l| l["type"] == "history").collect();
    assert_eq!((docs.len(), entries.len(), lines.len()), (70, 550, 621));
    for (i, d) in docs.iter().enumerate() {
        assert_eq!(d["key"], format!("doc/{i:03}"));
        assert_eq!(d["doc"], json!({"i": i, "text": "line\nbreak"}));
        assert!(d["version"].is_i64() && d["size"].is_i64() && d["updated_at"].is_string(), "{d}");
    }
    let ids: Vec<String> = entries.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, appended, "every entry once, oldest first");
    assert!(entries.iter().all(|e| e["kind"] == "turn" && e["actor"]["type"] == "user" && e["data"]["n"].is_u64()));

    // Workspace admins only: keys and members may not.
    let key = key_client(&alice, &ws).await;
    expect_problem(&key.get(&format!("/v1/workspaces/{ws}/export")).await.unwrap(), 403, "forbidden");
}

async fn members_may_not_export(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (bob, b) = s.signup("Bob").await;
    s.add_member(&alice, &org, &bob, &b, "member").await;
    crate::support::set_ws_role(&alice, &ws, &crate::support::uid(&b), "member").await;
    expect_problem(&bob.get(&format!("/v1/workspaces/{ws}/export")).await.unwrap(), 403, "forbidden");
    crate::support::set_ws_role(&alice, &ws, &crate::support::uid(&b), "admin").await;
    let (status, text) = bob.get_text(&format!("/v1/workspaces/{ws}/export")).await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(text.lines().count(), 1, "an empty workspace exports its header line only: {text}");
}

both_backends!(export_streams_every_record_as_json_lines, members_may_not_export);
