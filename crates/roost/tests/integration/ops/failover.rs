//! Failover: a primary and a synchronous streaming standby of the test's own (`initdb`,
//! `pg_basebackup -R`, `synchronous_standby_names`), roost serving charges on the primary, the
//! primary crashed mid-load (`pg_ctl stop -m immediate`), the standby promoted and roost restarted
//! against it: every acknowledged charge is there and the ledger's invariants hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use roost::Client;
use roost_test_kit::peers::PgCluster;
use roost_test_kit::{Backend, TestServer};
use serde_json::json;
use sqlx::Connection;
use tokio::sync::Mutex;

use crate::credits::common::{business, charge, idem, topup};
use crate::support::expect_status;

/// A running primary whose commits wait for a running standby, and that standby.
async fn pair() -> Result<(PgCluster, PgCluster), String> {
    let primary = PgCluster::init("synchronous_standby_names = '*'\nsynchronous_commit = on\nwal_keep_size = 64MB\n")?;
    primary.start()?;
    // The base backup copies the primary's settings: once promoted, the standby must not wait for
    // a standby of its own.
    let standby = PgCluster::standby_of(&primary, "hot_standby = on\nsynchronous_standby_names = ''\n")?;
    standby.start()?;
    let mut conn = sqlx::PgConnection::connect(&primary.url("postgres", "")).await.map_err(|e| e.to_string())?;
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let state: Option<String> = sqlx::query_scalar("SELECT sync_state FROM pg_stat_replication LIMIT 1")
            .fetch_optional(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if state.as_deref() == Some("sync") {
            break;
        }
        if Instant::now() > until {
            return Err(format!("the standby never became synchronous (state {state:?})"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sqlx::raw_sql("CREATE DATABASE roost").execute(&mut conn).await.map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())?;
    Ok((primary, standby))
}

async fn server_on(url: String) -> TestServer {
    TestServer::start_with(Backend::Sqlite, move |st| st.database_url = url).await.unwrap()
}

async fn failover_keeps_every_acknowledged_charge() {
    let (primary, standby) = match pair().await {
        Ok(p) => p,
        Err(why) if why.starts_with("SKIPPED") => return println!("{why}"),
        Err(why) => panic!("cannot start a primary and a standby: {why}"),
    };
    let s = server_on(primary.url("roost", "")).await;
    let (owner, _, org, ws) = business(&s, "Failover").await;
    topup(&owner, &org, 10_000_000).await;
    let r = owner.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "load"})).await.unwrap();
    expect_status(&r, 201);
    let secret = r.str("secret").to_string();
    let key = s.client.with_token(&secret);

    // Charges stream in from four clients; only answered 201s count as acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (key, stop, acked) = (key.clone(), stop.clone(), acked.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // A request cut off by the crash gets no answer (or a late 503): not acknowledged.
                let body = json!({"amount": 7, "action": "job"});
                let k = idem();
                let sent = key.post_idem("/v1/charges", &k, &body);
                match tokio::time::timeout(Duration::from_secs(5), sent).await {
                    Ok(Ok(r)) if r.status == 201 => acked.lock().await.push(r.str("id").to_string()),
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The primary crashes mid-load.
    primary.stop("immediate").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(acked.len() > 10, "too few charges before the crash ({}) for the test to mean much", acked.len());
    drop(s);

    // The standby takes over; roost restarts against it.
    standby.promote().unwrap();
    let url = standby.url("roost", "");
    let s = server_on(url.clone()).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let present: Vec<String> =
        sqlx::query_scalar("SELECT id FROM ledger_entries WHERE org_id = $1 AND type = 'charge'")
            .bind(&org)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    let missing: Vec<&String> = acked.iter().filter(|id| !present.contains(id)).collect();
    assert!(missing.is_empty(), "{} acknowledged charges lost in the failover: {missing:?}", missing.len());
    roost_test_kit::ledger::assert_ledger(&url).await;

    // And it serves: the same key charges on the promoted server.
    let key = Client::new(&s.base).with_token(&secret);
    let r = charge(&key, 7, "job").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    roost_test_kit::ledger::assert_ledger(&url).await;
}

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_synchronous_standby_postgres() {
    failover_keeps_every_acknowledged_charge().await;
}
}
