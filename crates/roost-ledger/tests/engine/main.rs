//! The engine's tests, in one binary: the invariants as properties against a reference model,
//! pipelined commits under failure, and idempotency keys in their two places.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod failures;
mod idem_keys;
mod properties;
mod signals;

use roost_domain::IdKind;

/// Alice's signup with her personal org (on `free`) and workspace, made straight in the store at
/// `now`.
fn personal_signup(now: i64) -> roost_store::NewSignup {
    let user = IdKind::User.generate();
    roost_store::NewSignup {
        user_id: user.clone(),
        email: "alice@example.com".into(),
        name: "alice".into(),
        password_hash: "argon2-of-alice".into(),
        org_id: IdKind::Org.generate(),
        org_name: "alice's org".into(),
        plan: "free".into(),
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "Personal".into(),
        token_hash: format!("session-{user}"),
        session_expires_at: now + 86_400_000,
    }
}
