//! HTTP connection limits with real, slow clients over TCP: a header sent a byte at a time, an idle
//! connection, and more connections than the cap.

use std::time::{Duration, Instant};

use roost_test_kit::{Backend, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server(adjust: impl FnOnce(&mut roost_server::Settings)) -> (TestServer, String) {
    let s = TestServer::start_with(Backend::Sqlite, adjust).await.expect("sqlite server");
    let addr = s.base.trim_start_matches("http://").to_string();
    (s, addr)
}

/// Reads until the server closes the connection; how long that took.
async fn until_closed(c: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within.saturating_sub(started.elapsed()), c.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open for {within:?}"),
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_sent_a_byte_at_a_time_is_cut_off() {
    let (_s, addr) = server(|s| s.http_header_timeout_ms = 600).await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for b in request {
        if c.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    if !closed {
        until_closed(&mut c, Duration::from_secs(3)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(3), "cut off after {:?}", started.elapsed());
    // A prompt client on a kept-alive connection is served normally.
    let r = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed() {
    let (_s, addr) = server(|s| s.http_idle_timeout_ms = 500).await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let took = until_closed(&mut c, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(400), "closed too early: {took:?}");
    // After a request, a kept-alive connection that stays idle goes the same way.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = c.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    until_closed(&mut c, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_their_turn() {
    let (_s, addr) = server(|s| {
        s.http_max_connections = 2;
        s.http_header_timeout_ms = 1500;
    })
    .await;
    // The harness's own client keeps a connection alive after start-up: let the server close it.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mut held = vec![TcpStream::connect(&addr).await.unwrap(), TcpStream::connect(&addr).await.unwrap()];
    // Both are accepted and served.
    for c in &mut held {
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
    let mut third = TcpStream::connect(&addr).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let r = tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf)).await;
    assert!(r.is_err(), "a third connection was served while two were open: {r:?}");
    drop(held.pop());
    // The waiting connection is accepted and answered once a slot is free.
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(third);
    let r = reqwest::Client::new().get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "served once a slot was free");
}
