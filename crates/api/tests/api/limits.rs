//! What a stranger on the network can do to the API's process: hold connections open, send
//! huge headers, open more connections than it serves, or try passwords across many names.
//! Each is cut off or slowed, and the API keeps serving everyone else.

use crate::support::{Harness, TestDb};
use reqwest::StatusCode;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use wasl_api::Limits;
use wasl_api::serve::ServerLimits;

/// A raw connection to the API.
fn connect(h: &Harness) -> TcpStream {
    let address = h.base.trim_start_matches("http://");
    let stream = TcpStream::connect(address).expect("connect");
    // A bound for the test itself, far above the limits it checks.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    stream
}

/// Reads until the server closes the connection (or the test's bound passes: an error).
fn read_until_closed(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn limits(server: ServerLimits) -> Limits {
    Limits {
        server,
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off_and_others_are_served() {
    let h = Harness::start_with(
        TestDb::sqlite(),
        limits(ServerLimits {
            header_timeout: Duration::from_secs(1),
            ..ServerLimits::default()
        }),
    )
    .await;
    let slow = tokio::task::spawn_blocking({
        let mut stream = connect(&h);
        move || {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: wasl\r\nX-Slow: ")
                .expect("a partial request");
            read_until_closed(&mut stream)
        }
    });
    // Meanwhile everyone else is served.
    assert_eq!(h.anonymous().get("/healthz").await.status, StatusCode::OK);
    let answer = slow
        .await
        .expect("join")
        .expect("closed by the server, not by the test's bound");
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_header_is_refused() {
    let h = Harness::start(TestDb::sqlite()).await;
    let answer = tokio::task::spawn_blocking({
        let mut stream = connect(&h);
        move || {
            let big = "x".repeat(200 * 1024);
            // The server may close before all of it is sent: that is a refusal too.
            let _ = stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: wasl\r\nX-Big: {big}\r\n\r\n").as_bytes());
            read_until_closed(&mut stream).unwrap_or_default()
        }
    })
    .await
    .expect("join");
    assert!(!answer.contains("200 OK"), "a 200 KB header was taken: {answer:.80}");
    assert_eq!(h.anonymous().get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_once() {
    let h = Harness::start_with(
        TestDb::sqlite(),
        limits(ServerLimits {
            max_connections: 3,
            ..ServerLimits::default()
        }),
    )
    .await;
    let held: Vec<TcpStream> = (0..3).map(|_| connect(&h)).collect();
    // Let the server accept the three.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = tokio::task::spawn_blocking({
        let mut stream = connect(&h);
        move || {
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: wasl\r\n\r\n");
            read_until_closed(&mut stream).unwrap_or_default()
        }
    })
    .await
    .expect("join");
    assert!(!refused.contains("200 OK"), "a fourth connection was served: {refused}");
    drop(held);
    // With the others gone, a new client is served again.
    let mut served = false;
    for _ in 0..50 {
        let answer = tokio::task::spawn_blocking({
            let mut stream = connect(&h);
            move || {
                let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: wasl\r\nConnection: close\r\n\r\n");
                read_until_closed(&mut stream).unwrap_or_default()
            }
        })
        .await
        .expect("join");
        if answer.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the API served no one after the held connections closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spraying_passwords_across_names_from_one_client_is_slowed() {
    let h = Harness::start(TestDb::sqlite()).await;
    let client = h.anonymous();
    let mut throttled = None;
    for n in 0..40 {
        let answer = client
            .post(
                "/v1/login",
                json!({"username": format!("test-sprayed-{n}"), "password": "test wrong password"}),
            )
            .await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((n, answer));
            break;
        }
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    }
    let (n, answer) = throttled.expect("40 names from one client were never slowed");
    assert_eq!(n, 20, "the client is slowed after twenty failures, whatever the names");
    assert!(answer.headers.get("retry-after").is_some());
}
