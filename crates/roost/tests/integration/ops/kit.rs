//! The test kit respects the shared PostgreSQL: a test that fails still drops its database.

use std::sync::{Arc, Mutex};

use sqlx::Connection;

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_still_drops_its_database() {
    let Some(admin) = roost_test_kit::pg_url() else {
        println!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let url = Arc::new(Mutex::new(String::new()));
    let seen = url.clone();
    let a = admin.clone();
    let failing = tokio::spawn(async move {
        let db = roost_test_kit::FreshDatabase::postgres(&a).await;
        let _store = db.store().await;
        *seen.lock().unwrap() = db.url().to_string();
        panic!("a test failing with its database open");
    });
    assert!(failing.await.unwrap_err().is_panic());
    let url = url.lock().unwrap().clone();
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    assert!(name.starts_with(roost_test_kit::db::DB_PREFIX), "{name}");
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "{name} was left behind by a failing test");
    conn.close().await.unwrap();
}
}
