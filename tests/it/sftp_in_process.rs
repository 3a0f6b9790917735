//! The SFTP session driven in this process over an in-memory pipe, with no SSH around it:
//! raw packets that no well-behaved client sends (out-of-order writes, a budget overflow,
//! truncated and oversized packets, a WRITE after CLOSE, garbage), and the russh-sftp client
//! for the ordinary path. Each test takes milliseconds beyond the gateway's start.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use pension_gateway::gateway::SessionContext;
use pension_gateway::sftp::{serve, SessionEnd, SessionLimits};
use russh_sftp::protocol::{
    Close, FileAttributes, Init, Open, OpenFlags, Packet, Status, StatusCode, Write as WritePacket,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;

use crate::support::{logins, Database, TestGateway, PASSWORD};

const UPLOAD: &str = "/GP-1001/inbox/affiliations/in-order.csv";

fn limits(max_bytes_in_flight: usize) -> SessionLimits {
    SessionLimits {
        max_open_handles: 16,
        max_bytes_in_flight,
        max_upload_bytes: 1 << 30,
        idle_timeout: std::time::Duration::from_secs(60),
    }
}

/// A session of the inscription user served on one end of a pipe; the other end is returned.
async fn session(
    gateway: &TestGateway,
    limits: SessionLimits,
) -> (DuplexStream, tokio::task::JoinHandle<SessionEnd>, watch::Sender<bool>) {
    let context = SessionContext { session_id: "in-process".into(), remote_addr: "127.0.0.1:1".parse().unwrap() };
    let principal = gateway
        .gateway
        .authenticate_password(logins::INSCRIPTION, PASSWORD, &context)
        .await
        .expect("the inscription user logs in");
    let (client, server) = tokio::io::duplex(4 << 20);
    let (shutdown, shutdown_signal) = watch::channel(false);
    let served = tokio::spawn(serve(server, Arc::clone(&gateway.gateway), principal, context, limits, shutdown_signal));
    (client, served, shutdown)
}

async fn send(stream: &mut DuplexStream, packet: Packet) {
    let bytes = Bytes::try_from(packet).expect("encodable");
    stream.write_all(&bytes).await.unwrap();
}

async fn receive(stream: &mut DuplexStream) -> Packet {
    let length = stream.read_u32().await.expect("an answer");
    let mut body = vec![0u8; length as usize];
    stream.read_exact(&mut body).await.unwrap();
    Packet::try_from(&mut Bytes::from(body)).expect("a well-formed answer")
}

async fn status(stream: &mut DuplexStream) -> Status {
    match receive(stream).await {
        Packet::Status(status) => status,
        other => panic!("expected a status, got {other:?}"),
    }
}

async fn init(stream: &mut DuplexStream) {
    send(stream, Packet::Init(Init { version: 3, extensions: HashMap::new() })).await;
    assert!(matches!(receive(stream).await, Packet::Version(_)));
}

async fn open_for_writing(stream: &mut DuplexStream, id: u32, path: &str) -> String {
    let pflags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    send(stream, Packet::Open(Open { id, filename: path.into(), pflags, attrs: FileAttributes::default() })).await;
    match receive(stream).await {
        Packet::Handle(handle) => handle.handle,
        other => panic!("expected a handle, got {other:?}"),
    }
}

fn write(id: u32, handle: &str, offset: u64, data: &[u8]) -> Packet {
    Packet::Write(WritePacket { id, handle: handle.into(), offset, data: data.to_vec() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_out_of_order_make_one_file_in_order() {
    let gateway = TestGateway::spawn(Database::Sqlite).await;
    let (mut stream, served, _shutdown) = session(&gateway, limits(8 << 20)).await;
    init(&mut stream).await;
    let handle = open_for_writing(&mut stream, 1, UPLOAD).await;
    let parts: [(u64, &[u8]); 3] = [(10, b"third\n"), (0, b"first\n"), (6, b"sec\n")];
    for (id, (offset, data)) in (2u32..).zip(parts) {
        send(&mut stream, write(id, &handle, offset, data)).await;
    }
    let mut answered = Vec::new();
    for _ in 0..3 {
        let status = status(&mut stream).await;
        assert_eq!(status.status_code, StatusCode::Ok, "{status:?}");
        answered.push(status.id);
    }
    answered.sort_unstable();
    assert_eq!(answered, [2, 3, 4]);
    send(&mut stream, Packet::Close(Close { id: 5, handle })).await;
    assert_eq!(status(&mut stream).await.status_code, StatusCode::Ok);
    drop(stream);
    assert_eq!(served.await.unwrap(), SessionEnd::ClientClosed);

    let uploads = gateway.registry().uploads(None).await.unwrap();
    let upload = uploads.iter().find(|u| u.file_name == "in-order.csv").expect("recorded");
    assert_eq!(upload.size, 16);
    assert_eq!(upload.sha256, hex::encode(Sha256::digest(b"first\nsec\nthird\n")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_close_is_answered_and_changes_nothing() {
    let gateway = TestGateway::spawn(Database::Sqlite).await;
    let (mut stream, served, _shutdown) = session(&gateway, limits(8 << 20)).await;
    init(&mut stream).await;
    let handle = open_for_writing(&mut stream, 1, UPLOAD).await;
    send(&mut stream, write(2, &handle, 0, b"whole\n")).await;
    assert_eq!(status(&mut stream).await.status_code, StatusCode::Ok);
    send(&mut stream, Packet::Close(Close { id: 3, handle: handle.clone() })).await;
    assert_eq!(status(&mut stream).await.status_code, StatusCode::Ok);
    send(&mut stream, write(4, &handle, 6, b"late\n")).await;
    let late = status(&mut stream).await;
    assert_eq!((late.id, late.status_code), (4, StatusCode::Failure));
    assert_eq!(late.error_message, "unknown handle");
    drop(stream);
    assert_eq!(served.await.unwrap(), SessionEnd::ClientClosed);
    let uploads = gateway.registry().uploads(None).await.unwrap();
    assert_eq!(uploads.iter().find(|u| u.file_name == "in-order.csv").map(|u| u.size), Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_left_at_close_fails_the_upload_and_records_nothing() {
    let gateway = TestGateway::spawn(Database::Sqlite).await;
    let (mut stream, served, _shutdown) = session(&gateway, limits(8 << 20)).await;
    init(&mut stream).await;
    let handle = open_for_writing(&mut stream, 1, UPLOAD).await;
    send(&mut stream, write(2, &handle, 100, b"after a gap")).await;
    send(&mut stream, Packet::Close(Close { id: 3, handle })).await;
    let (first, second) = (status(&mut stream).await, status(&mut stream).await);
    assert_eq!((first.id, first.status_code), (2, StatusCode::Failure), "the waiting part is answered");
    assert_eq!((second.id, second.status_code), (3, StatusCode::Failure), "and the close fails: {second:?}");
    drop(stream);
    assert_eq!(served.await.unwrap(), SessionEnd::ClientClosed);
    assert!(gateway.registry().uploads(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_bytes_in_flight_than_the_budget_end_the_session() {
    let gateway = TestGateway::spawn(Database::Sqlite).await;
    let (mut stream, served, _shutdown) = session(&gateway, limits(4096)).await;
    init(&mut stream).await;
    let handle = open_for_writing(&mut stream, 1, UPLOAD).await;
    send(&mut stream, write(2, &handle, 0, &[b'x'; 8192])).await;
    assert_eq!(served.await.unwrap(), SessionEnd::Violation("too many bytes sent at once"));
    assert!(gateway.registry().uploads(None).await.unwrap().is_empty(), "the interrupted upload left nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_or_truncated_packet_ends_the_session() {
    let gateway = TestGateway::spawn(Database::Sqlite).await;
    let (mut stream, served, _shutdown) = session(&gateway, limits(8 << 20)).await;
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert_eq!(served.await.unwrap(), SessionEnd::Violation("packet length out of bounds"));

    let (mut stream, served, _shutdown) = session(&gateway, limits(8 << 20)).await;
    stream.write_all(&100u32.to_be_bytes()).await.unwrap();
    stream.write_all(&[1, 0, 0, 0, 3]).await.unwrap();
    drop(stream);
    assert_eq!(served.await.unwrap(), SessionEnd::Violation("connection closed inside a packet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_gets_bad_message_and_the_session_goes_on() {
    let gateway = TestGateway::spawn(Database::Sqlite).await;
    let (mut stream, served, _shutdown) = session(&gateway, limits(8 << 20)).await;
    init(&mut stream).await;
    // An OPEN (3) whose file name claims more bytes than the packet holds.
    let mut body = vec![3u8];
    body.extend_from_slice(&42u32.to_be_bytes());
    body.extend_from_slice(&1000u32.to_be_bytes());
    body.extend_from_slice(b"short");
    stream.write_all(&(body.len() as u32).to_be_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let answer = status(&mut stream).await;
    assert_eq!((answer.id, answer.status_code), (42, StatusCode::BadMessage));
    // The session still serves.
    let handle = open_for_writing(&mut stream, 43, UPLOAD).await;
    assert!(!handle.is_empty());
    drop(stream);
    assert_eq!(served.await.unwrap(), SessionEnd::ClientClosed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_russh_sftp_client_uploads_and_lists_over_the_pipe() {
    let gateway = TestGateway::spawn(Database::Sqlite).await;
    let (stream, served, _shutdown) = session(&gateway, limits(8 << 20)).await;
    let sftp = russh_sftp::client::SftpSession::new(stream).await.expect("session");
    sftp.write(UPLOAD, b"a;b\n").await.expect("upload");
    let names: Vec<String> =
        sftp.read_dir("/GP-1001/inbox/affiliations").await.unwrap().map(|entry| entry.file_name()).collect();
    assert!(names.contains(&"in-order.csv".to_string()), "{names:?}");
    sftp.close().await.unwrap();
    drop(sftp);
    assert_eq!(served.await.unwrap(), SessionEnd::ClientClosed);
}

/// Whole packets a hostile client could frame: a known type byte or any, a request id, then
/// random bytes. The session answers each or ends it as a violation; it never panics, and it
/// always ends when the client goes.
fn hostile_packets() -> impl proptest::strategy::Strategy<Value = Vec<Vec<u8>>> {
    use proptest::prelude::*;
    let packet =
        (prop_oneof![1u8..=20, any::<u8>(), Just(200u8)], any::<u32>(), proptest::collection::vec(any::<u8>(), 0..96))
            .prop_map(|(kind, id, rest)| {
                let mut body = vec![kind];
                body.extend_from_slice(&id.to_be_bytes());
                body.extend_from_slice(&rest);
                body
            });
    proptest::collection::vec(packet, 1..12)
}

#[test]
fn fuzz_hostile_packet_sequences_are_answered_or_end_the_session() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let gateway = runtime.block_on(TestGateway::spawn(Database::Sqlite));
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config::with_cases(cases));
    runner
        .run(&hostile_packets(), |packets| {
            runtime.block_on(async {
                let (mut stream, served, _shutdown) = session(&gateway, limits(1 << 20)).await;
                init(&mut stream).await;
                for body in &packets {
                    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
                    framed.extend_from_slice(body);
                    if stream.write_all(&framed).await.is_err() {
                        break;
                    }
                }
                // Read whatever comes back, then leave: the session must end on its own.
                let drained = async {
                    let mut sink = [0u8; 4096];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                };
                let _ = tokio::time::timeout(std::time::Duration::from_millis(100), drained).await;
                drop(stream);
                let end = tokio::time::timeout(std::time::Duration::from_secs(10), served)
                    .await
                    .expect("the session ends once the client is gone")
                    .expect("the session never panics");
                assert!(matches!(end, SessionEnd::ClientClosed | SessionEnd::Violation(_)), "{end:?}");
            });
            Ok(())
        })
        .unwrap();
    drop(gateway);
}
