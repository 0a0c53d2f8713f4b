//! The store's delivery lease, straight on both backends: one holder at a time, a loser can
//! neither release nor use the winner's lease, an expired lease can be taken over, and the cursor
//! moves only for the holder.

use roost_domain::IdKind;
use roost_store::{AfterAttempt, Attempt, Store, Webhook};
use roost_test_kit::{Backend, FreshDatabase};

const T0: i64 = 1_750_000_000_000;

async fn store(backend: Backend) -> Option<(FreshDatabase, Store)> {
    let db = FreshDatabase::create(backend).await?;
    let s = Store::connect(db.url()).await.unwrap();
    s.migrate().await.unwrap();
    Some((db, s))
}

fn attempt(event: &str, n: i64) -> Attempt {
    Attempt { event_id: event.into(), attempt: n, at: T0, status_code: Some(204), error: None, duration_ms: 1 }
}

async fn one_holder_at_a_time(s: Store) {
    let ctx = roost_store::Ctx { actor: roost_store::Actor::system(), ip: None, now: T0 };
    let org = IdKind::Org.generate();
    let cursor = IdKind::Event.generate();
    let w = Webhook {
        id: IdKind::Webhook.generate(),
        org_id: org.clone(),
        url: "http://127.0.0.1:9/".into(),
        events: vec!["*".into()],
        description: None,
        enabled: true,
        secret: "whsec_AAAA".into(),
        old_secret: None,
        old_secret_until: None,
        created_at: T0,
        cursor: cursor.clone(),
        attempt: 0,
        next_at: 0,
    };
    s.create_webhook(&w, &ctx).await.unwrap();
    let id = w.id.as_str();
    let a = s.claim_webhook(id, "a", T0, T0, T0 + 1_000).await.unwrap();
    assert_eq!(a.map(|w| w.cursor), Some(cursor.clone()), "a takes the lease");
    assert!(s.claim_webhook(id, "b", T0, T0 + 999, T0 + 2_000).await.unwrap().is_none(), "b must wait");
    // b can neither release nor use a's lease.
    s.release_webhook(id, "b").await.unwrap();
    assert!(s.claim_webhook(id, "c", T0, T0 + 10, T0 + 2_000).await.unwrap().is_none(), "still a's");
    let e1 = IdKind::Event.generate();
    let after = Some(AfterAttempt::Delivered { month_start: T0 });
    assert!(!s.finish_attempt(id, &org, "b", &attempt(&e1, 1), after.clone(), T0 + 2_000).await.unwrap());
    assert_eq!(s.webhook_by_id(id).await.unwrap().unwrap().cursor, cursor, "b did not move the cursor");
    // a delivers: the cursor moves, the month's usage counts it.
    assert!(s.finish_attempt(id, &org, "a", &attempt(&e1, 1), after, T0 + 1_000).await.unwrap());
    assert_eq!(s.webhook_by_id(id).await.unwrap().unwrap().cursor, e1);
    assert_eq!(s.webhook_usage(&org, T0).await.unwrap(), 1);
    // An expired lease is taken over; a released one at once.
    let b = s.claim_webhook(id, "b", T0, T0 + 1_000, T0 + 3_000).await.unwrap();
    assert_eq!(b.map(|w| w.cursor), Some(e1.clone()), "a's lease ran out");
    s.release_webhook(id, "b").await.unwrap();
    assert!(s.claim_webhook(id, "c", T0, T0 + 1_001, T0 + 3_000).await.unwrap().is_some());
    // Retry, then disable: the endpoint stops being due, and webhook.disabled is written once.
    let fail = Attempt { status_code: Some(500), ..attempt(&IdKind::Event.generate(), 1) };
    let retry = Some(AfterAttempt::Retry { next_at: T0 + 5_000 });
    assert!(s.finish_attempt(id, &org, "c", &fail, retry, T0 + 3_000).await.unwrap());
    s.release_webhook(id, "c").await.unwrap();
    assert!(s.claim_webhook(id, "d", T0 + 4_999, T0 + 5_000, T0 + 9_000).await.unwrap().is_none(), "not due yet");
    assert!(s.claim_webhook(id, "d", T0 + 5_000, T0 + 5_000, T0 + 9_000).await.unwrap().is_some(), "due");
    assert!(s.finish_attempt(id, &org, "d", &fail, Some(AfterAttempt::Disable), T0).await.unwrap());
    assert!(!s.finish_attempt(id, &org, "d", &fail, Some(AfterAttempt::Disable), T0).await.unwrap(), "once");
    let w = s.webhook_by_id(id).await.unwrap().unwrap();
    assert!(!w.enabled);
    let disabled = s.list_events(&org, Some(roost_domain::ledger::EventType::WebhookDisabled), 10, None).await.unwrap();
    assert_eq!(disabled.items.len(), 1, "{:?}", disabled.items);
    let log = s.list_deliveries(id, 10, None).await.unwrap();
    // Every attempt is logged, also those whose outcome came too late to move the endpoint.
    assert_eq!(log.items.len(), 5, "{:?}", log.items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_sqlite() {
    let (_db, s) = store(Backend::Sqlite).await.unwrap();
    one_holder_at_a_time(s.clone()).await;
    s.close().await;
}

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_postgres() {
    match store(Backend::Postgres).await {
        Some((_db, s)) => {
            one_holder_at_a_time(s.clone()).await;
            s.close().await;
        }
        None => eprintln!("{}", roost_test_kit::SKIPPED),
    }
}
}
