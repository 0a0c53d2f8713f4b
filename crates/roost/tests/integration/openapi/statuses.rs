//! Every status a route answers is one it declares: each operation of the served document is
//! driven with the requests that reach the layers every route shares — no token, a malformed body
//! from another tenant, another tenant's token, an API key, and the owner with an empty object —
//! and each answer's status must be declared for that operation, with the declared media type.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use roost::Client;
use serde_json::Value;

use super::seed::{Seed, empty_body, seed};
use super::{operations, served};
use roost_test_kit::TestServer;

/// One answer that the document does not declare.
fn check(seen: &roost::Response, op: &Value, what: &str, problems: &mut Vec<String>) {
    let status = seen.status.to_string();
    let Some(declared) = op["responses"].get(&status).or_else(|| op["responses"].get("default")) else {
        problems.push(format!("{what}: answered {status}, which is not declared: {}", seen.body));
        return;
    };
    let media = seen.content_type.split(';').next().unwrap_or("").trim().to_string();
    let content = declared["content"].as_object();
    if !media.is_empty() && content.is_some_and(|c| !c.contains_key(&media)) {
        problems.push(format!(
            "{what}: answered {status} as {media}, declared as {:?}",
            content.map(|c| c.keys().collect::<Vec<_>>())
        ));
    }
}

async fn send(c: &Client, method: &str, path: &str, body: Option<&Value>) -> roost::Response {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    c.send(m, path, body).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

async fn declared_statuses_cover_what_routes_answer(s: TestServer) {
    let doc = served(&s).await;
    let seeded: Seed = seed(&s).await;
    let (alice, bob, key) = (&seeded.alice, &seeded.bob, &seeded.key);
    let ops = operations(&doc);
    let mut problems = Vec::new();
    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
    // Passes in an order that keeps what later passes need: the owner's pass, which may rotate the
    // key, comes last, and only it skips DELETE (it would end its own session or org).
    let passes: [(&str, &Client, bool); 4] = [
        ("no token", &s.client, false),
        ("another tenant", bob, false),
        ("API key", key, false),
        ("owner", alice, true),
    ];
    for (m, p, op) in &ops {
        let path = seeded.fill(p);
        let r = bob.send_raw(Method::from_bytes(m.as_bytes()).unwrap(), &path, b"{not json".to_vec()).await.unwrap();
        *seen.entry(r.status).or_default() += 1;
        check(&r, op, &format!("{m} {p} (malformed body, another tenant)"), &mut problems);
    }
    for (who, client, skip_delete) in passes {
        for (m, p, op) in &ops {
            if skip_delete && m == "DELETE" {
                continue;
            }
            let r = send(client, m, &seeded.fill(p), empty_body(op).as_ref()).await;
            *seen.entry(r.status).or_default() += 1;
            check(&r, op, &format!("{m} {p} ({who})"), &mut problems);
        }
    }
    assert!(problems.is_empty(), "answers the OpenAPI does not declare:\n{}", problems.join("\n"));
    // The drive reached the layers it is meant to: otherwise this test checks nothing.
    let statuses: BTreeSet<u16> = seen.keys().copied().collect();
    for want in [200, 400, 401, 403, 404, 422] {
        assert!(statuses.contains(&want), "no route answered {want}: {seen:?}");
    }
}

both_backends_with!(declared_statuses_cover_what_routes_answer => crate::openapi::seed::settings);
