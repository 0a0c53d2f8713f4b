//! The served document is valid OpenAPI 3.1, as PyPI's `openapi-spec-validator` judges it, and
//! declares what the contract promises of every operation: a description on every response,
//! problems as `application/problem+json` with the `Problem` schema, and bounds on page sizes.

use roost_test_kit::peers::PythonTool;
use roost_test_kit::{Backend, TestServer};

use super::{PEER_CACHE, Scratch, operations, served};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_spec_validator_accepts_the_document() {
    let tool = match PythonTool::openapi_spec_validator(PEER_CACHE) {
        Ok(t) => t,
        Err(why) => {
            println!("{why}: the OpenAPI document was not validated");
            eprintln!("{why}: the OpenAPI document was not validated");
            return;
        }
    };
    let s = TestServer::start(Backend::Sqlite).await.expect("server");
    let doc = served(&s).await;
    let dir = Scratch::new("openapi-validator");
    let file = dir.0.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = tool.command().args(["--errors", "all"]).arg(&file).output().await.expect("run the validator");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains(": OK"), "openapi-spec-validator refused the document:\n{text}");
    // The validator must be able to fail: the same document without a response's description is refused.
    let mut broken = doc.clone();
    let (_, path, _) = operations(&doc).into_iter().find(|(m, _, _)| m == "GET").unwrap();
    broken["paths"][&path]["get"]["responses"]["200"].as_object_mut().unwrap().remove("description");
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let out = tool.command().arg(&file).output().await.expect("run the validator");
    assert!(!out.status.success(), "a response without a description was accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_declares_the_shared_answers() {
    let s = TestServer::start(Backend::Sqlite).await.expect("server");
    let doc = served(&s).await;
    let mut problems = Vec::new();
    for (m, p, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        let has = |st: &str| responses.contains_key(st);
        let authenticated =
            op["security"].as_array().is_some_and(|a| a.iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty())));
        let mut want: Vec<&str> = Vec::new();
        if authenticated {
            want.extend(["401", "403", "429"]);
        }
        if op.get("requestBody").is_some() {
            want.extend(["400", "413", "422"]);
        }
        if p.contains('{') {
            want.push("404");
        }
        if p.starts_with("/v1/") && p != "/v1/openapi.json" {
            want.push("503");
        }
        for st in want {
            if !has(st) {
                problems.push(format!("{m} {p}: no {st}"));
            }
        }
        for (st, r) in responses {
            if r["description"].as_str().is_none_or(|d| d.trim().is_empty()) {
                problems.push(format!("{m} {p} {st}: no description"));
            }
            if st.starts_with('4') || st.starts_with('5') {
                let problem = &r["content"]["application/problem+json"]["schema"]["$ref"];
                if problem != "#/components/schemas/Problem" || r["content"].get("application/json").is_some() {
                    problems.push(format!("{m} {p} {st}: not declared application/problem+json with Problem"));
                }
            }
            if (st == "429" || st == "503") && r["headers"].get("Retry-After").is_none() {
                problems.push(format!("{m} {p} {st}: no Retry-After"));
            }
            if authenticated && r["headers"].get("RateLimit-Remaining").is_none() {
                problems.push(format!("{m} {p} {st}: no RateLimit-* headers"));
            }
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["name"] == "limit" && param["in"] == "query" {
                let sch = &param["schema"];
                if sch["minimum"] != 1 || sch["maximum"] != 500 {
                    problems.push(format!("{m} {p}: ?limit= without bounds 1–500: {sch}"));
                }
            }
        }
    }
    // Amounts carry their bounds.
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in
        [("ChargeBody", "amount"), ("HoldBody", "amount"), ("SettleBody", "amount"), ("TopupBody", "amount")]
    {
        let f = &schemas[schema]["properties"][field];
        if f["minimum"] != 1 || f["maximum"] != 1_000_000_000_000_000_i64 {
            problems.push(format!("{schema}.{field} without bounds 1–10^15: {f}"));
        }
    }
    assert!(problems.is_empty(), "the OpenAPI misses:\n{}", problems.join("\n"));
}
