//! State: documents by key, versions and ETags, conditional writes, listing, bad input, the quota.

use reqwest::Method;
use roost_domain::{Catalog, Plan};
use serde_json::{Value, json};

use crate::support::{expect_invalid, expect_plan_limit, expect_problem, list_all, personal_ws};
use roost_test_kit::TestServer;

use super::{put, put_if, state_path};

async fn documents_versions_and_conditions(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    let doc = json!({"theme": "dark", "model": {"name": "gpt", "temperature": 0.5}, "tags": ["a", "b"]});

    let r = alice.put(&state_path(&ws, "settings"), &doc).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["key"], "settings");
    let v1 = r.body["version"].as_i64().expect("version");
    assert!(r.body["updated_at"].is_string(), "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some(format!("\"{v1}\"").as_str()));

    let got = alice.get(&state_path(&ws, "settings")).await.unwrap();
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body, doc);
    assert!(got.content_type.starts_with("application/json"), "{}", got.content_type);
    assert_eq!(got.etag.as_deref(), Some(format!("\"{v1}\"").as_str()));
    // Not modified while the ETag is current.
    let same =
        alice.with_header("If-None-Match", &format!("\"{v1}\"")).get(&state_path(&ws, "settings")).await.unwrap();
    assert_eq!(same.status, 304);

    // A stale If-Match changes nothing; the current one writes a new version.
    let r = put_if(&alice, &ws, "settings", v1 + 100, &json!({"theme": "light"})).await;
    expect_problem(&r, 412, "version_conflict");
    assert_eq!(alice.get(&state_path(&ws, "settings")).await.unwrap().body, doc);
    let r = put_if(&alice, &ws, "settings", v1, &json!({"theme": "light"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v2 = r.body["version"].as_i64().unwrap();
    assert!(v2 > v1);
    let r = put_if(&alice, &ws, "settings", v1, &json!({"theme": "again"})).await;
    expect_problem(&r, 412, "version_conflict");
    let w = alice.with_header("If-Match", "*").put(&state_path(&ws, "settings"), &json!(1)).await.unwrap();
    assert_eq!(w.status, 200, "{}", w.body);
    let v3 = w.body["version"].as_i64().unwrap();

    // Create-only, and If-Match on a key with no document.
    let create = alice.with_header("If-None-Match", "*");
    expect_problem(&create.put(&state_path(&ws, "settings"), &json!(2)).await.unwrap(), 412, "version_conflict");
    assert_eq!(create.put(&state_path(&ws, "fresh"), &json!(null)).await.unwrap().status, 200);
    expect_problem(&put_if(&alice, &ws, "never", 1, &json!(1)).await, 412, "version_conflict");
    let star = alice.with_header("If-Match", "*").put(&state_path(&ws, "never"), &json!(1)).await.unwrap();
    expect_problem(&star, 412, "version_conflict");
    assert_eq!(alice.get(&state_path(&ws, "never")).await.unwrap().status, 404);

    // Delete: conditional, then gone; the versions of a key written again are new ones.
    let d = alice.with_header("If-Match", &format!("\"{v1}\"")).delete(&state_path(&ws, "settings")).await.unwrap();
    expect_problem(&d, 412, "version_conflict");
    let d = alice.with_header("If-Match", &format!("\"{v3}\"")).delete(&state_path(&ws, "settings")).await.unwrap();
    assert_eq!(d.status, 204, "{}", d.body);
    expect_problem(&alice.get(&state_path(&ws, "settings")).await.unwrap(), 404, "not_found");
    expect_problem(&alice.delete(&state_path(&ws, "settings")).await.unwrap(), 404, "not_found");
    let again = put(&alice, &ws, "settings", &json!({"theme": "dark"})).await;
    assert!(again > v3, "version {again} reused after {v3}");
    expect_problem(&put_if(&alice, &ws, "settings", v1, &json!(0)).await, 412, "version_conflict");

    // Keys with slashes, dots and colons; listing by prefix, by key, with cursors and sizes.
    for i in 0..7 {
        put(&alice, &ws, &format!("conv/2026-11-25/{i}:turns"), &json!({"n": i})).await;
    }
    put(&alice, &ws, "conv.other", &json!("x")).await;
    let got = alice.get(&state_path(&ws, "conv/2026-11-25/3:turns")).await.unwrap();
    assert_eq!(got.body, json!({"n": 3}));
    let listed = list_all(&alice, &format!("/v1/workspaces/{ws}/state?prefix=conv/"), 3).await;
    let keys: Vec<&str> = listed.iter().filter_map(|i| i["key"].as_str()).collect();
    let want: Vec<String> = (0..7).map(|i| format!("conv/2026-11-25/{i}:turns")).collect();
    assert_eq!(keys, want.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(listed[0]["size"], json!({"n": 0}).to_string().len());
    assert!(listed.iter().all(|i| i["version"].is_i64() && i["updated_at"].is_string()), "{listed:?}");
    let all = list_all(&alice, &format!("/v1/workspaces/{ws}/state"), 500).await;
    assert_eq!(all.len(), 10, "{all:?}");
    let mut sorted: Vec<&str> = all.iter().filter_map(|i| i["key"].as_str()).collect();
    let unsorted = sorted.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, unsorted, "listed by key (byte order)");
}

async fn bad_input_is_refused(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    for bad in ["a_b", "a%20b", "%C3%A4", "a%3Fb", "a%5Cb", &"k".repeat(201)] {
        let r = alice.put(&state_path(&ws, bad), &json!(1)).await.unwrap();
        expect_invalid(&r, "key");
        expect_invalid(&alice.get(&state_path(&ws, bad)).await.unwrap(), "key");
        expect_invalid(&alice.delete(&state_path(&ws, bad)).await.unwrap(), "key");
    }
    let path = state_path(&ws, "doc");
    // Over 256 KiB: 413 (whitespace outside strings does not count).
    let big = json!({"text": "x".repeat(256 * 1024)});
    expect_problem(&alice.put(&path, &big).await.unwrap(), 413, "payload_too_large");
    let over_a_mib = vec![b' '; 1024 * 1024 + 1];
    expect_problem(&alice.send_raw(Method::PUT, &path, over_a_mib).await.unwrap(), 413, "payload_too_large");
    let mut padded = vec![b' '; 300 * 1024];
    padded.extend_from_slice(br#"{"ok": true}"#);
    assert_eq!(alice.send_raw(Method::PUT, &state_path(&ws, "padded"), padded).await.unwrap().status, 200);
    // Not JSON.
    for body in [&b"{\"a\": "[..], b"not json", b"", b"{} {}", b"\xff\xfe", b"[1,]"] {
        let r = alice.send_raw(Method::PUT, &path, body.to_vec()).await.unwrap();
        expect_problem(&r, 400, "malformed_json");
    }
    // Malformed conditions.
    for tag in ["abc", "\"x\"", "\"-1\"", "\"1\" \"2\"", "W/", "\"99999999999999999999999\""] {
        let r = alice.with_header("If-Match", tag).put(&path, &json!(1)).await.unwrap();
        expect_invalid(&r, "If-Match");
        let r = alice.with_header("If-Match", tag).delete(&path).await.unwrap();
        expect_invalid(&r, "If-Match");
    }
    expect_invalid(&alice.with_header("If-None-Match", "\"3\"").put(&path, &json!(1)).await.unwrap(), "If-None-Match");
    let both = alice.with_header("If-None-Match", "*").with_header("If-Match", "\"1\"");
    expect_problem(&both.put(&path, &json!(1)).await.unwrap(), 412, "version_conflict");
    // Bad list parameters.
    expect_invalid(&alice.get(&format!("/v1/workspaces/{ws}/state?prefix=a_b")).await.unwrap(), "prefix");
    expect_invalid(&alice.get(&format!("/v1/workspaces/{ws}/state?cursor=a%20b")).await.unwrap(), "cursor");
    expect_invalid(&alice.get(&format!("/v1/workspaces/{ws}/state?limit=0")).await.unwrap(), "limit");
    // Nothing was stored by any of it but the padded document.
    let all = list_all(&alice, &format!("/v1/workspaces/{ws}/state"), 50).await;
    assert_eq!(all.iter().filter_map(|i| i["key"].as_str()).collect::<Vec<_>>(), ["padded"]);
    assert_eq!(alice.get(&state_path(&ws, "padded")).await.unwrap().body, json!({"ok": true}));
}

/// Every plan keeps 4,096 bytes of state per workspace.
fn small_quota(s: &mut roost_server::Settings) {
    let plans: Vec<Plan> = Catalog::builtin()
        .all()
        .iter()
        .cloned()
        .map(|mut p| {
            p.state_bytes = Some(4096);
            p
        })
        .collect();
    s.catalog = Catalog::new(plans, "free").unwrap();
}

async fn quota_holds_under_concurrent_writers(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    // 64 writers, each a 3-byte key and a 97-byte document: 100 bytes each, so exactly 40 fit.
    let doc = Value::String("x".repeat(95));
    assert_eq!(doc.to_string().len(), 97);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (c, ws, doc) = (alice.clone(), ws.clone(), doc.clone());
        tasks.push(tokio::spawn(async move { c.put(&state_path(&ws, &format!("k{i:02}")), &doc).await.unwrap() }));
    }
    let mut stored = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 200 {
            stored += 1;
        } else {
            expect_plan_limit(&r, 403, "state_bytes");
        }
    }
    assert_eq!(stored, 40, "the quota of 4,096 bytes holds exactly 40 documents of 100 bytes");
    let all = list_all(&alice, &format!("/v1/workspaces/{ws}/state"), 500).await;
    assert_eq!(all.len(), 40);
    // Shrinking always works; what it frees is usable again, exactly.
    let first = all[0]["key"].as_str().unwrap().to_string();
    put(&alice, &ws, &first, &json!(0)).await;
    // 3,904 bytes used now: a 2-byte key with a 190-byte document fills the quota to the byte.
    let r = alice.put(&state_path(&ws, "zz"), &Value::String("y".repeat(188))).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    expect_plan_limit(&alice.put(&state_path(&ws, "zy"), &json!(1)).await.unwrap(), 403, "state_bytes");
}

both_backends!(documents_versions_and_conditions, bad_input_is_refused);
both_backends_with!(quota_holds_under_concurrent_writers => super::small_quota);
