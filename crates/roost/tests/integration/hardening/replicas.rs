//! Replica cache invalidation across a dropped `LISTEN` connection (PostgreSQL only).

use std::time::{Duration, Instant};

use roost::Client;

use crate::support::{expect_problem, expect_status, personal_ws};
use roost_test_kit::TestServer;

use super::{assert_key_works, create_key, id_of, key_client};

// 3. ------------------------------------------------------------------------------------------------

/// Polls until `c` gets 401 on `GET /v1/me`, for at most `within`.
async fn rejected_within(c: &Client, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if c.get("/v1/me").await.unwrap().status == 401 {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Terminates every connection of the test database whose last query was a `LISTEN` (the key
/// listeners of both replicas), waiting up to 3 s for one to exist.
async fn terminate_listeners(conn: &mut sqlx::PgConnection) {
    for _ in 0..100 {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN%' AND datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("terminate LISTEN connections");
        if !killed.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("no LISTEN connection to terminate on the test database");
}

/// A replica hears of revocations through `LISTEN`; when that connection drops, it must not keep
/// trusting its cache: a key revoked meanwhile is refused within seconds, and the listener comes back.
async fn replica_survives_a_dropped_listen_connection(a: TestServer) {
    use sqlx::Connection;

    let b = a.replica().await;
    let (alice, body) = a.signup("Alice").await;
    let ws = personal_ws(&body);

    // The listener works: a key cached on B, revoked through A.
    let k1 = create_key(&alice, &ws, "one").await;
    let on_b = key_client(&b, &k1);
    assert_key_works(&on_b, &id_of(&k1)).await;
    assert_key_works(&on_b, &id_of(&k1)).await;
    expect_status(&alice.delete(&format!("/v1/keys/{}", id_of(&k1))).await.unwrap(), 204);
    assert!(
        rejected_within(&on_b, Duration::from_secs(5)).await.is_some(),
        "replica B kept accepting a key revoked through replica A"
    );

    // Drop the LISTEN connections of this database, then revoke through A a key B has cached.
    let k2 = create_key(&alice, &ws, "two").await;
    let on_b = key_client(&b, &k2);
    assert_key_works(&on_b, &id_of(&k2)).await;
    assert_key_works(&on_b, &id_of(&k2)).await;
    let mut conn = sqlx::PgConnection::connect(&a.admin_url).await.expect("connect to the test database");
    terminate_listeners(&mut conn).await;
    expect_status(&alice.delete(&format!("/v1/keys/{}", id_of(&k2))).await.unwrap(), 204);
    assert!(
        rejected_within(&on_b, Duration::from_secs(5)).await.is_some(),
        "after its LISTEN connection was dropped, replica B kept accepting a key revoked through A for 5 s"
    );
    expect_problem(&on_b.get("/v1/me").await.unwrap(), 401, "unauthenticated");

    // A notification lost for certain: the key is revoked in the database behind both servers'
    // backs (no NOTIFY), then the LISTEN connections drop. Reconnecting must not trust the cache.
    let k3 = create_key(&alice, &ws, "three").await;
    let on_b = key_client(&b, &k3);
    assert_key_works(&on_b, &id_of(&k3)).await;
    assert_key_works(&on_b, &id_of(&k3)).await;
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
        .bind(crate::support::now_ms(&a))
        .bind(id_of(&k3))
        .execute(&mut conn)
        .await
        .expect("revoke in the database");
    terminate_listeners(&mut conn).await;
    assert!(
        rejected_within(&on_b, Duration::from_secs(5)).await.is_some(),
        "replica B still trusts its cache 5 s after its LISTEN connection dropped (a revocation was missed)"
    );
    conn.close().await.ok();

    // And the listener is back: the next revocation reaches B as well.
    let k4 = create_key(&alice, &ws, "four").await;
    let on_b = key_client(&b, &k4);
    assert_key_works(&on_b, &id_of(&k4)).await;
    assert_key_works(&on_b, &id_of(&k4)).await;
    expect_status(&alice.delete(&format!("/v1/keys/{}", id_of(&k4))).await.unwrap(), 204);
    assert!(
        rejected_within(&on_b, Duration::from_secs(5)).await.is_some(),
        "after the listener reconnected, replica B kept accepting a key revoked through A"
    );
}

// Replicas exist only on PostgreSQL.
postgres_only!(replica_survives_a_dropped_listen_connection);
