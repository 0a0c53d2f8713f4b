//! Scenarios: accounts.

use crate::harness::TestServer;

async fn signup_then_me(s: TestServer) {
    let (alice, body) = s.signup("Alice").await;
    let me = alice.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["id"], body["user"]["id"]);
    assert_eq!(me.body["active_workspace_id"], body["personal"]["workspace_id"]);
    assert_eq!(me.body["memberships"][0]["org_kind"], "personal");
}

both_backends!(signup_then_me);
