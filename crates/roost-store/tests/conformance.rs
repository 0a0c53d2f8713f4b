#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Over 400 lines on purpose: the conformance suite is one table (`suite!`) of every store
//! scenario, so each runs on both backends and a scenario cannot be added for one store and
//! forgotten for the other; the scenarios share one set of fixtures and read as one spec.
//!
//! The storage conformance suite: one set of scenarios, run against SQLite always and against
//! PostgreSQL whenever `ROOST_TEST_PG` is set (a server URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`; each test makes and drops its own database).
//!
//! Every scenario is a plain `async fn scenario_x(s: &Store)`; `suite!` turns it into
//! `x_sqlite` and `x_postgres`. Time is a parameter: every change gets an explicit `now`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use roost_domain::{Catalog, IdKind};
use roost_store::{
    Accepted, Actor, ApiKey, AuditEvent, AuditFilter, Ctx, Limit, NewInvitation, NewOrg, NewSignup, Resource, Rule,
    Store, StoreError, redact,
};
use roost_test_kit::{Backend, FreshDatabase, pg_url};
use serde_json::{Value, json};

// A crate root finds modules beside it; this one lives in its own folder (not a test target of its own).
#[path = "conformance/identity.rs"]
mod identity;
use identity::{scenario_domains, scenario_mail_outbox, scenario_sessions, scenario_two_factor, scenario_user_tokens};

const SKIPPED: &str = "SKIPPED: ROOST_TEST_PG is not set, the PostgreSQL suite did not run";

/// A fixed start of time; every scenario counts from here.
const T0: i64 = 1_750_000_000_000;
const DAY: i64 = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Backends

/// A fresh database on `backend` (from the test kit: removed when the guard drops, also when the
/// scenario panics) and a store on it with every migration applied; `None` for PostgreSQL when
/// `ROOST_TEST_PG` is not set.
async fn fresh_store(backend: Backend) -> Option<(FreshDatabase, Store)> {
    // Migrated by the owner; the scenarios run as the application (on PostgreSQL a role that
    // row-level security binds).
    let db = FreshDatabase::create_empty(backend).await?;
    let owner = Store::connect(db.admin_url()).await.unwrap_or_else(|e| panic!("connect {}: {e}", redact(db.url())));
    let applied = owner.migrate().await.expect("migrate");
    owner.close().await;
    db.migrate().await;
    let store = Store::connect(db.url()).await.unwrap_or_else(|e| panic!("connect {}: {e}", redact(db.url())));
    let all: Vec<i64> = match backend {
        Backend::Sqlite => roost_store::Dialect::migrations(&roost_store::Sqlite).iter().map(|m| m.version).collect(),
        Backend::Postgres => {
            roost_store::Dialect::migrations(&roost_store::Postgres).iter().map(|m| m.version).collect()
        }
    };
    assert!(all.len() >= 4 && all[..3] == [1, 2, 3], "{all:?}");
    assert_eq!(applied, all, "a fresh database applies every migration");
    assert!(store.migrate().await.expect("migrate again").is_empty(), "migrations apply once");
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(store.backend(), name);
    Some((db, store))
}

/// A transaction on the store's pool within `org`'s row-level security scope (PostgreSQL), for
/// scenarios that look at the tables directly.
async fn in_scope(s: &Store, org: &str) -> sqlx::Transaction<'static, sqlx::Any> {
    let mut tx = s.pool().begin().await.unwrap();
    if s.backend() == "postgres" {
        sqlx::query("SELECT set_config('roost.org_id', $1, true)").bind(org).execute(&mut *tx).await.unwrap();
    }
    tx
}

/// Runs one scenario on a fresh database of `backend`, closes the store and removes the database
/// whatever happened, then re-raises the scenario's panic if it had one.
macro_rules! run_on {
    ($scenario:ident, $backend:expr) => {{
        let Some((db, store)) = fresh_store($backend).await else {
            eprintln!("{SKIPPED}");
            return;
        };
        let s = store.clone();
        let outcome = tokio::spawn(async move { $scenario(&s).await }).await;
        store.close().await;
        drop(db);
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }};
}

/// Two tests per scenario: one on SQLite, one on PostgreSQL (skipped without `ROOST_TEST_PG`).
macro_rules! suite {
    ($($scenario:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            run_on!($scenario, Backend::Sqlite);
        }

        roost_test_kit::pg_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            run_on!($scenario, Backend::Postgres);
        }
        }
    )*};
}

suite! {
    scenario_signup => signup_sqlite, signup_postgres;
    scenario_orgs => orgs_sqlite, orgs_postgres;
    scenario_workspaces => workspaces_sqlite, workspaces_postgres;
    scenario_invitations => invitations_sqlite, invitations_postgres;
    scenario_keys => keys_sqlite, keys_postgres;
    scenario_resources => resources_sqlite, resources_postgres;
    scenario_change_plan => change_plan_sqlite, change_plan_postgres;
    scenario_audit => audit_sqlite, audit_postgres;
    scenario_concurrency => concurrency_sqlite, concurrency_postgres;
    scenario_guards => guards_sqlite, guards_postgres;
    scenario_mail_outbox => mail_outbox_sqlite, mail_outbox_postgres;
    scenario_user_tokens => user_tokens_sqlite, user_tokens_postgres;
    scenario_sessions => sessions_sqlite, sessions_postgres;
    scenario_two_factor => two_factor_sqlite, two_factor_postgres;
    scenario_domains => domains_sqlite, domains_postgres;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_keeps_sessions_sqlite() {
    identity::upgrade_keeps_sessions(Backend::Sqlite).await;
}

roost_test_kit::pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_keeps_sessions_postgres() {
    identity::upgrade_keeps_sessions(Backend::Postgres).await;
}
}

/// Says loudly whether the PostgreSQL half of the suite ran, so a green run without it is visible.
#[test]
fn postgres_suite_skipped_notice() {
    match pg_url() {
        Some(url) => println!("PostgreSQL suite: running against {}", redact(&url)),
        None => {
            println!("{SKIPPED}");
            eprintln!("{SKIPPED}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn ctx(user: &str, now: i64) -> Ctx {
    Ctx { actor: Actor::user(user), ip: None, now }
}

/// A signed-up user and what signup made for them.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    email: String,
    /// Their personal org and its one workspace.
    org: String,
    ws: String,
    token: String,
}

fn new_signup(name: &str, now: i64) -> NewSignup {
    let user_id = IdKind::User.generate();
    NewSignup {
        email: format!("{name}@example.com"),
        name: name.into(),
        password_hash: format!("argon2-of-{name}"),
        org_id: IdKind::Org.generate(),
        org_name: format!("{name}'s org"),
        plan: "free".into(),
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "Personal".into(),
        token_hash: format!("session-{user_id}"),
        session_expires_at: now + DAY,
        user_id,
    }
}

async fn signup(s: &Store, name: &str, now: i64) -> Person {
    let n = new_signup(name, now);
    s.signup(&n, &ctx(&n.user_id, now)).await.unwrap_or_else(|e| panic!("signup {name}: {e:?}"));
    Person { id: n.user_id, email: n.email, org: n.org_id, ws: n.workspace_id, token: n.token_hash }
}

/// An org and its primary workspace.
#[derive(Debug, Clone)]
struct OrgIds {
    id: String,
    primary: String,
}

async fn new_org(s: &Store, owner: &str, plan: &str, now: i64) -> OrgIds {
    let o = NewOrg {
        id: IdKind::Org.generate(),
        name: format!("{plan} org"),
        plan: plan.into(),
        owner_id: owner.into(),
        trial_ends_at: None,
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "Main".into(),
    };
    s.create_org(&o, &ctx(owner, now)).await.expect("create org");
    OrgIds { id: o.id, primary: o.workspace_id }
}

async fn new_workspace(s: &Store, org: &str, by: &str, now: i64) -> String {
    let id = IdKind::Workspace.generate();
    s.create_workspace(org, &id, "Extra", &unlimited(), &ctx(by, now)).await.expect("create workspace");
    id
}

fn invitation(org: &str, email: &str, role: &str, workspaces: Value, expires_at: i64) -> NewInvitation {
    let id = IdKind::Invitation.generate();
    NewInvitation {
        org_id: org.into(),
        email: email.into(),
        role: role.into(),
        workspaces: workspaces.to_string(),
        token_hash: format!("invitation-{id}"),
        expires_at,
        id,
    }
}

/// Invites `who` (granting `workspaces`) and has them accept: they become an org member.
async fn join(
    s: &Store,
    cat: &Catalog,
    org: &str,
    inviter: &str,
    who: &Person,
    workspaces: Value,
    now: i64,
) -> Accepted {
    let inv = invitation(org, &who.email, "member", workspaces, now + 7 * DAY);
    s.create_invitation(&inv, cat, &ctx(inviter, now)).await.expect("create invitation");
    s.accept_invitation(&inv.token_hash, &who.id, &who.email, cat, &ctx(&who.id, now)).await.expect("accept invitation")
}

fn new_key(org: &str, ws: &str, by: &str, now: i64) -> ApiKey {
    ApiKey {
        id: IdKind::Key.generate(),
        org_id: org.into(),
        workspace_id: ws.into(),
        name: "ci".into(),
        prefix: "rsk_ab12".into(),
        created_by: by.into(),
        created_at: now,
        expires_at: None,
        spend_limit: None,
        revoked_at: None,
        rpm: None,
    }
}

/// Creates a key whose secret hash is `hash`.
async fn add_key(s: &Store, org: &str, ws: &str, by: &str, hash: &str, now: i64) -> ApiKey {
    let k = new_key(org, ws, by, now);
    s.create_key(&k, hash, &ctx(by, now)).await.expect("create key");
    k
}

fn new_resource(org: &str, ws: &str, kind: &str, by: &str, now: i64) -> Resource {
    Resource {
        id: IdKind::Resource.generate(),
        org_id: org.into(),
        workspace_id: ws.into(),
        kind: kind.into(),
        name: format!("my-{kind}"),
        created_by: by.into(),
        created_at: now,
    }
}

#[track_caller]
/// The built-in catalog with every plan given these limits, so a test decides them whatever plan
/// its org is on.
fn catalog_with(max_ws: Option<u32>, quotas: &[(&str, u32)]) -> Catalog {
    limits_on(&Catalog::builtin(), max_ws, quotas)
}

/// `base` with every plan given these limits.
fn limits_on(base: &Catalog, max_ws: Option<u32>, quotas: &[(&str, u32)]) -> Catalog {
    let plans = base
        .all()
        .iter()
        .cloned()
        .map(|mut p| {
            p.max_workspaces = max_ws;
            p.resource_quotas = quotas.iter().map(|(k, n)| ((*k).to_string(), *n)).collect();
            p
        })
        .collect();
    Catalog::new(plans, "free").expect("catalog")
}

fn unlimited() -> Catalog {
    catalog_with(None, &[])
}

fn max_workspaces(n: u32) -> Catalog {
    catalog_with(Some(n), &[])
}

fn quota(kind: &str, n: u32) -> Catalog {
    catalog_with(None, &[(kind, n)])
}

fn assert_rule<T: Debug>(got: Result<T, StoreError>, rule: Rule) {
    match got {
        Err(StoreError::Rule(r)) if r == rule => {}
        other => panic!("expected Rule::{rule:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_limit<T: Debug>(got: Result<T, StoreError>, limit: Limit) {
    match got {
        Err(StoreError::Limit(l)) if l == limit => {}
        other => panic!("expected Limit::{limit:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: Debug>(got: Result<T, StoreError>) {
    assert!(matches!(got, Err(StoreError::NotFound)), "expected NotFound, got {got:?}");
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn actions(events: &[AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.action.as_str()).collect()
}

fn filter(workspace: Option<&str>, actor: Option<&str>, action: Option<&str>) -> AuditFilter {
    AuditFilter {
        workspace_id: workspace.map(Into::into),
        actor_id: actor.map(Into::into),
        action: action.map(Into::into),
    }
}

/// Every audit event of an org matching `f`, newest first, in one page.
async fn audit(s: &Store, org: &str, f: &AuditFilter) -> Vec<AuditEvent> {
    let page = s.list_audit(org, f, 500, None).await.expect("list audit");
    assert!(page.next_cursor.is_none());
    page.items
}

async fn member_ids(s: &Store, org: &str) -> Vec<String> {
    s.list_members(org, 500, None).await.expect("list members").items.into_iter().map(|m| m.user_id).collect()
}

async fn role_in(s: &Store, org: &str, user: &str) -> Option<String> {
    s.org_member(org, user).await.expect("org member").map(|m| m.role)
}

// ---------------------------------------------------------------------------------------------
// 1. Signup and sessions

async fn scenario_signup(s: &Store) {
    let alice = signup(s, "alice", T0).await;

    let user = s.user_by_email("alice@example.com").await.unwrap().expect("alice by email");
    assert_eq!(user.id, alice.id);
    assert_eq!(user.name, "alice");
    assert_eq!(user.password_hash, "argon2-of-alice");
    assert_eq!(user.active_workspace_id.as_deref(), Some(alice.ws.as_str()), "the personal workspace is active");
    assert_eq!(user.created_at, T0);
    assert_eq!(s.user_by_id(&alice.id).await.unwrap().map(|u| u.email), Some(alice.email.clone()));
    assert!(s.user_by_email("nobody@example.com").await.unwrap().is_none());

    // The personal org: kind personal, plan free, alice its owner.
    let ms = s.memberships(&alice.id).await.unwrap();
    assert_eq!(ms.len(), 1);
    let (org, role) = (&ms[0].org, &ms[0].role);
    assert_eq!(org.id, alice.org);
    assert_eq!(org.kind, "personal");
    assert!(org.is_personal());
    assert_eq!(org.plan, "free");
    assert_eq!(org.owner_id, alice.id);
    assert_eq!(org.name, "alice's org");
    assert!(!org.trial_used);
    assert_eq!(org.trial_ends_at, None);
    assert_eq!((org.created_at, org.plan_started_at), (T0, T0));
    assert_eq!(role, "owner");
    assert_eq!(s.org_by_id(&alice.org).await.unwrap().map(|o| o.kind), Some("personal".into()));
    assert_eq!(member_ids(s, &alice.org).await, [alice.id.as_str()]);

    // Its one workspace, primary and personal, with alice in it.
    let visible = s.visible_workspaces(&alice.id).await.unwrap();
    assert_eq!(visible.len(), 1);
    let (ws, ws_role) = &visible[0];
    assert_eq!(ws.id, alice.ws);
    assert_eq!(ws.org_id, alice.org);
    assert_eq!(ws.name, "Personal");
    assert!(ws.primary && ws.personal, "{ws:?}");
    assert_eq!(ws.created_at, T0);
    assert_eq!(ws_role.as_deref(), Some("admin"));
    let access = s.workspace_access(&alice.ws, &alice.id).await.unwrap().expect("access to own workspace");
    assert_eq!((access.org.id.as_str(), access.org_role.as_str()), (alice.org.as_str(), "owner"));
    let usage = s.org_usage(&alice.org).await.unwrap();
    assert_eq!((usage.members, usage.workspaces), (1, 1));

    // The session works until it expires, not at or after.
    assert_eq!(s.session_user(&alice.token, T0).await.unwrap().map(|u| u.id), Some(alice.id.clone()));
    assert!(s.session_user(&alice.token, T0 + DAY - 1).await.unwrap().is_some());
    assert!(s.session_user(&alice.token, T0 + DAY).await.unwrap().is_none(), "expired at expires_at");
    assert!(s.session_user(&alice.token, T0 + 2 * DAY).await.unwrap().is_none());
    assert!(s.session_user("no-such-token", T0).await.unwrap().is_none());

    // Logging out ends exactly that session.
    s.create_session("second-session", &alice.id, T0 + 1, T0 + DAY).await.unwrap();
    s.delete_session(&alice.token).await.unwrap();
    assert!(s.session_user(&alice.token, T0 + 2).await.unwrap().is_none(), "deleted session");
    assert_eq!(s.session_user("second-session", T0 + 2).await.unwrap().map(|u| u.id), Some(alice.id.clone()));

    // Signup is audited in the personal org.
    let log = audit(s, &alice.org, &AuditFilter::default()).await;
    assert_eq!(actions(&log), ["org.created"]);
    let e = &log[0];
    assert_eq!((e.actor_type.as_str(), e.actor_id.as_str(), e.at), ("user", alice.id.as_str(), T0));
    assert_eq!(e.workspace_id.as_deref(), Some(alice.ws.as_str()));
    assert_eq!((e.target_type.as_deref(), e.target_id.as_deref()), (Some("org"), Some(alice.org.as_str())));
    let detail: Value = serde_json::from_str(&e.detail).unwrap();
    assert_eq!(detail["kind"], "personal");

    // The same (lowercased) address again: EmailTaken, and nothing of the second signup exists.
    let mut dup = new_signup("alice", T0 + 5);
    dup.token_hash = "dup-session".into();
    assert_eq!(dup.email, alice.email);
    assert_rule(s.signup(&dup, &ctx(&dup.user_id, T0 + 5)).await, Rule::EmailTaken);
    assert!(s.user_by_id(&dup.user_id).await.unwrap().is_none(), "no half-written user");
    assert!(s.org_by_id(&dup.org_id).await.unwrap().is_none(), "no half-written org");
    assert!(s.workspace_by_id(&dup.workspace_id).await.unwrap().is_none(), "no half-written workspace");
    assert!(s.session_user("dup-session", T0 + 6).await.unwrap().is_none(), "no half-written session");
    assert!(s.memberships(&dup.user_id).await.unwrap().is_empty());
    assert!(audit(s, &dup.org_id, &AuditFilter::default()).await.is_empty(), "no audit of a failed signup");
    assert_eq!(s.user_by_email(&alice.email).await.unwrap().map(|u| u.id), Some(alice.id.clone()));

    // Another address still signs up after the failure.
    let bob = signup(s, "bob", T0 + 10).await;
    assert_eq!(s.session_user(&bob.token, T0 + 11).await.unwrap().map(|u| u.id), Some(bob.id.clone()));
    assert!(s.session_user(&alice.token, T0 + 11).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// 2. Orgs and members

async fn scenario_orgs(s: &Store) {
    let cat = Catalog::builtin();
    let alice = signup(s, "alice", T0).await;
    let bob = signup(s, "bob", T0).await;
    let carol = signup(s, "carol", T0).await;
    let dave = signup(s, "dave", T0).await;

    let org = new_org(s, &alice.id, "team", T0 + 1).await;
    let o = s.org_by_id(&org.id).await.unwrap().expect("org");
    assert_eq!((o.kind.as_str(), o.plan.as_str(), o.owner_id.as_str()), ("org", "team", alice.id.as_str()));
    assert!(!o.is_personal());
    assert!(!o.trial_used);
    assert_eq!((o.trial_ends_at, o.created_at, o.plan_started_at), (None, T0 + 1, T0 + 1));
    let (primary, _) = s.workspace_by_id(&org.primary).await.unwrap().expect("primary workspace");
    assert!(primary.primary && !primary.personal, "{primary:?}");

    // An org on its trial.
    let trial = NewOrg {
        id: IdKind::Org.generate(),
        name: "Trial".into(),
        plan: "pro".into(),
        owner_id: alice.id.clone(),
        trial_ends_at: Some(T0 + 14 * DAY),
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "Main".into(),
    };
    s.create_org(&trial, &ctx(&alice.id, T0 + 2)).await.unwrap();
    let t = s.org_by_id(&trial.id).await.unwrap().expect("trial org");
    assert!(t.trial_used);
    assert_eq!(t.trial_ends_at, Some(T0 + 14 * DAY));

    s.rename_org(&org.id, "Renamed", &ctx(&alice.id, T0 + 3)).await.unwrap();
    assert_eq!(s.org_by_id(&org.id).await.unwrap().map(|o| o.name), Some("Renamed".into()));

    // Memberships: oldest first, owner everywhere.
    let ms = s.memberships(&alice.id).await.unwrap();
    let ids: Vec<_> = ms.iter().map(|m| m.org.id.clone()).collect();
    assert_eq!(ids, [alice.org.clone(), org.id.clone(), trial.id.clone()]);
    assert!(ms.iter().all(|m| m.role == "owner"));

    // list_orgs pages by id.
    let expected = sorted(ids.clone());
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0.. {
        let page = s.list_orgs(&alice.id, 1, cursor.as_deref()).await.unwrap();
        assert_eq!(page.items.len(), 1, "round {round}");
        seen.extend(page.items.iter().map(|m| m.org.id.clone()));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(round < 5, "pagination does not end");
    }
    assert_eq!(seen, expected);
    let p1 = s.list_orgs(&alice.id, 2, None).await.unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = s.list_orgs(&alice.id, 2, p1.next_cursor.as_deref()).await.unwrap();
    assert_eq!((p2.items.len(), p2.next_cursor), (1, None));
    let bobs = s.list_orgs(&bob.id, 50, None).await.unwrap();
    assert_eq!(bobs.items.iter().map(|m| m.org.id.clone()).collect::<Vec<_>>(), [bob.org.as_str()]);

    // org_access: members only.
    let a = s.org_access(&org.id, &alice.id).await.unwrap().expect("owner has access");
    assert_eq!((a.org.id.as_str(), a.role.as_str(), a.org.name.as_str()), (org.id.as_str(), "owner", "Renamed"));
    assert!(s.org_access(&org.id, &bob.id).await.unwrap().is_none(), "a non-member sees nothing");
    assert!(s.org_access(&alice.org, &bob.id).await.unwrap().is_none(), "nor another user's personal org");
    assert!(s.org_access(&IdKind::Org.generate(), &alice.id).await.unwrap().is_none());

    join(s, &cat, &org.id, &alice.id, &bob, json!([]), T0 + 10).await;
    join(s, &cat, &org.id, &alice.id, &carol, json!([]), T0 + 11).await;
    assert_eq!(s.org_access(&org.id, &bob.id).await.unwrap().map(|m| m.role), Some("member".into()));

    // Visible workspaces: the owner sees every workspace of the org, even one they are not in;
    // a plain member only those they were added to.
    let ws2 = new_workspace(s, &org.id, &alice.id, T0 + 12).await;
    let (w2, _) = s.workspace_by_id(&ws2).await.unwrap().expect("ws2");
    s.delete_ws_member(&w2, &alice.id, &ctx(&alice.id, T0 + 13)).await.unwrap();
    assert_not_found(s.delete_ws_member(&w2, &alice.id, &ctx(&alice.id, T0 + 13)).await);
    let vis: BTreeMap<String, Option<String>> =
        s.visible_workspaces(&alice.id).await.unwrap().into_iter().map(|(w, r)| (w.id, r)).collect();
    assert_eq!(vis.get(&ws2), Some(&None), "owner sees ws2 without being in it: {vis:?}");
    assert_eq!(vis.get(&org.primary), Some(&Some("admin".into())));
    assert_eq!(vis.get(&alice.ws), Some(&Some("admin".into())));
    assert_eq!(vis.get(&trial.workspace_id), Some(&Some("admin".into())));
    assert_eq!(vis.len(), 4);
    let bob_vis = |v: Vec<(roost_store::Workspace, Option<String>)>| -> Vec<(String, Option<String>)> {
        let mut v: Vec<_> = v.into_iter().map(|(w, r)| (w.id, r)).collect();
        v.sort();
        v
    };
    assert_eq!(bob_vis(s.visible_workspaces(&bob.id).await.unwrap()), [(bob.ws.clone(), Some("admin".into()))]);
    s.put_ws_member(&w2, &bob.id, "viewer", &ctx(&alice.id, T0 + 14)).await.unwrap();
    let mut want = vec![(bob.ws.clone(), Some("admin".to_string())), (ws2.clone(), Some("viewer".to_string()))];
    want.sort();
    assert_eq!(bob_vis(s.visible_workspaces(&bob.id).await.unwrap()), want);

    // list_members pages by user id.
    let all = sorted(vec![alice.id.clone(), bob.id.clone(), carol.id.clone()]);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = s.list_members(&org.id, 1, cursor.as_deref()).await.unwrap();
        assert_eq!(page.items.len(), 1);
        seen.extend(page.items.into_iter().map(|m| m.user_id));
        cursor = page.next_cursor;
        if cursor.is_none() || seen.len() > 3 {
            break;
        }
    }
    assert_eq!(seen, all);
    let p1 = s.list_members(&org.id, 2, None).await.unwrap();
    assert_eq!(p1.items.len(), 2);
    assert_eq!(p1.next_cursor.as_deref(), Some(all[1].as_str()), "the cursor is the last id of the page");
    let p2 = s.list_members(&org.id, 2, p1.next_cursor.as_deref()).await.unwrap();
    assert_eq!(p2.items.iter().map(|m| m.user_id.clone()).collect::<Vec<_>>(), [all[2].clone()]);
    assert_eq!(p2.next_cursor, None);
    let exact = s.list_members(&org.id, 3, None).await.unwrap();
    assert_eq!((exact.items.len(), exact.next_cursor), (3, None), "a full last page has no next cursor");
    let m = exact.items.iter().find(|m| m.user_id == bob.id).expect("bob listed");
    assert_eq!((m.email.as_str(), m.name.as_str(), m.role.as_str()), ("bob@example.com", "bob", "member"));

    // Roles; the owner can be neither demoted nor removed.
    s.set_member_role(&org.id, &bob.id, "admin", &ctx(&alice.id, T0 + 20)).await.unwrap();
    assert_eq!(role_in(s, &org.id, &bob.id).await.as_deref(), Some("admin"));
    assert_rule(
        s.set_member_role(&org.id, &alice.id, "member", &ctx(&bob.id, T0 + 21)).await,
        Rule::OwnerCannotBeRemoved,
    );
    assert_rule(s.remove_member(&org.id, &alice.id, &ctx(&bob.id, T0 + 21)).await, Rule::OwnerCannotBeRemoved);
    assert_eq!(role_in(s, &org.id, &alice.id).await.as_deref(), Some("owner"));
    assert_not_found(s.set_member_role(&org.id, &dave.id, "admin", &ctx(&alice.id, T0 + 21)).await);
    assert!(s.org_access(&org.id, &dave.id).await.unwrap().is_none());

    // Transfer of ownership: only to a member; the old owner becomes admin.
    assert_rule(s.transfer_ownership(&org.id, &dave.id, &ctx(&alice.id, T0 + 22)).await, Rule::NotOrgMember);
    assert_eq!(s.org_by_id(&org.id).await.unwrap().map(|o| o.owner_id), Some(alice.id.clone()));
    s.transfer_ownership(&org.id, &bob.id, &ctx(&alice.id, T0 + 23)).await.unwrap();
    assert_eq!(s.org_by_id(&org.id).await.unwrap().map(|o| o.owner_id), Some(bob.id.clone()));
    assert_eq!(role_in(s, &org.id, &alice.id).await.as_deref(), Some("admin"));
    assert_eq!(role_in(s, &org.id, &bob.id).await.as_deref(), Some("owner"));
    let transferred = audit(s, &org.id, &filter(None, None, Some("ownership.transferred"))).await;
    assert_eq!(transferred.len(), 1);
    let detail: Value = serde_json::from_str(&transferred[0].detail).unwrap();
    assert_eq!((detail["from"].as_str(), detail["to"].as_str()), (Some(alice.id.as_str()), Some(bob.id.as_str())));
    // Now the new owner is the protected one.
    assert_rule(s.remove_member(&org.id, &bob.id, &ctx(&alice.id, T0 + 24)).await, Rule::OwnerCannotBeRemoved);
    s.set_member_role(&org.id, &alice.id, "member", &ctx(&bob.id, T0 + 24)).await.unwrap();
    assert_eq!(role_in(s, &org.id, &alice.id).await.as_deref(), Some("member"));
    // Transferring to the current owner changes nothing.
    s.transfer_ownership(&org.id, &bob.id, &ctx(&bob.id, T0 + 25)).await.unwrap();
    assert_eq!(role_in(s, &org.id, &bob.id).await.as_deref(), Some("owner"));

    // A member leaves.
    let revoked = s.remove_member(&org.id, &carol.id, &ctx(&carol.id, T0 + 26)).await.unwrap();
    assert!(revoked.is_empty());
    assert!(s.org_access(&org.id, &carol.id).await.unwrap().is_none());
    assert_eq!(
        s.memberships(&carol.id).await.unwrap().into_iter().map(|m| m.org.id).collect::<Vec<_>>(),
        [carol.org.as_str()]
    );
    assert_eq!(member_ids(s, &org.id).await, sorted(vec![alice.id.clone(), bob.id.clone()]));
    assert_not_found(s.remove_member(&org.id, &carol.id, &ctx(&bob.id, T0 + 27)).await);
    let left = audit(s, &org.id, &filter(None, Some(&carol.id), Some("member.removed"))).await;
    assert_eq!(left.len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&left[0].detail).unwrap()["left"], true);
}

// ---------------------------------------------------------------------------------------------
// 3. Workspaces

async fn scenario_workspaces(s: &Store) {
    let cat = Catalog::builtin();
    let alice = signup(s, "alice", T0).await;
    let bob = signup(s, "bob", T0).await;
    let carol = signup(s, "carol", T0).await;
    let org = new_org(s, &alice.id, "team", T0).await;
    let c = ctx(&alice.id, T0 + 1);

    // The workspace cap is checked in the transaction: 1 + 1 fits Some(2), the third does not.
    let ws2 = IdKind::Workspace.generate();
    s.create_workspace(&org.id, &ws2, "two", &max_workspaces(2), &c).await.unwrap();
    let ws3 = IdKind::Workspace.generate();
    assert_limit(s.create_workspace(&org.id, &ws3, "three", &max_workspaces(2), &c).await, Limit::MaxWorkspaces);
    assert!(s.workspace_by_id(&ws3).await.unwrap().is_none());
    assert_eq!(s.org_usage(&org.id).await.unwrap().workspaces, 2);

    let (w2, w2_org) = s.workspace_by_id(&ws2).await.unwrap().expect("ws2");
    assert_eq!((w2.name.as_str(), w2.org_id.as_str(), w2.created_at), ("two", org.id.as_str(), T0 + 1));
    assert!(!w2.primary && !w2.personal);
    assert_eq!(w2_org.id, org.id);

    // workspace_access: the creator is its admin; outsiders get nothing.
    let a = s.workspace_access(&ws2, &alice.id).await.unwrap().expect("alice in ws2");
    assert_eq!((a.workspace.id.as_str(), a.org.id.as_str()), (ws2.as_str(), org.id.as_str()));
    assert_eq!((a.org_role.as_str(), a.ws_role.as_deref()), ("owner", Some("admin")));
    assert!(s.workspace_access(&ws2, &bob.id).await.unwrap().is_none(), "non-member");
    assert!(s.workspace_access(&alice.ws, &bob.id).await.unwrap().is_none(), "another user's personal workspace");
    assert!(s.workspace_access(&IdKind::Workspace.generate(), &alice.id).await.unwrap().is_none());

    // Bob joins with a grant to ws2 only.
    let acc = join(s, &cat, &org.id, &alice.id, &bob, json!([{"workspace_id": ws2, "role": "member"}]), T0 + 2).await;
    assert_eq!(acc.workspace_ids, [ws2.as_str()]);
    let b = s.workspace_access(&ws2, &bob.id).await.unwrap().expect("bob in ws2");
    assert_eq!((b.org_role.as_str(), b.ws_role.as_deref()), ("member", Some("member")));
    let b = s.workspace_access(&org.primary, &bob.id).await.unwrap().expect("org members reach every workspace row");
    assert_eq!(b.ws_role, None, "but have no role where they were not added");

    // list_workspaces, all or one member's.
    let all = s.list_workspaces(&org.id, None, 50, None).await.unwrap();
    assert_eq!(
        all.items.iter().map(|w| w.id.clone()).collect::<Vec<_>>(),
        sorted(vec![org.primary.clone(), ws2.clone()])
    );
    assert_eq!(all.next_cursor, None);
    let bobs = s.list_workspaces(&org.id, Some(&bob.id), 50, None).await.unwrap();
    assert_eq!(bobs.items.iter().map(|w| w.id.clone()).collect::<Vec<_>>(), [ws2.as_str()]);
    assert_eq!(s.list_workspaces(&org.id, Some(&carol.id), 50, None).await.unwrap().items.len(), 0);
    let p1 = s.list_workspaces(&org.id, None, 1, None).await.unwrap();
    assert_eq!(p1.items.len(), 1);
    let p2 = s.list_workspaces(&org.id, None, 1, p1.next_cursor.as_deref()).await.unwrap();
    assert_eq!(p2.next_cursor, None);
    assert_eq!(vec![p1.items[0].id.clone(), p2.items[0].id.clone()], sorted(vec![org.primary.clone(), ws2.clone()]));
    let members = s.list_ws_members(&ws2, 50, None).await.unwrap().items;
    let roles: BTreeMap<_, _> = members.into_iter().map(|m| (m.user_id, m.role)).collect();
    assert_eq!(
        roles,
        BTreeMap::from([(alice.id.clone(), "admin".to_string()), (bob.id.clone(), "member".to_string())])
    );

    // The primary and personal workspaces are protected.
    let (primary, _) = s.workspace_by_id(&org.primary).await.unwrap().expect("primary");
    assert_rule(s.delete_workspace(&primary, &c).await, Rule::WorkspaceProtected);
    assert!(s.workspace_by_id(&org.primary).await.unwrap().is_some());
    let (personal, _) = s.workspace_by_id(&alice.ws).await.unwrap().expect("personal");
    assert_rule(s.delete_workspace(&personal, &c).await, Rule::WorkspaceProtected);

    // Only org members can be put in a workspace; members can have their role changed.
    assert_rule(s.put_ws_member(&w2, &carol.id, "member", &c).await, Rule::NotOrgMember);
    assert!(s.workspace_access(&ws2, &carol.id).await.unwrap().is_none());
    assert_eq!(s.list_ws_members(&ws2, 50, None).await.unwrap().items.len(), 2);
    s.put_ws_member(&w2, &bob.id, "viewer", &c).await.unwrap();
    assert_eq!(s.workspace_access(&ws2, &bob.id).await.unwrap().and_then(|a| a.ws_role), Some("viewer".into()));
    // A viewer may not create keys (the store refuses, whatever the caller checked before).
    let refused = s.create_key(&new_key(&org.id, &ws2, &bob.id, T0 + 2), "secret-viewer", &ctx(&bob.id, T0 + 2)).await;
    assert_not_found(refused);
    s.put_ws_member(&w2, &bob.id, "member", &c).await.unwrap();

    // Deleting a workspace revokes its keys, removes its resources and moves whoever worked in it.
    let doomed_key = add_key(s, &org.id, &ws2, &bob.id, "secret-ws2", T0 + 3).await;
    let kept_key = add_key(s, &org.id, &org.primary, &alice.id, "secret-primary", T0 + 3).await;
    let res = new_resource(&org.id, &ws2, "box", &bob.id, T0 + 3);
    s.create_resource(&res, &unlimited(), &ctx(&bob.id, T0 + 3)).await.unwrap();
    s.set_active_workspace(&bob.id, &ws2).await.unwrap();
    assert_not_found(s.set_active_workspace(&IdKind::User.generate(), &ws2).await);
    assert!(s.key_by_secret("secret-ws2", T0 + 4).await.unwrap().is_some());

    let revoked = s.delete_workspace(&w2, &ctx(&alice.id, T0 + 5)).await.unwrap();
    assert_eq!(revoked, [doomed_key.id.as_str()]);
    assert!(s.key_by_secret("secret-ws2", T0 + 6).await.unwrap().is_none(), "its key no longer authenticates");
    assert_eq!(s.key_by_id(&doomed_key.id).await.unwrap().and_then(|k| k.revoked_at), Some(T0 + 5));
    assert!(s.key_by_secret("secret-primary", T0 + 6).await.unwrap().is_some(), "other workspaces' keys live on");
    assert_eq!(s.key_by_id(&kept_key.id).await.unwrap().and_then(|k| k.revoked_at), None);
    assert!(s.resource_by_id(&res.id).await.unwrap().is_none(), "its resources are gone");
    assert!(s.list_resources(&ws2, 50, None).await.unwrap().items.is_empty());
    assert!(s.workspace_by_id(&ws2).await.unwrap().is_none());
    assert!(s.workspace_access(&ws2, &alice.id).await.unwrap().is_none());
    assert!(s.list_ws_members(&ws2, 50, None).await.unwrap().items.is_empty());
    let left = s.list_workspaces(&org.id, None, 50, None).await.unwrap().items;
    assert_eq!(left.into_iter().map(|w| w.id).collect::<Vec<_>>(), [org.primary.as_str()]);
    let bob_personal = s.personal_workspace(&bob.id).await.unwrap();
    assert!(bob_personal.is_some());
    assert_eq!(
        s.user_by_id(&bob.id).await.unwrap().and_then(|u| u.active_workspace_id),
        bob_personal,
        "a user working in the deleted workspace lands in their personal workspace"
    );
    let deleted = audit(s, &org.id, &filter(Some(&ws2), None, Some("workspace.deleted"))).await;
    assert_eq!(deleted.len(), 1);
    let revoked_events = audit(s, &org.id, &filter(None, None, Some("key.revoked"))).await;
    assert_eq!(revoked_events.iter().filter_map(|e| e.target_id.clone()).collect::<Vec<_>>(), [doomed_key.id.as_str()]);
    // With ws2 gone the cap of 2 has room again.
    s.create_workspace(&org.id, &ws3, "three", &max_workspaces(2), &c).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 4. Invitations

async fn scenario_invitations(s: &Store) {
    let cat = Catalog::builtin();
    let alice = signup(s, "alice", T0).await;
    let bob = signup(s, "bob", T0).await;
    let carol = signup(s, "carol", T0).await;
    let dave = signup(s, "dave", T0).await;
    let erin = signup(s, "erin", T0).await;
    let week = 7 * DAY;

    // "pro" has one seat, and the owner holds it.
    let pro = new_org(s, &alice.id, "pro", T0).await;
    let inv = invitation(&pro.id, &bob.email, "member", json!([]), T0 + week);
    assert_limit(s.create_invitation(&inv, &cat, &ctx(&alice.id, T0 + 1)).await, Limit::MaxSeats);
    assert!(s.list_invitations(&pro.id, T0 + 1, 50, None).await.unwrap().items.is_empty());
    assert!(audit(s, &pro.id, &filter(None, None, Some("member.invited"))).await.is_empty());
    assert_rule(
        s.accept_invitation(&inv.token_hash, &bob.id, &bob.email, &cat, &ctx(&bob.id, T0 + 2)).await,
        Rule::InvitationInvalid,
    );
    // A personal org (plan free, one seat) takes no one either.
    let personal = invitation(&alice.org, &bob.email, "member", json!([]), T0 + week);
    assert_limit(s.create_invitation(&personal, &cat, &ctx(&alice.id, T0 + 1)).await, Limit::MaxSeats);

    // "team" has room.
    let team = new_org(s, &alice.id, "team", T0).await;
    let grants = json!([{"workspace_id": team.primary, "role": "viewer"}]);
    let inv = invitation(&team.id, &bob.email, "member", grants.clone(), T0 + week);
    s.create_invitation(&inv, &cat, &ctx(&alice.id, T0 + 1)).await.unwrap();
    let pending = s.list_invitations(&team.id, T0 + 1, 50, None).await.unwrap().items;
    assert_eq!(pending.len(), 1);
    let p = &pending[0];
    assert_eq!(
        (p.id.as_str(), p.org_id.as_str(), p.email.as_str()),
        (inv.id.as_str(), team.id.as_str(), bob.email.as_str())
    );
    assert_eq!((p.role.as_str(), p.status.as_str(), p.invited_by.as_str()), ("member", "pending", alice.id.as_str()));
    assert_eq!((p.created_at, p.expires_at), (T0 + 1, T0 + week));
    assert_eq!(serde_json::from_str::<Value>(&p.workspaces).unwrap(), grants);

    // Only the address it was sent to may accept.
    assert_rule(
        s.accept_invitation(&inv.token_hash, &carol.id, &carol.email, &cat, &ctx(&carol.id, T0 + 2)).await,
        Rule::InvitationEmailMismatch,
    );
    assert!(s.org_access(&team.id, &carol.id).await.unwrap().is_none());
    assert_eq!(s.list_invitations(&team.id, T0 + 2, 50, None).await.unwrap().items.len(), 1, "still pending");

    let acc = s.accept_invitation(&inv.token_hash, &bob.id, &bob.email, &cat, &ctx(&bob.id, T0 + 3)).await.unwrap();
    assert_eq!(acc.org_id, team.id);
    assert_eq!(acc.workspace_ids, [team.primary.as_str()]);
    assert_eq!(s.org_access(&team.id, &bob.id).await.unwrap().map(|m| m.role), Some("member".into()));
    assert_eq!(
        s.workspace_access(&team.primary, &bob.id).await.unwrap().and_then(|a| a.ws_role),
        Some("viewer".into())
    );
    assert!(s.list_invitations(&team.id, T0 + 3, 50, None).await.unwrap().items.is_empty(), "accepted is not pending");
    let joined = audit(s, &team.id, &filter(None, Some(&bob.id), Some("member.joined"))).await;
    assert_eq!(joined.len(), 1);

    // One use only.
    assert_rule(
        s.accept_invitation(&inv.token_hash, &bob.id, &bob.email, &cat, &ctx(&bob.id, T0 + 4)).await,
        Rule::InvitationInvalid,
    );
    assert_rule(
        s.accept_invitation("no-such-token", &bob.id, &bob.email, &cat, &ctx(&bob.id, T0 + 4)).await,
        Rule::InvitationInvalid,
    );

    // Expiry: valid before expires_at, not at it.
    let expiring = invitation(&team.id, &carol.email, "member", json!([]), T0 + 1_000);
    s.create_invitation(&expiring, &cat, &ctx(&alice.id, T0 + 4)).await.unwrap();
    let live = s.list_invitations(&team.id, T0 + 999, 50, None).await.unwrap().items;
    assert_eq!(live.into_iter().map(|i| i.id).collect::<Vec<_>>(), [expiring.id.as_str()]);
    assert!(s.list_invitations(&team.id, T0 + 1_000, 50, None).await.unwrap().items.is_empty());
    assert_rule(
        s.accept_invitation(&expiring.token_hash, &carol.id, &carol.email, &cat, &ctx(&carol.id, T0 + 1_000)).await,
        Rule::InvitationInvalid,
    );
    assert!(s.org_access(&team.id, &carol.id).await.unwrap().is_none());
    let just_in_time = invitation(&team.id, &carol.email, "admin", json!([]), T0 + 2_000);
    s.create_invitation(&just_in_time, &cat, &ctx(&alice.id, T0 + 1_500)).await.unwrap();
    s.accept_invitation(&just_in_time.token_hash, &carol.id, &carol.email, &cat, &ctx(&carol.id, T0 + 1_999))
        .await
        .unwrap();
    assert_eq!(s.org_access(&team.id, &carol.id).await.unwrap().map(|m| m.role), Some("admin".into()));

    // Revoked.
    let revoked = invitation(&team.id, &dave.email, "member", json!([]), T0 + week);
    s.create_invitation(&revoked, &cat, &ctx(&alice.id, T0 + 2_000)).await.unwrap();
    assert_not_found(s.revoke_invitation(&pro.id, &revoked.id, &ctx(&alice.id, T0 + 2_001)).await);
    s.revoke_invitation(&team.id, &revoked.id, &ctx(&alice.id, T0 + 2_001)).await.unwrap();
    assert_not_found(s.revoke_invitation(&team.id, &revoked.id, &ctx(&alice.id, T0 + 2_002)).await);
    assert_rule(
        s.accept_invitation(&revoked.token_hash, &dave.id, &dave.email, &cat, &ctx(&dave.id, T0 + 2_003)).await,
        Rule::InvitationInvalid,
    );
    assert!(s.org_access(&team.id, &dave.id).await.unwrap().is_none());
    assert!(s.list_invitations(&team.id, T0 + 2_003, 50, None).await.unwrap().items.is_empty());

    // Seats are re-checked at accept: "build" has 3 seats and the owner holds one. Three
    // invitations fit at creation (seats count members, not invitations); the third accept does not.
    let build = new_org(s, &alice.id, "build", T0 + 3_000).await;
    let mut invs = Vec::new();
    for p in [&bob, &carol, &dave] {
        let inv = invitation(&build.id, &p.email, "member", json!([]), T0 + week);
        s.create_invitation(&inv, &cat, &ctx(&alice.id, T0 + 3_001)).await.unwrap();
        invs.push(inv);
    }
    for (p, inv) in [(&bob, &invs[0]), (&carol, &invs[1])] {
        s.accept_invitation(&inv.token_hash, &p.id, &p.email, &cat, &ctx(&p.id, T0 + 3_002)).await.unwrap();
    }
    assert_eq!(s.org_usage(&build.id).await.unwrap().members, 3);
    assert_limit(
        s.accept_invitation(&invs[2].token_hash, &dave.id, &dave.email, &cat, &ctx(&dave.id, T0 + 3_003)).await,
        Limit::MaxSeats,
    );
    assert!(s.org_access(&build.id, &dave.id).await.unwrap().is_none());
    let still = s.list_invitations(&build.id, T0 + 3_003, 50, None).await.unwrap().items;
    assert_eq!(
        still.into_iter().map(|i| i.id).collect::<Vec<_>>(),
        [invs[2].id.clone()],
        "a refused accept leaves it pending"
    );
    let full = invitation(&build.id, &erin.email, "member", json!([]), T0 + week);
    assert_limit(s.create_invitation(&full, &cat, &ctx(&alice.id, T0 + 3_004)).await, Limit::MaxSeats);
    assert_eq!(member_ids(s, &build.id).await.len(), 3);
    // A freed seat lets the pending invitation in.
    s.remove_member(&build.id, &carol.id, &ctx(&alice.id, T0 + 3_005)).await.unwrap();
    s.accept_invitation(&invs[2].token_hash, &dave.id, &dave.email, &cat, &ctx(&dave.id, T0 + 3_006)).await.unwrap();
    assert_eq!(s.org_usage(&build.id).await.unwrap().members, 3);

    // A plan change between invitation and accept: team (alice, bob, carol) moves to "build".
    let late = invitation(&team.id, &erin.email, "member", json!([]), T0 + week);
    s.create_invitation(&late, &cat, &ctx(&alice.id, T0 + 4_000)).await.unwrap();
    s.change_plan(&team.id, cat.get("build").unwrap(), None, &ctx(&alice.id, T0 + 4_001)).await.unwrap();
    assert_limit(
        s.accept_invitation(&late.token_hash, &erin.id, &erin.email, &cat, &ctx(&erin.id, T0 + 4_002)).await,
        Limit::MaxSeats,
    );
    assert!(s.org_access(&team.id, &erin.id).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// 5. API keys

async fn scenario_keys(s: &Store) {
    let cat = Catalog::builtin();
    let alice = signup(s, "alice", T0).await;
    let bob = signup(s, "bob", T0).await;
    let org = new_org(s, &alice.id, "team", T0).await;
    join(s, &cat, &org.id, &alice.id, &bob, json!([{"workspace_id": org.primary, "role": "member"}]), T0).await;

    let mut k = new_key(&org.id, &org.primary, &alice.id, T0 + 1);
    k.spend_limit = Some(500);
    k.expires_at = Some(T0 + 30 * DAY);
    s.create_key(&k, "h1", &ctx(&alice.id, T0 + 1)).await.unwrap();
    let auth = s.key_by_secret("h1", T0 + 2).await.unwrap().expect("key by secret");
    let got = &auth.key;
    assert_eq!(
        (got.id.as_str(), got.org_id.as_str(), got.workspace_id.as_str()),
        (k.id.as_str(), org.id.as_str(), org.primary.as_str())
    );
    assert_eq!(
        (got.name.as_str(), got.prefix.as_str(), got.created_by.as_str()),
        ("ci", "rsk_ab12", alice.id.as_str())
    );
    assert_eq!(
        (got.created_at, got.expires_at, got.spend_limit, got.revoked_at),
        (T0 + 1, Some(T0 + 30 * DAY), Some(500), None)
    );
    assert_eq!(auth.secret_valid_until, None);
    assert!(s.key_by_secret("h-unknown", T0 + 2).await.unwrap().is_none());
    assert_eq!(
        s.list_keys(&org.primary, 50, None).await.unwrap().items.into_iter().map(|k| k.id).collect::<Vec<_>>(),
        [k.id.as_str()]
    );
    assert_eq!(s.key_by_id(&k.id).await.unwrap().map(|k| k.name), Some("ci".into()));
    // A key past its expires_at no longer authenticates.
    assert!(s.key_by_secret("h1", T0 + 30 * DAY - 1).await.unwrap().is_some());
    assert!(s.key_by_secret("h1", T0 + 30 * DAY).await.unwrap().is_none(), "an expired key must not authenticate");

    // Rotation with grace: the old secret works until grace_until, then not; the new one at once.
    let grace = T0 + 100 + 60_000;
    s.rotate_key(&k, "h2", Some(grace), &ctx(&alice.id, T0 + 100)).await.unwrap();
    let old = s.key_by_secret("h1", grace - 1).await.unwrap().expect("old secret in grace");
    assert_eq!((old.key.id.as_str(), old.secret_valid_until), (k.id.as_str(), Some(grace)));
    assert!(s.key_by_secret("h1", grace).await.unwrap().is_none(), "old secret after grace");
    let new = s.key_by_secret("h2", T0 + 101).await.unwrap().expect("new secret");
    assert_eq!((new.key.id.as_str(), new.secret_valid_until), (k.id.as_str(), None));
    assert!(s.key_by_secret("h2", grace + DAY).await.unwrap().is_some());

    // Rotation without grace: every older secret stops at once (also one still in its grace).
    s.rotate_key(&k, "h3", None, &ctx(&alice.id, T0 + 200)).await.unwrap();
    assert!(s.key_by_secret("h2", T0 + 201).await.unwrap().is_none());
    assert!(s.key_by_secret("h1", T0 + 201).await.unwrap().is_none());
    assert!(s.key_by_secret("h3", T0 + 201).await.unwrap().is_some());
    let rotated = audit(s, &org.id, &filter(None, None, Some("key.rotated"))).await;
    assert_eq!(rotated.len(), 2);

    // A key's own rpm: stored, read back by authentication, cleared, audited.
    assert_eq!(s.key_by_secret("h3", T0 + 202).await.unwrap().expect("key").key.rpm, None);
    s.set_key_rpm(&k, Some(120), &ctx(&alice.id, T0 + 203)).await.unwrap();
    assert_eq!(s.key_by_secret("h3", T0 + 204).await.unwrap().expect("key").key.rpm, Some(120));
    assert_eq!(s.key_by_id(&k.id).await.unwrap().and_then(|k| k.rpm), Some(120));
    s.set_key_rpm(&k, None, &ctx(&alice.id, T0 + 205)).await.unwrap();
    assert_eq!(s.key_by_id(&k.id).await.unwrap().and_then(|k| k.rpm), None);
    let updated = audit(s, &org.id, &filter(None, None, Some("key.updated"))).await;
    assert_eq!(updated.len(), 2);

    // Revocation.
    s.revoke_key(&k, &ctx(&alice.id, T0 + 300)).await.unwrap();
    assert!(s.key_by_secret("h3", T0 + 301).await.unwrap().is_none());
    assert_eq!(s.key_by_id(&k.id).await.unwrap().and_then(|k| k.revoked_at), Some(T0 + 300));
    assert!(s.list_keys(&org.primary, 50, None).await.unwrap().items.is_empty());
    assert_not_found(s.rotate_key(&k, "h4", None, &ctx(&alice.id, T0 + 302)).await);
    assert!(s.key_by_secret("h4", T0 + 303).await.unwrap().is_none(), "a refused rotation adds no secret");
    assert_not_found(s.set_key_rpm(&k, Some(5), &ctx(&alice.id, T0 + 304)).await);

    // Removing a member revokes exactly the keys they created.
    let b1 = add_key(s, &org.id, &org.primary, &bob.id, "b1", T0 + 400).await;
    let b2 = add_key(s, &org.id, &org.primary, &bob.id, "b2", T0 + 400).await;
    let a1 = add_key(s, &org.id, &org.primary, &alice.id, "a1", T0 + 400).await;
    let p1 = s.list_keys(&org.primary, 2, None).await.unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = s.list_keys(&org.primary, 2, p1.next_cursor.as_deref()).await.unwrap();
    assert_eq!((p2.items.len(), p2.next_cursor), (1, None));
    let revoked = s.remove_member(&org.id, &bob.id, &ctx(&alice.id, T0 + 401)).await.unwrap();
    assert_eq!(sorted(revoked), sorted(vec![b1.id.clone(), b2.id.clone()]));
    assert!(s.key_by_secret("b1", T0 + 402).await.unwrap().is_none());
    assert!(s.key_by_secret("b2", T0 + 402).await.unwrap().is_none());
    assert!(s.key_by_secret("a1", T0 + 402).await.unwrap().is_some());
    assert_eq!(
        s.list_keys(&org.primary, 50, None).await.unwrap().items.into_iter().map(|k| k.id).collect::<Vec<_>>(),
        [a1.id.as_str()]
    );
    let revoked_events: Vec<_> = audit(s, &org.id, &filter(None, None, Some("key.revoked")))
        .await
        .into_iter()
        .filter_map(|e| e.target_id)
        .collect();
    assert_eq!(sorted(revoked_events), sorted(vec![k.id.clone(), b1.id.clone(), b2.id.clone()]));
    assert!(s.workspace_access(&org.primary, &bob.id).await.unwrap().is_none());

    // Deleting the org revokes every key and ends every membership.
    let ws2 = new_workspace(s, &org.id, &alice.id, T0 + 500).await;
    let a2 = add_key(s, &org.id, &ws2, &alice.id, "a2", T0 + 500).await;
    let pending = invitation(&org.id, &bob.email, "member", json!([]), T0 + 7 * DAY);
    s.create_invitation(&pending, &cat, &ctx(&alice.id, T0 + 500)).await.unwrap();
    s.set_active_workspace(&alice.id, &ws2).await.unwrap();
    let revoked = s.delete_org(&org.id, &ctx(&alice.id, T0 + 501)).await.unwrap();
    assert_eq!(sorted(revoked), sorted(vec![a1.id.clone(), a2.id.clone()]));
    assert!(s.key_by_secret("a1", T0 + 502).await.unwrap().is_none());
    assert!(s.key_by_secret("a2", T0 + 502).await.unwrap().is_none());
    assert_eq!(s.key_by_id(&a2.id).await.unwrap().and_then(|k| k.revoked_at), Some(T0 + 501));
    for user in [&alice.id, &bob.id] {
        assert!(s.org_access(&org.id, user).await.unwrap().is_none(), "no one reaches a deleted org");
        assert!(s.workspace_access(&org.primary, user).await.unwrap().is_none());
    }
    assert!(s.org_by_id(&org.id).await.unwrap().is_none());
    assert!(s.workspace_by_id(&ws2).await.unwrap().is_none());
    assert_eq!(
        s.memberships(&alice.id).await.unwrap().into_iter().map(|m| m.org.id).collect::<Vec<_>>(),
        [alice.org.as_str()]
    );
    assert!(s.visible_workspaces(&alice.id).await.unwrap().iter().all(|(w, _)| w.org_id != org.id));
    assert_eq!(
        s.user_by_id(&alice.id).await.unwrap().and_then(|u| u.active_workspace_id),
        Some(alice.ws.clone()),
        "the owner lands back in their personal workspace"
    );
    assert_rule(
        s.accept_invitation(&pending.token_hash, &bob.id, &bob.email, &cat, &ctx(&bob.id, T0 + 503)).await,
        Rule::InvitationInvalid,
    );
    assert!(s.list_members(&org.id, 50, None).await.unwrap().items.is_empty());
    assert_eq!(audit(s, &org.id, &filter(None, None, Some("org.deleted"))).await.len(), 1, "the audit log stays");
}

// ---------------------------------------------------------------------------------------------
// 6. Resources

async fn scenario_resources(s: &Store) {
    let alice = signup(s, "alice", T0).await;
    let bob = signup(s, "bob", T0).await;
    let org = new_org(s, &alice.id, "team", T0).await;
    let ws2 = new_workspace(s, &org.id, &alice.id, T0).await;
    let c = ctx(&alice.id, T0 + 1);

    let r1 = new_resource(&org.id, &org.primary, "postgres", &alice.id, T0 + 1);
    s.create_resource(&r1, &quota(&r1.kind, 1), &c).await.unwrap();
    let r2 = new_resource(&org.id, &org.primary, "postgres", &alice.id, T0 + 1);
    assert_limit(s.create_resource(&r2, &quota(&r2.kind, 1), &c).await, Limit::ResourceQuota("postgres".into()));
    assert!(s.resource_by_id(&r2.id).await.unwrap().is_none());
    // Quotas are per kind …
    let r3 = new_resource(&org.id, &org.primary, "box", &alice.id, T0 + 2);
    s.create_resource(&r3, &quota(&r3.kind, 1), &c).await.unwrap();
    // … `None` is unlimited …
    let r4 = new_resource(&org.id, &org.primary, "postgres", &alice.id, T0 + 3);
    s.create_resource(&r4, &unlimited(), &c).await.unwrap();
    // … and org-wide, whatever the workspace.
    let r5 = new_resource(&org.id, &ws2, "postgres", &alice.id, T0 + 4);
    assert_limit(s.create_resource(&r5, &quota(&r5.kind, 2), &c).await, Limit::ResourceQuota("postgres".into()));
    let usage = s.org_usage(&org.id).await.unwrap();
    assert_eq!(usage.resources, BTreeMap::from([("box".to_string(), 1), ("postgres".to_string(), 2)]));

    let got = s.resource_by_id(&r1.id).await.unwrap().expect("r1");
    assert_eq!(
        (got.org_id.as_str(), got.workspace_id.as_str(), got.kind.as_str()),
        (org.id.as_str(), org.primary.as_str(), "postgres")
    );
    assert_eq!(
        (got.name.as_str(), got.created_by.as_str(), got.created_at),
        ("my-postgres", alice.id.as_str(), T0 + 1)
    );

    let all = sorted(vec![r1.id.clone(), r3.id.clone(), r4.id.clone()]);
    let p1 = s.list_resources(&org.primary, 2, None).await.unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = s.list_resources(&org.primary, 2, p1.next_cursor.as_deref()).await.unwrap();
    assert_eq!(p2.next_cursor, None);
    let listed: Vec<_> = p1.items.into_iter().chain(p2.items).map(|r| r.id).collect();
    assert_eq!(listed, all);
    assert!(s.list_resources(&ws2, 50, None).await.unwrap().items.is_empty());

    // Transfer within the org: the org's count of the kind does not change, so no quota applies.
    let (w2, _) = s.workspace_by_id(&ws2).await.unwrap().expect("ws2");
    s.transfer_resource(&got, &w2, &quota(&got.kind, 1), &ctx(&alice.id, T0 + 10)).await.unwrap();
    let moved = s.resource_by_id(&r1.id).await.unwrap().expect("r1 after transfer");
    assert_eq!((moved.workspace_id.as_str(), moved.org_id.as_str()), (ws2.as_str(), org.id.as_str()));
    assert_eq!(
        s.list_resources(&ws2, 50, None).await.unwrap().items.into_iter().map(|r| r.id).collect::<Vec<_>>(),
        [r1.id.as_str()]
    );
    let ev = audit(s, &org.id, &filter(None, None, Some("resource.transferred"))).await;
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].workspace_id.as_deref(), ev[0].target_id.as_deref()), (Some(ws2.as_str()), Some(r1.id.as_str())));
    let detail: Value = serde_json::from_str(&ev[0].detail).unwrap();
    assert_eq!(
        (detail["from_workspace"].as_str(), detail["to_workspace"].as_str()),
        (Some(org.primary.as_str()), Some(ws2.as_str()))
    );
    assert_eq!(
        (detail["from_org"].as_str(), detail["to_org"].as_str()),
        (Some(org.id.as_str()), Some(org.id.as_str()))
    );

    // Into another org: only within that org's quota for the kind, and then org and all move.
    let other = new_org(s, &bob.id, "team", T0 + 20).await;
    let (other_primary, _) = s.workspace_by_id(&other.primary).await.unwrap().expect("other primary");
    let theirs = new_resource(&other.id, &other.primary, "postgres", &bob.id, T0 + 20);
    s.create_resource(&theirs, &unlimited(), &ctx(&bob.id, T0 + 20)).await.unwrap();
    assert_limit(
        s.transfer_resource(&moved, &other_primary, &quota(&moved.kind, 1), &ctx(&alice.id, T0 + 21)).await,
        Limit::ResourceQuota("postgres".into()),
    );
    let still = s.resource_by_id(&r1.id).await.unwrap().expect("r1");
    assert_eq!(
        (still.org_id.as_str(), still.workspace_id.as_str()),
        (org.id.as_str(), ws2.as_str()),
        "a refused move moves nothing"
    );
    s.transfer_resource(&moved, &other_primary, &quota(&moved.kind, 2), &ctx(&alice.id, T0 + 22)).await.unwrap();
    let there = s.resource_by_id(&r1.id).await.unwrap().expect("r1 in the other org");
    assert_eq!((there.org_id.as_str(), there.workspace_id.as_str()), (other.id.as_str(), other.primary.as_str()));
    assert!(s.list_resources(&ws2, 50, None).await.unwrap().items.is_empty());
    let theirs_now: Vec<_> =
        s.list_resources(&other.primary, 50, None).await.unwrap().items.into_iter().map(|r| r.id).collect();
    assert_eq!(theirs_now, sorted(vec![r1.id.clone(), theirs.id.clone()]));
    assert_eq!(
        s.org_usage(&org.id).await.unwrap().resources,
        BTreeMap::from([("box".to_string(), 1), ("postgres".to_string(), 1)])
    );
    assert_eq!(s.org_usage(&other.id).await.unwrap().resources, BTreeMap::from([("postgres".to_string(), 2)]));
    // Audited in both orgs.
    let from_side = audit(s, &org.id, &filter(None, None, Some("resource.transferred"))).await;
    let to_side = audit(s, &other.id, &filter(None, None, Some("resource.transferred"))).await;
    assert_eq!((from_side.len(), to_side.len()), (2, 1));
    for e in [&from_side[0], &to_side[0]] {
        let detail: Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(
            (detail["from_org"].as_str(), detail["to_org"].as_str()),
            (Some(org.id.as_str()), Some(other.id.as_str()))
        );
        assert_eq!((e.target_id.as_deref(), e.actor_id.as_str()), (Some(r1.id.as_str()), alice.id.as_str()));
    }
    // A stale copy that still names the old org moves nothing.
    assert_not_found(s.transfer_resource(&moved, &w2, &unlimited(), &ctx(&alice.id, T0 + 23)).await);
    assert_eq!(s.resource_by_id(&r1.id).await.unwrap().map(|r| r.org_id), Some(other.id.clone()));

    // Delete.
    s.delete_resource(&r3, &ctx(&alice.id, T0 + 30)).await.unwrap();
    assert!(s.resource_by_id(&r3.id).await.unwrap().is_none());
    assert_eq!(
        s.list_resources(&org.primary, 50, None).await.unwrap().items.into_iter().map(|r| r.id).collect::<Vec<_>>(),
        [r4.id.as_str()]
    );
    assert_eq!(s.org_usage(&org.id).await.unwrap().resources, BTreeMap::from([("postgres".to_string(), 1)]));
    assert_eq!(audit(s, &org.id, &filter(None, None, Some("resource.deleted"))).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 7. Plan changes

async fn scenario_change_plan(s: &Store) {
    let cat = Catalog::builtin();
    let alice = signup(s, "alice", T0).await;
    let bob = signup(s, "bob", T0).await;
    let org = new_org(s, &alice.id, "team", T0).await;
    join(s, &cat, &org.id, &alice.id, &bob, json!([]), T0).await;
    let ws2 = new_workspace(s, &org.id, &alice.id, T0).await;
    for _ in 0..2 {
        let r = new_resource(&org.id, &org.primary, "postgres", &alice.id, T0);
        s.create_resource(&r, &unlimited(), &ctx(&alice.id, T0)).await.unwrap();
    }
    let c = ctx(&alice.id, T0 + 10);

    // 2 members > pro's 1 seat.
    assert_limit(s.change_plan(&org.id, cat.get("pro").unwrap(), None, &c).await, Limit::MaxSeats);
    // 2 workspaces > build's 1.
    assert_limit(s.change_plan(&org.id, cat.get("build").unwrap(), None, &c).await, Limit::MaxWorkspaces);
    // 2 postgres > a quota of 1.
    let mut tight = cat.get("team").unwrap().clone();
    tight.id = "team-tight".into();
    tight.resource_quotas.insert("postgres".into(), 1);
    assert_limit(
        s.change_plan(&org.id, &tight, Some(T0 + 14 * DAY), &c).await,
        Limit::ResourceQuota("postgres".into()),
    );
    let o = s.org_by_id(&org.id).await.unwrap().expect("org");
    assert_eq!((o.plan.as_str(), o.plan_started_at), ("team", T0), "a refused change leaves the plan");
    assert!(!o.trial_used && o.trial_ends_at.is_none(), "a refused change starts no trial: {o:?}");
    assert!(audit(s, &org.id, &filter(None, None, Some("plan.changed"))).await.is_empty());

    // Within the limits, on the plan's trial.
    let trial_end = T0 + 20 + 14 * DAY;
    s.change_plan(&org.id, cat.get("launch").unwrap(), Some(trial_end), &ctx(&alice.id, T0 + 20)).await.unwrap();
    let o = s.org_by_id(&org.id).await.unwrap().expect("org");
    assert_eq!((o.plan.as_str(), o.plan_started_at), ("launch", T0 + 20));
    assert_eq!((o.trial_used, o.trial_ends_at), (true, Some(trial_end)));
    let ev = audit(s, &org.id, &filter(None, None, Some("plan.changed"))).await;
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(
        (e.actor_id.as_str(), e.at, e.target_id.as_deref()),
        (alice.id.as_str(), T0 + 20, Some(org.id.as_str()))
    );
    let detail: Value = serde_json::from_str(&e.detail).unwrap();
    assert_eq!((detail["from"].as_str(), detail["to"].as_str()), (Some("team"), Some("launch")));
    assert_eq!(detail["trial_ends_at"].as_i64(), Some(trial_end));

    // Exactly at a limit is allowed: with one workspace left, build (1 workspace, 3 seats) fits.
    let (w2, _) = s.workspace_by_id(&ws2).await.unwrap().expect("ws2");
    s.delete_workspace(&w2, &ctx(&alice.id, T0 + 30)).await.unwrap();
    s.change_plan(&org.id, cat.get("build").unwrap(), None, &ctx(&alice.id, T0 + 31)).await.unwrap();
    let o = s.org_by_id(&org.id).await.unwrap().expect("org");
    assert_eq!(o.plan, "build");
    assert_eq!((o.trial_used, o.trial_ends_at), (true, None), "a paid plan ends the trial; the trial stays used");
    let ev = audit(s, &org.id, &filter(None, None, Some("plan.changed"))).await;
    assert_eq!(ev.len(), 2);
    let detail: Value = serde_json::from_str(&ev[0].detail).unwrap();
    assert_eq!((detail["from"].as_str(), detail["to"].as_str()), (Some("launch"), Some("build")), "newest first");
    assert!(detail["trial_ends_at"].is_null());
}

// ---------------------------------------------------------------------------------------------
// 8. The audit log

async fn scenario_audit(s: &Store) {
    let cat = Catalog::builtin();
    let alice = signup(s, "alice", T0).await;
    let bob = signup(s, "bob", T0).await;
    let org = new_org(s, &alice.id, "team", T0 + 1).await; // org.created, workspace.created
    let ws2 = new_workspace(s, &org.id, &alice.id, T0 + 2).await; // workspace.created
    add_key(s, &org.id, &ws2, &alice.id, "k", T0 + 3).await; // key.created
    let inv = invitation(&org.id, &bob.email, "member", json!([]), T0 + DAY);
    let mut c = ctx(&alice.id, T0 + 4);
    c.ip = Some("203.0.113.7".into());
    s.create_invitation(&inv, &cat, &c).await.unwrap(); // member.invited
    s.accept_invitation(&inv.token_hash, &bob.id, &bob.email, &cat, &ctx(&bob.id, T0 + 5)).await.unwrap(); // member.joined
    let r = new_resource(&org.id, &org.primary, "box", &bob.id, T0 + 6);
    s.create_resource(&r, &unlimited(), &ctx(&bob.id, T0 + 6)).await.unwrap(); // resource.created

    // Newest first.
    let all = audit(s, &org.id, &AuditFilter::default()).await;
    assert_eq!(
        actions(&all),
        [
            "resource.created",
            "member.joined",
            "member.invited",
            "key.created",
            "workspace.created",
            "workspace.created",
            "org.created"
        ]
    );
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "ids descend");
    assert!(all.windows(2).all(|w| w[0].at >= w[1].at), "times descend");
    assert!(all.iter().all(|e| e.org_id == org.id), "only this org's events");
    assert_eq!(all[0].at, T0 + 6);
    let invited = &all[2];
    assert_eq!(invited.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        (invited.target_type.as_deref(), invited.target_id.as_deref()),
        (Some("invitation"), Some(inv.id.as_str()))
    );
    assert_eq!(serde_json::from_str::<Value>(&invited.detail).unwrap()["email"], bob.email.as_str());
    assert!(all.iter().filter(|e| e.action != "member.invited").all(|e| e.ip.is_none()));

    // Filters.
    let in_ws2 = audit(s, &org.id, &filter(Some(&ws2), None, None)).await;
    assert_eq!(actions(&in_ws2), ["key.created", "workspace.created"]);
    let by_bob = audit(s, &org.id, &filter(None, Some(&bob.id), None)).await;
    assert_eq!(actions(&by_bob), ["resource.created", "member.joined"]);
    assert!(by_bob.iter().all(|e| e.actor_type == "user" && e.actor_id == bob.id));
    let created = audit(s, &org.id, &filter(None, None, Some("workspace.created"))).await;
    assert_eq!(
        created.iter().map(|e| e.workspace_id.clone().unwrap_or_default()).collect::<Vec<_>>(),
        [ws2.clone(), org.primary.clone()]
    );
    let both = audit(s, &org.id, &filter(Some(&org.primary), Some(&bob.id), None)).await;
    assert_eq!(actions(&both), ["resource.created"]);
    assert!(audit(s, &org.id, &filter(None, Some(&bob.id), Some("org.created"))).await.is_empty());
    assert!(audit(s, &org.id, &filter(None, None, Some("no.such.action"))).await.is_empty());
    // Empty filter strings mean "any".
    assert_eq!(audit(s, &org.id, &filter(Some(""), Some(""), Some(""))).await.len(), all.len());
    // Another org's log is separate.
    assert_eq!(actions(&audit(s, &alice.org, &AuditFilter::default()).await), ["org.created"]);

    // Pagination: pages of 3 walk the same list.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s.list_audit(&org.id, &AuditFilter::default(), 3, cursor.as_deref()).await.unwrap();
        pages += 1;
        seen.extend(page.items.into_iter().map(|e| e.id));
        cursor = page.next_cursor;
        if cursor.is_none() || pages > 10 {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
    let filtered = s.list_audit(&org.id, &filter(None, Some(&alice.id), None), 2, None).await.unwrap();
    assert_eq!(actions(&filtered.items), ["member.invited", "key.created"]);
    assert!(filtered.next_cursor.is_some());
    let rest =
        s.list_audit(&org.id, &filter(None, Some(&alice.id), None), 50, filtered.next_cursor.as_deref()).await.unwrap();
    assert_eq!(actions(&rest.items), ["workspace.created", "workspace.created", "org.created"]);
    assert_eq!(rest.next_cursor, None);

    // Append-only, enforced by the database itself (within the org's scope, where the
    // application's role may otherwise write: row-level security alone would hide the rows).
    let count = || async {
        let mut tx = in_scope(s, &org.id).await;
        let n = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_events").fetch_one(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        n
    };
    let before = count().await;
    assert!(before > 0);
    for (sql, what) in [
        ("UPDATE audit_events SET action = 'x'", "UPDATE of the audit log must fail"),
        ("DELETE FROM audit_events", "DELETE from the audit log must fail"),
    ] {
        let mut tx = in_scope(s, &org.id).await;
        let err = sqlx::query(sql).execute(&mut *tx).await.expect_err(what);
        assert!(err.to_string().contains("append-only"), "refused by the guard, not by accident: {err}");
    }
    let mut tx = in_scope(s, &org.id).await;
    let targeted = sqlx::query("DELETE FROM audit_events WHERE org_id = $1").bind(&org.id).execute(&mut *tx).await;
    assert!(targeted.is_err(), "a targeted DELETE must fail too");
    drop(tx);
    assert_eq!(count().await, before);
    assert_eq!(actions(&audit(s, &org.id, &AuditFilter::default()).await), actions(&all));
}

// ---------------------------------------------------------------------------------------------
// 9. Concurrency

async fn scenario_concurrency(s: &Store) {
    const INVITEES: usize = 16;
    const FREE_SEATS: u32 = 5;
    let mut plans = Catalog::builtin().all().to_vec();
    let mut crowd = plans.iter().find(|p| p.id == "team").cloned().expect("team plan");
    crowd.id = "crowd".into();
    crowd.name = "Crowd".into();
    crowd.max_seats = Some(1 + FREE_SEATS);
    plans.push(crowd);
    let cat = Arc::new(Catalog::new(plans, "free").expect("catalog"));

    let alice = signup(s, "alice", T0).await;
    let org = new_org(s, &alice.id, "crowd", T0).await;
    let mut people = Vec::new();
    for i in 0..INVITEES {
        let p = signup(s, &format!("user{i:02}"), T0).await;
        let grants = json!([{"workspace_id": org.primary, "role": "member"}]);
        let inv = invitation(&org.id, &p.email, "member", grants, T0 + DAY);
        s.create_invitation(&inv, &cat, &ctx(&alice.id, T0 + 1)).await.unwrap();
        people.push((p, inv));
    }

    // Every accept starts at the same moment.
    let gate = Arc::new(tokio::sync::Barrier::new(INVITEES));
    let mut tasks = Vec::new();
    for (p, inv) in people.clone() {
        let (s, cat, gate) = (s.clone(), cat.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            let got = s.accept_invitation(&inv.token_hash, &p.id, &p.email, &cat, &ctx(&p.id, T0 + 100)).await;
            (p.id, got)
        }));
    }
    let (mut joined, mut refused) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await.expect("task") {
            (id, Ok(acc)) => {
                assert_eq!(acc.org_id, org.id);
                assert_eq!(acc.workspace_ids, [org.primary.as_str()]);
                joined.push(id);
            }
            (id, Err(StoreError::Limit(Limit::MaxSeats))) => refused.push(id),
            (id, Err(e)) => panic!("accept for {id} failed with an unexpected error: {e:?}"),
        }
    }
    assert_eq!(joined.len(), FREE_SEATS as usize, "exactly the free seats are taken");
    assert_eq!(refused.len(), INVITEES - FREE_SEATS as usize);
    assert_eq!(s.org_usage(&org.id).await.unwrap().members, 1 + FREE_SEATS);
    let mut expected = joined.clone();
    expected.push(alice.id.clone());
    assert_eq!(member_ids(s, &org.id).await, sorted(expected));
    for id in &joined {
        assert!(s.workspace_access(&org.primary, id).await.unwrap().and_then(|a| a.ws_role).is_some());
    }
    for id in &refused {
        assert!(s.org_access(&org.id, id).await.unwrap().is_none(), "a refused accept wrote nothing");
        assert!(s.workspace_access(&org.primary, id).await.unwrap().is_none());
    }
    let pending = s.list_invitations(&org.id, T0 + 101, 500, None).await.unwrap().items;
    assert_eq!(pending.len(), refused.len(), "refused invitations stay pending");
    assert_eq!(audit(s, &org.id, &filter(None, None, Some("member.joined"))).await.len(), FREE_SEATS as usize);

    // The same for a resource quota: 8 concurrent creates under a quota of 3.
    let gate = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    let limited = Arc::new(limits_on(&cat, None, &[("postgres", 3)]));
    for _ in 0..8 {
        let (s, gate, limited) = (s.clone(), gate.clone(), limited.clone());
        let r = new_resource(&org.id, &org.primary, "postgres", &alice.id, T0 + 200);
        let c = ctx(&alice.id, T0 + 200);
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            s.create_resource(&r, &limited, &c).await
        }));
    }
    let mut made = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => made += 1,
            Err(StoreError::Limit(Limit::ResourceQuota(kind))) => assert_eq!(kind, "postgres"),
            Err(e) => panic!("create_resource failed with an unexpected error: {e:?}"),
        }
    }
    assert_eq!(made, 3);
    assert_eq!(s.org_usage(&org.id).await.unwrap().resources.get("postgres"), Some(&3));
}

/// Rules the store itself enforces under the org lock, whatever the caller checked before.
async fn scenario_guards(s: &Store) {
    let cat = Catalog::builtin();
    let alice = signup(s, "alice", T0).await;
    let bob = signup(s, "bob", T0).await;
    let carol = signup(s, "carol", T0).await;
    let org = new_org(s, &alice.id, "team", T0).await;
    join(s, &cat, &org.id, &alice.id, &bob, json!([]), T0 + 1).await;
    join(s, &cat, &org.id, &alice.id, &carol, json!([]), T0 + 1).await;
    s.set_member_role(&org.id, &bob.id, "admin", &ctx(&alice.id, T0 + 2)).await.unwrap();
    s.set_member_role(&org.id, &carol.id, "admin", &ctx(&alice.id, T0 + 2)).await.unwrap();

    // Only the owner takes away admin: another admin can neither demote nor remove one.
    assert_rule(s.set_member_role(&org.id, &carol.id, "member", &ctx(&bob.id, T0 + 3)).await, Rule::NotOwner);
    assert_rule(s.remove_member(&org.id, &carol.id, &ctx(&bob.id, T0 + 3)).await, Rule::NotOwner);
    assert_eq!(role_in(s, &org.id, &carol.id).await.as_deref(), Some("admin"));
    // The actor's own role is what it is under the lock: a member (say, an admin demoted while the
    // request waited) manages no one.
    let dave = signup(s, "dave", T0).await;
    join(s, &cat, &org.id, &alice.id, &dave, json!([]), T0 + 2).await;
    assert_rule(s.remove_member(&org.id, &carol.id, &ctx(&dave.id, T0 + 3)).await, Rule::NotAllowed);
    assert_rule(s.set_member_role(&org.id, &carol.id, "member", &ctx(&dave.id, T0 + 3)).await, Rule::NotAllowed);
    // An admin may not grant admin either.
    assert_rule(s.set_member_role(&org.id, &dave.id, "admin", &ctx(&bob.id, T0 + 3)).await, Rule::NotOwner);

    // Demoting an admin revokes the keys they made where they can no longer work.
    let key = add_key(s, &org.id, &org.primary, &carol.id, "secret-carol", T0 + 4).await;
    assert!(s.key_by_secret("secret-carol", T0 + 5).await.unwrap().is_some());
    let revoked = s.set_member_role(&org.id, &carol.id, "member", &ctx(&alice.id, T0 + 5)).await.unwrap();
    assert_eq!(revoked, std::slice::from_ref(&key.id));
    assert!(s.key_by_secret("secret-carol", T0 + 6).await.unwrap().is_none());
    // A second revocation of the same key finds nothing to revoke.
    assert_not_found(s.revoke_key(&key, &ctx(&alice.id, T0 + 6)).await);
    let events = audit(s, &org.id, &filter(None, None, Some("key.revoked"))).await;
    assert_eq!(events.len(), 1, "one key.revoked event, with its workspace");
    assert_eq!(events[0].workspace_id.as_deref(), Some(org.primary.as_str()));

    // An invitation whose workspace grant lowers a member's role there ends their keys there.
    let ws_b = new_workspace(s, &org.id, &alice.id, T0 + 6).await;
    let (wb, _) = s.workspace_by_id(&ws_b).await.unwrap().expect("workspace");
    s.put_ws_member(&wb, &dave.id, "member", &ctx(&alice.id, T0 + 6)).await.unwrap();
    let dave_key = add_key(s, &org.id, &ws_b, &dave.id, "secret-dave", T0 + 6).await;
    let inv = invitation(&org.id, &dave.email, "member", json!([{"workspace_id": ws_b, "role": "viewer"}]), T0 + DAY);
    s.create_invitation(&inv, &cat, &ctx(&alice.id, T0 + 6)).await.unwrap();
    let accepted =
        s.accept_invitation(&inv.token_hash, &dave.id, &dave.email, &cat, &ctx(&dave.id, T0 + 6)).await.unwrap();
    assert_eq!(accepted.revoked_keys, std::slice::from_ref(&dave_key.id));
    assert!(s.key_by_secret("secret-dave", T0 + 7).await.unwrap().is_none());

    // One trial per org, ever, checked under the lock.
    let business = cat.get("business").cloned().expect("business");
    s.change_plan(&org.id, &business, Some(T0 + 14 * DAY), &ctx(&alice.id, T0 + 7)).await.unwrap();
    assert_rule(s.change_plan(&org.id, &business, Some(T0 + 30 * DAY), &ctx(&alice.id, T0 + 8)).await, Rule::TrialUsed);

    // Nothing is created in a workspace that no longer exists.
    let ws = new_workspace(s, &org.id, &alice.id, T0 + 9).await;
    let (gone, _) = s.workspace_by_id(&ws).await.unwrap().expect("workspace");
    s.delete_workspace(&gone, &ctx(&alice.id, T0 + 10)).await.unwrap();
    let late = new_resource(&org.id, &ws, "box", &alice.id, T0 + 11);
    assert_not_found(s.create_resource(&late, &unlimited(), &ctx(&alice.id, T0 + 11)).await);
    assert_not_found(
        s.create_key(&new_key(&org.id, &ws, &alice.id, T0 + 11), "secret-late", &ctx(&alice.id, T0 + 11)).await,
    );
    assert!(s.org_usage(&org.id).await.unwrap().resources.is_empty());
}
