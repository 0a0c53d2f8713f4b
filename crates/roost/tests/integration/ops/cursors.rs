//! Every list validates its cursor: one the server did not issue is 422 `invalid_request`, and a
//! cursor the server did issue still pages.

use roost_test_kit::TestServer;
use serde_json::json;

async fn every_list_refuses_a_foreign_cursor(s: TestServer) {
    let (alice, a) = s.signup("alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let _ = a;
    let lists = [
        "/v1/orgs".to_string(),
        format!("/v1/orgs/{org}/members"),
        format!("/v1/orgs/{org}/workspaces"),
        format!("/v1/orgs/{org}/invitations"),
        format!("/v1/orgs/{org}/audit"),
        format!("/v1/orgs/{org}/transactions"),
        format!("/v1/workspaces/{ws}/members"),
        format!("/v1/workspaces/{ws}/keys"),
        format!("/v1/workspaces/{ws}/resources"),
        format!("/v1/workspaces/{ws}/transactions"),
    ];
    // Ids of another kind, made-up text, and a well-formed id of the wrong list.
    for list in &lists {
        for cursor in ["zzz", "1 OR 1=1", "org_notatypeid", "chg_01jd0000000000000000000000", "-5"] {
            let r = alice.get(&format!("{list}?cursor={}", cursor.replace(' ', "%20"))).await.unwrap();
            assert_eq!(r.status, 422, "{list}?cursor={cursor}: {:?}", r.body);
            assert_eq!(r.code(), Some("invalid_request"), "{list}: {:?}", r.body);
            assert_eq!(r.body["errors"][0]["field"], "cursor", "{list}: {:?}", r.body);
        }
        let r = alice.get(&format!("{list}?limit=1")).await.unwrap();
        assert_eq!(r.status, 200, "{list}: {:?}", r.body);
        if let Some(next) = r.body["next_cursor"].as_str() {
            let r2 = alice.get(&format!("{list}?limit=1&cursor={next}")).await.unwrap();
            assert_eq!(r2.status, 200, "{list} with its own cursor {next}: {:?}", r2.body);
            assert_ne!(r2.body["items"], r.body["items"], "{list}: the second page is another page");
        }
    }
    // Lists that are always one page issue no cursor at all.
    for list in [format!("/v1/orgs/{org}/wallets"), "/v1/wallets".to_string()] {
        let r = alice.get(&format!("{list}?cursor=wal_01jd0000000000000000000000")).await.unwrap();
        assert_eq!((r.status, r.code()), (422, Some("invalid_request")), "{list}: {:?}", r.body);
        let r = alice.get(&list).await.unwrap();
        assert_eq!(r.status, 200, "{list}: {:?}", r.body);
        assert_eq!(r.body["next_cursor"], serde_json::Value::Null);
    }
    // The org list pages with its own cursor.
    let _ = alice.post("/v1/orgs", &json!({"name": "Second"})).await.unwrap();
    let r = alice.get("/v1/orgs?limit=1").await.unwrap();
    assert!(r.body["next_cursor"].is_string(), "{:?}", r.body);
}

both_backends!(every_list_refuses_a_foreign_cursor);
