//! Identity scenarios of the conformance suite: the mail outbox, verification and reset tokens,
//! sessions, two-factor, verified domains.

use roost_domain::{Catalog, IdKind};
use roost_store::{Limit, NewMail, NewUserToken, OrgDomain, Rule, SessionMeta, Store, StoreError, TokenPurpose};
use serde_json::json;

use super::{DAY, T0, assert_limit, assert_rule, ctx, invitation, new_org, signup};

fn mail(to: &str) -> NewMail {
    NewMail {
        id: IdKind::Mail.generate(),
        kind: "invitation".into(),
        to: to.into(),
        subject: "[roost] hello".into(),
        text: "text with a link".into(),
        html: "<p>html with a link</p>".into(),
    }
}

/// Mail is queued with its cause or not at all; claimed once; retried when due; emptied when sent.
pub(crate) async fn scenario_mail_outbox(s: &Store) {
    let cat = Catalog::builtin();
    let alice = signup(s, "alice", T0).await;

    // A refused invitation queues no mail: the mail shares its transaction.
    let pro = new_org(s, &alice.id, "pro", T0).await;
    let refused = invitation(&pro.id, "bob@example.com", "member", json!([]), T0 + 7 * DAY);
    let m = mail("bob@example.com");
    assert_limit(s.create_invitation_with_mail(&refused, Some(&m), &cat, &ctx(&alice.id, T0)).await, Limit::MaxSeats);
    assert!(s.mails_to("bob@example.com").await.unwrap().is_empty(), "no mail for a refused invitation");
    assert!(s.claim_mail(T0 + DAY, T0 + DAY, 10).await.unwrap().is_empty());

    // An accepted one queues it, due at once.
    let team = new_org(s, &alice.id, "team", T0).await;
    let inv = invitation(&team.id, "bob@example.com", "member", json!([]), T0 + 7 * DAY);
    s.create_invitation_with_mail(&inv, Some(&m), &cat, &ctx(&alice.id, T0 + 10)).await.unwrap();
    assert_eq!(s.mails_to("bob@example.com").await.unwrap(), std::slice::from_ref(&m.id));
    assert!(s.claim_mail(T0 + 9, T0 + 9, 10).await.unwrap().is_empty(), "not due before it was queued");
    let claimed = s.claim_mail(T0 + 10, T0 + 1_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!((c.id.as_str(), c.to.as_str(), c.attempts), (m.id.as_str(), "bob@example.com", 0));
    assert_eq!(
        (c.subject.as_str(), c.text.as_str(), c.html.as_str()),
        ("[roost] hello", "text with a link", "<p>html with a link</p>")
    );
    // Claimed: hidden from other senders until the lease ends.
    assert!(s.claim_mail(T0 + 999, T0 + 2_000, 10).await.unwrap().is_empty());

    // A failed attempt is retried when due; giving up is final.
    s.mail_failed(&m.id, "451 try later", Some(T0 + 5_000)).await.unwrap();
    let st = s.mail_status(&m.id).await.unwrap().unwrap();
    assert_eq!((st.status.as_str(), st.attempts, st.last_error.as_deref()), ("pending", 1, Some("451 try later")));
    assert!(s.claim_mail(T0 + 4_999, T0 + 6_000, 10).await.unwrap().is_empty());
    let again = s.claim_mail(T0 + 5_000, T0 + 6_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    s.mail_sent(&m.id, T0 + 5_001).await.unwrap();
    let st = s.mail_status(&m.id).await.unwrap().unwrap();
    assert_eq!((st.status.as_str(), st.attempts, st.last_error), ("sent", 2, None));
    assert!(s.claim_mail(T0 + DAY, T0 + DAY, 10).await.unwrap().is_empty(), "a sent mail is never sent again");

    let lost = mail("nobody@example.com");
    s.enqueue_mail(&lost, T0).await.unwrap();
    s.claim_mail(T0, T0 + 1, 10).await.unwrap();
    s.mail_failed(&lost.id, "550 no such user", None).await.unwrap();
    assert_eq!(s.mail_status(&lost.id).await.unwrap().unwrap().status, "failed");
    assert!(s.claim_mail(T0 + DAY, T0 + DAY, 10).await.unwrap().is_empty(), "given up for good");
    assert!(s.mail_status("mail_unknown").await.unwrap().is_none());
}

fn user_token(hash: &str, purpose: TokenPurpose, user: Option<&str>, email: &str, expires_at: i64) -> NewUserToken {
    NewUserToken {
        token_hash: hash.into(),
        purpose,
        user_id: user.map(str::to_string),
        email: email.into(),
        expires_at,
    }
}

/// Verification and reset tokens: single use, expiring, of one purpose, never for nobody; a reset
/// sets the password, proves the address and ends every session.
pub(crate) async fn scenario_user_tokens(s: &Store) {
    let bob = signup(s, "bob", T0).await;
    let hour = 3_600_000;
    let verify = user_token("v1", TokenPurpose::VerifyEmail, Some(&bob.id), &bob.email, T0 + hour);
    s.issue_user_token(&verify, &mail(&bob.email), T0).await.unwrap();
    assert_eq!(s.mails_to(&bob.email).await.unwrap().len(), 1, "the token's mail is queued with it");
    // The wrong purpose, an unknown token, and too late: all refused, nothing spent.
    assert_rule(s.reset_password("v1", "h", T0 + 1).await, Rule::TokenInvalid);
    assert_rule(s.confirm_email("nope", T0 + 1).await, Rule::TokenInvalid);
    assert_rule(s.confirm_email("v1", T0 + hour).await, Rule::TokenInvalid);
    assert!(s.user_by_id(&bob.id).await.unwrap().unwrap().email_verified_at.is_none());
    assert_eq!(s.confirm_email("v1", T0 + hour - 1).await.unwrap(), bob.id);
    assert_eq!(s.user_by_id(&bob.id).await.unwrap().unwrap().email_verified_at, Some(T0 + hour - 1));
    assert_rule(s.confirm_email("v1", T0 + hour - 1).await, Rule::TokenInvalid);

    // Two reset links; the first used spends both, changes the password, ends every session.
    for h in ["r1", "r2"] {
        let t = user_token(h, TokenPurpose::PasswordReset, Some(&bob.id), &bob.email, T0 + 2 * hour);
        s.issue_user_token(&t, &mail(&bob.email), T0 + hour).await.unwrap();
    }
    s.create_session("second", &bob.id, T0, T0 + DAY).await.unwrap();
    assert!(s.session_user(&bob.token, T0 + hour).await.unwrap().is_some());
    assert_eq!(s.reset_password("r2", "new-hash", T0 + hour + 1).await.unwrap(), bob.id);
    assert_eq!(s.user_by_id(&bob.id).await.unwrap().unwrap().password_hash, "new-hash");
    for token in [bob.token.as_str(), "second"] {
        assert!(s.session_user(token, T0 + hour + 2).await.unwrap().is_none(), "session {token} ended");
    }
    assert_rule(s.reset_password("r1", "other", T0 + hour + 2).await, Rule::TokenInvalid);
    assert_rule(s.reset_password("r2", "other", T0 + hour + 2).await, Rule::TokenInvalid);

    // A reset for an unknown address: recorded with its mail suppressed, never usable.
    let decoy = user_token("d1", TokenPurpose::PasswordReset, None, "nobody@example.com", T0 + 2 * hour);
    let m = mail("nobody@example.com");
    s.issue_user_token(&decoy, &m, T0).await.unwrap();
    assert_eq!(s.mail_status(&m.id).await.unwrap().unwrap().status, "suppressed");
    assert!(s.claim_mail(T0 + DAY, T0 + DAY, 100).await.unwrap().iter().all(|c| c.id != m.id));
    assert_rule(s.reset_password("d1", "h", T0 + 1).await, Rule::TokenInvalid);
}

/// Sessions by id: described where opened, listed live only, touched forwards, ended one by one
/// (only the owner's), and a password change keeps exactly one.
pub(crate) async fn scenario_sessions(s: &Store) {
    let bob = signup(s, "bob", T0).await;
    let carol = signup(s, "carol", T0).await;
    let meta = SessionMeta { ip: Some("10.0.0.1".into()), user_agent: Some("Phone".into()), ..SessionMeta::new() };
    s.open_session("phone", &bob.id, T0 + 10, T0 + DAY, &meta).await.unwrap();
    let mut dup = meta.clone();
    dup.id = IdKind::Session.generate();
    assert!(s.open_session("phone", &bob.id, T0 + 10, T0 + DAY, &dup).await.is_err(), "one row per token");

    let found = s.session_by_token("phone", T0 + 20, i64::MIN).await.unwrap().unwrap();
    assert_eq!(
        (found.user.id.as_str(), found.session_id.as_str(), found.last_used_at),
        (bob.id.as_str(), meta.id.as_str(), T0 + 10)
    );
    // Idle since T0 + 10: refused once the cut-off passes it.
    assert!(s.session_by_token("phone", T0 + 20, T0 + 10).await.unwrap().is_none());
    s.touch_session(&meta.id, T0 + 30).await.unwrap();
    s.touch_session(&meta.id, T0 + 25).await.unwrap();
    assert_eq!(
        s.session_by_token("phone", T0 + 40, T0 + 10).await.unwrap().unwrap().last_used_at,
        T0 + 30,
        "never backwards"
    );

    let page = s.list_sessions(&bob.id, T0 + 40, i64::MIN, 50, None).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let phone = page.items.iter().find(|x| x.id == meta.id).unwrap();
    assert_eq!(
        (phone.ip.as_deref(), phone.user_agent.as_deref(), phone.created_at),
        (Some("10.0.0.1"), Some("Phone"), T0 + 10)
    );
    let first = s.list_sessions(&bob.id, T0 + 40, i64::MIN, 1, None).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let rest = s.list_sessions(&bob.id, T0 + 40, i64::MIN, 1, first.next_cursor.as_deref()).await.unwrap();
    assert_eq!((rest.items.len(), rest.next_cursor), (1, None));
    assert_eq!(
        s.list_sessions(&bob.id, T0 + 40, T0 + 20, 50, None).await.unwrap().items.len(),
        1,
        "idle ones are not live"
    );
    assert!(
        s.list_sessions(&bob.id, T0 + DAY, i64::MIN, 50, None).await.unwrap().items.iter().all(|x| x.id != meta.id),
        "expired"
    );

    // Only the owner ends a session.
    assert!(matches!(s.end_session(&carol.id, &meta.id).await, Err(StoreError::NotFound)));
    s.end_session(&bob.id, &meta.id).await.unwrap();
    assert!(s.session_by_token("phone", T0 + 50, i64::MIN).await.unwrap().is_none());
    assert!(matches!(s.end_session(&bob.id, &meta.id).await, Err(StoreError::NotFound)));

    // A password change keeps the one session named.
    let keep = s.session_by_token(&bob.token, T0 + 50, i64::MIN).await.unwrap().unwrap().session_id;
    s.create_session("laptop", &bob.id, T0 + 60, T0 + DAY).await.unwrap();
    s.create_session("tablet", &bob.id, T0 + 60, T0 + DAY).await.unwrap();
    assert_eq!(s.change_password(&bob.id, "new-hash", &keep).await.unwrap(), 2);
    assert_eq!(s.user_by_id(&bob.id).await.unwrap().unwrap().password_hash, "new-hash");
    assert!(s.session_by_token(&bob.token, T0 + 70, i64::MIN).await.unwrap().is_some());
    for t in ["laptop", "tablet"] {
        assert!(s.session_user(t, T0 + 70).await.unwrap().is_none());
    }
    assert!(s.session_user(&carol.token, T0 + 70).await.unwrap().is_some(), "others' sessions untouched");
}

/// Two-factor: enrolment, a step accepted once, recovery codes spent once, turning off forgets the
/// secret and the codes, and an org's requirement reads back with the org.
pub(crate) async fn scenario_two_factor(s: &Store) {
    let bob = signup(s, "bob", T0).await;
    let notice = || mail(&bob.email);
    let st = s.totp_state(&bob.id).await.unwrap();
    assert_eq!((st.secret, st.enabled, st.last_step), (None, false, 0));
    assert_rule(s.enable_totp(&bob.id, 5, &[], &notice(), T0).await, Rule::TotpNotStarted);
    s.start_totp(&bob.id, "SECRETONE").await.unwrap();
    s.start_totp(&bob.id, "SECRETTWO").await.unwrap();
    let codes = vec!["h1".to_string(), "h2".to_string()];
    assert!(s.enable_totp(&bob.id, 100, &codes, &notice(), T0).await.unwrap());
    let st = s.totp_state(&bob.id).await.unwrap();
    assert_eq!((st.secret.as_deref(), st.enabled, st.last_step), (Some("SECRETTWO"), true, 100));
    assert!(s.user_by_id(&bob.id).await.unwrap().unwrap().totp_enabled_at.is_some());
    assert_rule(s.start_totp(&bob.id, "SECRETTHREE").await, Rule::TotpEnabled);
    assert_eq!(s.mails_to(&bob.email).await.unwrap().len(), 1, "the notice is queued with the change");

    assert!(!s.use_totp_step(&bob.id, 100).await.unwrap(), "the confirming step is spent");
    assert!(!s.use_totp_step(&bob.id, 99).await.unwrap());
    assert!(s.use_totp_step(&bob.id, 101).await.unwrap());
    assert!(!s.use_totp_step(&bob.id, 101).await.unwrap(), "once");
    assert!(s.use_recovery_code(&bob.id, "h1", T0).await.unwrap());
    assert!(!s.use_recovery_code(&bob.id, "h1", T0).await.unwrap(), "once");
    assert!(!s.use_recovery_code(&bob.id, "nope", T0).await.unwrap());

    s.disable_totp(&bob.id, &notice(), T0 + 1).await.unwrap();
    let st = s.totp_state(&bob.id).await.unwrap();
    assert_eq!((st.secret, st.enabled), (None, false));
    assert!(!s.use_recovery_code(&bob.id, "h2", T0).await.unwrap(), "codes forgotten");
    assert_eq!(s.mails_to(&bob.email).await.unwrap().len(), 2);

    let team = new_org(s, &bob.id, "team", T0).await;
    assert!(!s.org_by_id(&team.id).await.unwrap().unwrap().require_2fa);
    s.set_require_2fa(&team.id, true, &ctx(&bob.id, T0 + 2)).await.unwrap();
    assert!(s.org_by_id(&team.id).await.unwrap().unwrap().require_2fa);
}

fn claim_of(org: &str, domain: &str, mode: &str) -> OrgDomain {
    OrgDomain {
        id: IdKind::Domain.generate(),
        org_id: org.into(),
        domain: domain.into(),
        mode: mode.into(),
        role: "member".into(),
        token: "tok".into(),
        verified_at: None,
        created_at: T0,
    }
}

/// Domain claims: one per org and domain, verified for one org at a time; matching people by
/// domain (members and unverified claims left out); joining checks seats; the match runs once.
pub(crate) async fn scenario_domains(s: &Store) {
    let cat = Catalog::builtin();
    let alice = signup(s, "alice", T0).await;
    let bob = signup(s, "bob", T0).await;
    let acme = new_org(s, &alice.id, "team", T0).await;
    let other = new_org(s, &bob.id, "team", T0).await;
    let d = claim_of(&acme.id, "acme.example", "auto_join");
    s.add_domain(&d, &ctx(&alice.id, T0)).await.unwrap();
    assert_rule(
        s.add_domain(&claim_of(&acme.id, "acme.example", "suggest"), &ctx(&alice.id, T0)).await,
        Rule::DomainTaken,
    );
    let theirs = claim_of(&other.id, "acme.example", "suggest");
    s.add_domain(&theirs, &ctx(&bob.id, T0)).await.unwrap();
    assert!(s.orgs_for_domain("acme.example", &bob.id).await.unwrap().is_empty(), "unverified claims match no one");

    s.mark_domain_verified(&acme.id, &d.id, &ctx(&alice.id, T0 + 1)).await.unwrap();
    s.mark_domain_verified(&acme.id, &d.id, &ctx(&alice.id, T0 + 2)).await.unwrap();
    assert_eq!(s.domain(&acme.id, &d.id).await.unwrap().unwrap().verified_at, Some(T0 + 1), "verified once");
    assert_rule(s.mark_domain_verified(&other.id, &theirs.id, &ctx(&bob.id, T0 + 3)).await, Rule::DomainTaken);
    assert!(s.domain(&other.id, &d.id).await.unwrap().is_none(), "another org's claim is not found");

    let found = s.orgs_for_domain("acme.example", &bob.id).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].0.id.as_str(), found[0].1.id.as_str(), found[0].1.mode.as_str()),
        (acme.id.as_str(), d.id.as_str(), "auto_join")
    );
    assert!(
        s.orgs_for_domain("acme.example", &alice.id).await.unwrap().is_empty(),
        "members are not offered their own org"
    );

    assert!(s.claim_domain_match(&bob.id, T0).await.unwrap());
    assert!(!s.claim_domain_match(&bob.id, T0 + 1).await.unwrap(), "once");
    s.join_by_domain(&acme.id, &bob.id, "member", json!({"method": "domain"}), &cat, &ctx(&bob.id, T0 + 4))
        .await
        .unwrap();
    assert_rule(
        s.join_by_domain(&acme.id, &bob.id, "member", json!({"method": "domain"}), &cat, &ctx(&bob.id, T0 + 5)).await,
        Rule::NotAllowed,
    );
    // A full org refuses (pro has one seat, its owner's).
    let pro = new_org(s, &alice.id, "pro", T0).await;
    let carol = signup(s, "carol", T0).await;
    assert_limit(
        s.join_by_domain(&pro.id, &carol.id, "member", json!({}), &cat, &ctx(&carol.id, T0 + 6)).await,
        Limit::MaxSeats,
    );

    let page = s.list_domains(&acme.id, 50, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    s.remove_domain(&acme.id, &d.id, &ctx(&alice.id, T0 + 7)).await.unwrap();
    assert!(matches!(s.remove_domain(&acme.id, &d.id, &ctx(&alice.id, T0 + 8)).await, Err(StoreError::NotFound)));
    // Free again: the other org may verify it now.
    s.mark_domain_verified(&other.id, &theirs.id, &ctx(&bob.id, T0 + 9)).await.unwrap();
}

/// Upgrading a database that has sessions: migration 4 gives each a session id (of the `ses_`
/// kind, so it can be listed and ended) and a last use, and the session keeps working.
pub(crate) async fn upgrade_keeps_sessions(backend: roost_test_kit::Backend) {
    let Some(db) = roost_test_kit::FreshDatabase::create_empty(backend).await else {
        eprintln!("{}", super::SKIPPED);
        return;
    };
    // Migrations (and this test's rows from before them) are the owner's.
    let store = Store::connect(db.admin_url()).await.unwrap();
    let dialect: &dyn roost_store::Dialect = match backend {
        roost_test_kit::Backend::Sqlite => &roost_store::Sqlite,
        roost_test_kit::Backend::Postgres => &roost_store::Postgres,
    };
    // The database as it stood before migration 4, with a user signed in.
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS roost_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    for m in dialect.migrations().iter().filter(|m| m.version < 4) {
        sqlx::raw_sql(m.sql).execute(store.pool()).await.unwrap();
        sqlx::query("INSERT INTO roost_migrations (version, name, applied_at) VALUES ($1, $2, 0)")
            .bind(m.version)
            .bind(m.name)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    sqlx::raw_sql(
        "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ('usr_old', 'old@example.com', 'Old', 'h', 1); \
         INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ('0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'usr_old', 5, 9000000000000)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let later: Vec<i64> = dialect.migrations().iter().map(|m| m.version).filter(|v| *v >= 4).collect();
    assert_eq!(store.migrate().await.unwrap(), later, "migration 4 and every one after it");
    let found = store.session_by_token(token, T0, i64::MIN).await.unwrap().expect("the session survives");
    assert!(IdKind::Session.is_valid(&found.session_id), "{}", found.session_id);
    assert_eq!((found.user.id.as_str(), found.last_used_at), ("usr_old", 5));
    store.end_session("usr_old", &found.session_id).await.unwrap();
    assert!(store.session_user(token, T0).await.unwrap().is_none());
    store.close().await;
}
