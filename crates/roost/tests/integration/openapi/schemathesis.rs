//! schemathesis (PyPI) with `--checks all` against a seeded server: generated requests, valid and
//! invalid, must get answers the document declares — no 5xx, bodies, headers and media types as
//! declared, invalid input refused, auth enforced. Bounded by `--max-time` (90 s per backend;
//! `ROOST_SCHEMATHESIS_SECONDS` changes it). Without schemathesis (and no way to install it) the
//! test says SKIPPED.

use std::time::Duration;

use roost_test_kit::TestServer;
use roost_test_kit::peers::PythonTool;
use serde_json::Value;

use super::seed::seed;
use super::{PEER_CACHE, Scratch, operations, served};

/// Rules that depend on the server's state or on several fields at once, which a schema cannot
/// state: for these operations, a schema-valid request may also be refused with 422 (a wrong TOTP
/// code, an `rpm` above the org plan's, a webhook URL that does not resolve, a workspace of another
/// org, `monthly_max` below one reload, a zero adjustment, a settle above what is held …).
const STATEFUL_422: [(&str, &str); 15] = [
    ("PATCH", "/v1/orgs/{org}"),
    ("PATCH", "/v1/keys/{id}"),
    ("POST", "/v1/workspaces/{ws}/keys"),
    ("POST", "/v1/me/totp/confirm"),
    ("DELETE", "/v1/me/totp"),
    ("POST", "/v1/orgs/{org}/domains"),
    ("POST", "/v1/orgs/{org}/domains/{id}/verify"),
    ("POST", "/v1/orgs/{org}/invitations"),
    ("POST", "/v1/orgs/{org}/wallets/{wallet}/adjustments"),
    ("POST", "/v1/orgs/{org}/webhooks"),
    ("PATCH", "/v1/webhooks/{id}"),
    ("PUT", "/v1/orgs/{org}/wallets/{wallet}/auto-reload"),
    ("PATCH", "/v1/orgs/{org}/members/{user}"),
    ("POST", "/v1/holds/{id}/settle"),
    ("PUT", "/v1/workspaces/{ws}/budget"),
];

/// Operations whose `?cursor=` must be one the server issued (any other is 422, API.md): a
/// schema-valid cursor is not enough there either.
fn cursor_lists(doc: &Value) -> Vec<(String, String)> {
    operations(doc)
        .into_iter()
        .filter(|(_, _, op)| {
            op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == "cursor" && p["in"] == "query"))
        })
        .map(|(m, p, _)| (m, p))
        .collect()
}

fn config(seeded: &super::seed::Seed, doc: &Value) -> String {
    let mut c = String::from("[parameters]\n");
    for name in ["org", "ws", "user", "wallet"] {
        c.push_str(&format!("\"path.{name}\" = \"{}\"\n", seeded.ids[name]));
    }
    // Refusals for the state of things (402 no credits or a paid plan, 409 a conflict, 410 a used
    // token, 412 a version that is not the current one) are answers to valid requests too.
    let accepted = "[\"2xx\", \"3xx\", 401, 402, 403, 404, 409, 410, 412, 429]";
    c.push_str(&format!("\n[checks.positive_data_acceptance]\nexpected-statuses = {accepted}\n"));
    let stateful = STATEFUL_422.iter().map(|(m, p)| (m.to_string(), p.to_string()));
    for (method, path) in stateful.chain(cursor_lists(doc)) {
        c.push_str(&format!(
            "\n[[operations]]\ninclude-method = \"{method}\"\ninclude-path = \"{path}\"\nchecks.positive_data_acceptance.expected-statuses = [\"2xx\", \"3xx\", 401, 402, 403, 404, 409, 410, 412, 422, 429]\n"
        ));
    }
    c
}

async fn schemathesis_finds_nothing(s: TestServer) {
    let tool = match PythonTool::schemathesis(PEER_CACHE) {
        Ok(t) => t,
        Err(why) => {
            println!("{why}: schemathesis did not run");
            eprintln!("{why}: schemathesis did not run");
            return;
        }
    };
    let seeded = seed(&s).await;
    let dir = Scratch::new("schemathesis");
    let cfg = dir.0.join("schemathesis.toml");
    let doc = served(&s).await;
    std::fs::write(&cfg, config(&seeded, &doc)).unwrap();
    let seconds: u64 = std::env::var("ROOST_SCHEMATHESIS_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(90);
    let token = seeded.alice.token().unwrap().to_string();
    let mut cmd = tool.command();
    cmd.current_dir(&dir.0)
        .arg("--config-file")
        .arg(&cfg)
        .arg("run")
        .arg(format!("{}/v1/openapi.json", s.base))
        .args(["--checks", "all", "--max-examples", "10", "--seed", "20261124"])
        // One worker: schemathesis's coverage phase compiles Python in each worker thread, and two
        // at once hit a CPython 3.11 `SystemError` (AST recursion depth) that ends the run.
        .args(["--workers", "1"])
        .args(["--max-time", &seconds.to_string(), "--request-timeout", "20", "--no-color"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        // Ending the session schemathesis acts with, or deleting the seeded org, would leave the rest
        // of the run answering 401 and 404; both are covered by their own tests.
        .args(["--exclude-path", "/v1/sessions/current", "--exclude-path", "/v1/me/sessions/{id}"])
        .args(["--exclude-by", "method == 'DELETE' and path == '/v1/orgs/{org}'"]);
    let out = tokio::time::timeout(Duration::from_secs(seconds + 240), cmd.output())
        .await
        .expect("schemathesis overran its time budget")
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let summary = text.find("SUMMARY").map_or(text.as_str(), |i| &text[i..]);
    println!("{summary}");
    assert!(out.status.success(), "schemathesis found failures:\n{text}");
    assert!(summary.contains("Tested:"), "schemathesis did not test anything:\n{text}");
}

both_backends_with!(schemathesis_finds_nothing => crate::openapi::seed::settings);
