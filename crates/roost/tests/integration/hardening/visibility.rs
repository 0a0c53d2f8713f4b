//! Who sees what: a billing member sees every workspace; another tenant's ids answer byte for
//! byte like missing ones.

use reqwest::Method;
use roost_domain::IdKind;
use serde_json::{Value, json};

use crate::support::{create_ws, expect_status, list_all, membership};
use roost_test_kit::TestServer;

use super::{assert_key_works, create_key, id_of, key_client};

// 11. -----------------------------------------------------------------------------------------------

/// A billing member sees every workspace of the org, with the role `billing`.
async fn billing_member_sees_every_workspace(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    let ws2 = create_ws(&alice, &org, "Two").await;
    let ws3 = create_ws(&alice, &org, "Three").await;
    let (bill, b) = s.signup("Bill").await;
    s.add_member(&alice, &org, &bill, &b, "billing").await;

    let me = bill.get("/v1/me").await.unwrap();
    expect_status(&me, 200);
    let m = membership(&me.body, &org).unwrap_or_else(|| panic!("no membership for {org}: {}", me.body));
    assert_eq!(m["org_role"], "billing", "{m}");
    let ws = m["workspaces"].as_array().unwrap_or_else(|| panic!("no workspaces: {m}"));
    let mut ids: Vec<&str> = ws.iter().filter_map(|w| w["id"].as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![primary.as_str(), ws2.as_str(), ws3.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "a billing member's workspaces in /v1/me: {m}");
    for w in ws {
        assert_eq!(w["role"], "billing", "role of {} for a billing member: {m}", w["id"]);
    }

    for w in [&primary, &ws2, &ws3] {
        let cur = bill.in_workspace(w).get("/v1/workspaces/current").await.unwrap();
        expect_status(&cur, 200);
        assert_eq!(cur.body["id"], w.as_str(), "{}", cur.body);
        assert_eq!(cur.body["role"], "billing", "GET /v1/workspaces/current in {w}: {}", cur.body);
    }
    let r = bill.put("/v1/me/active-workspace", &json!({"workspace_id": ws2})).await.unwrap();
    expect_status(&r, 200);
    let cur = bill.get("/v1/workspaces/current").await.unwrap();
    assert_eq!((cur.body["id"].as_str(), cur.body["role"].as_str()), (Some(ws2.as_str()), Some("billing")));
    let listed = list_all(&bill, &format!("/v1/orgs/{org}/workspaces"), 500).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
}

// 12. -----------------------------------------------------------------------------------------------

/// Status, content type and the raw body bytes of a request.
async fn raw(s: &TestServer, token: &str, method: Method, path: &str, body: Option<&Value>) -> (u16, String, Vec<u8>) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", s.base)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, res.bytes().await.expect("body").to_vec())
}

/// Another tenant's key or resource answers byte for byte like one that does not exist.
async fn another_tenants_ids_answer_byte_for_byte_like_missing_ones(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let ws2 = create_ws(&alice, &org, "Hidden").await;
    let key = create_key(&alice, &ws, "ci").await;
    let hidden_key = create_key(&alice, &ws2, "hidden").await;
    let res =
        alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "r"})).await.unwrap();
    expect_status(&res, 201);
    let res = res.str("id").to_string();
    let hidden_res =
        alice.post(&format!("/v1/workspaces/{ws2}/resources"), &json!({"kind": "app", "name": "h"})).await.unwrap();
    let hidden_res = hidden_res.str("id").to_string();
    let (mallory, _) = s.signup("Mallory").await;
    let (_, mallory_ws) = s.org(&mallory, "Evil", "team").await;
    // An org member who is in neither workspace.
    let (carol, c) = s.signup("Carol").await;
    s.add_member(&alice, &org, &carol, &c, "member").await;

    let missing_key = IdKind::Key.generate();
    let missing_res = IdKind::Resource.generate();
    let transfer = json!({"workspace_id": mallory_ws});
    let mt = mallory.token().expect("token").to_string();
    let ct = carol.token().expect("token").to_string();
    let cases = [
        (&mt, Method::DELETE, format!("/v1/keys/{}", id_of(&key)), format!("/v1/keys/{missing_key}"), None),
        (&mt, Method::DELETE, format!("/v1/resources/{res}"), format!("/v1/resources/{missing_res}"), None),
        (
            &mt,
            Method::POST,
            format!("/v1/keys/{}/rotate", id_of(&key)),
            format!("/v1/keys/{missing_key}/rotate"),
            Some(json!({})),
        ),
        (
            &mt,
            Method::POST,
            format!("/v1/resources/{res}/transfer"),
            format!("/v1/resources/{missing_res}/transfer"),
            Some(transfer),
        ),
        (&ct, Method::DELETE, format!("/v1/keys/{}", id_of(&hidden_key)), format!("/v1/keys/{missing_key}"), None),
        (&ct, Method::DELETE, format!("/v1/resources/{hidden_res}"), format!("/v1/resources/{missing_res}"), None),
    ];
    for (token, method, theirs, missing, body) in &cases {
        let a = raw(&s, token, method.clone(), theirs, body.as_ref()).await;
        let b = raw(&s, token, method.clone(), missing, body.as_ref()).await;
        assert_eq!(a.0, 404, "{method} {theirs}: {}", String::from_utf8_lossy(&a.2));
        assert_eq!(
            (a.0, &a.1, String::from_utf8_lossy(&a.2)),
            (b.0, &b.1, String::from_utf8_lossy(&b.2)),
            "{method} {theirs} answers differently from {missing}"
        );
    }
    // Nothing moved.
    assert_key_works(&key_client(&s, &key), &id_of(&key)).await;
    assert_key_works(&key_client(&s, &hidden_key), &id_of(&hidden_key)).await;
    let listed = list_all(&alice, &format!("/v1/workspaces/{ws}/resources"), 500).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
}

both_backends!(billing_member_sees_every_workspace, another_tenants_ids_answer_byte_for_byte_like_missing_ones,);
