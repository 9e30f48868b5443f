//! The writer against a real loopback connection whose far end reads when
//! the test says so.

use std::io::ErrorKind;
use std::time::Duration;

use anyvip_fsm::{Action, Event, Fsm, SessionConfig};
use anyvip_proto::Asn;
use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

use super::{Failure, Full, Writer, RESET_GRACE};

/// A connection id as the FSM issues them (the only way to get one).
fn connection_id() -> anyvip_fsm::ConnectionId {
    let config = SessionConfig::new(Asn(65001), "10.0.0.1".parse().unwrap(), Asn(65002));
    let mut fsm = Fsm::new(config, std::time::Instant::now());
    fsm.handle(std::time::Instant::now(), Event::ManualStart)
        .into_iter()
        .find_map(|a| match a {
            Action::Connect { connection } => Some(connection),
            _ => None,
        })
        .unwrap()
}

/// (our end, the peer's end). The peer's receive buffer is small, so a
/// peer that does not read fills the path quickly.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let (peer, ours) = tokio::join!(
        socket.connect(listener.local_addr().unwrap()),
        listener.accept()
    );
    (ours.unwrap().0, peer.unwrap())
}

/// A writer on our end of a fresh pair; the read half is dropped, as the
/// peer task drops it with the connection.
async fn writer(
    capacity: usize,
    stall: Duration,
) -> (Writer, TcpStream, mpsc::UnboundedReceiver<Failure>) {
    let (ours, peer) = pair().await;
    let (_read, write) = ours.into_split();
    let (failures_tx, failures) = mpsc::unbounded_channel();
    let w = Writer::spawn(connection_id(), write, capacity, stall, failures_tx);
    (w, peer, failures)
}

/// Everything the peer reads until the end of the stream, and how it
/// ended.
async fn read_all(peer: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), peer.read(&mut chunk)).await {
            Err(_) => panic!("nothing for 10 s after {} bytes", got.len()),
            Ok(Ok(0)) => return (got, Ok(())),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return (got, Err(e)),
        }
    }
}

/// Queue 4 kB messages (the BGP maximum) until the queue is full; how
/// many it took.
fn fill(w: &Writer) -> usize {
    let mut n = 0;
    while w.send(Bytes::from(vec![0xab; 4096])) == Ok(()) {
        n += 1;
    }
    n
}

/// Fill the queue, let the writer run, again, until it takes nothing:
/// the kernel buffers are full too and the writer is stuck in a write.
/// How many messages it took.
async fn jam(w: &Writer) -> usize {
    let mut taken = 0;
    for _ in 0..1000 {
        match fill(w) {
            0 => return taken,
            n => taken += n,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the peer does not read, yet the writer took {taken} messages");
}

#[tokio::test]
async fn messages_go_out_in_order_and_close_flushes_them_before_the_fin() {
    let (w, mut peer, _failures) = writer(8, Duration::from_secs(10)).await;
    for i in 0..5u8 {
        w.send(Bytes::from(vec![i; 3])).unwrap();
    }
    let task = w.close();
    let (got, end) = read_all(&mut peer).await;
    assert_eq!(got, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    assert!(end.is_ok(), "a clean FIN, got {end:?}");
    task.await.unwrap();
}

#[tokio::test]
async fn a_peer_that_does_not_read_fills_the_queue_and_sending_never_waits() {
    let (w, _peer, _failures) = writer(16, Duration::from_secs(60)).await;
    // Sending is not async: it cannot wait. It takes what the queue and
    // the kernel hold, then says the queue is full.
    let taken = jam(&w).await;
    assert!(taken > 16, "only {taken} messages: the kernel took none?");
    assert_eq!(w.send(Bytes::from_static(b"x")), Err(Full));
}

#[tokio::test]
async fn a_reset_drops_the_queue_finishes_the_message_on_the_wire_and_sends_the_last() {
    let (w, mut peer, _failures) = writer(4, Duration::from_secs(60)).await;
    // One message far larger than the kernel buffers: it is half written
    // when the reset comes.
    let big = vec![0x11u8; 4 << 20];
    w.send(Bytes::from(big.clone())).unwrap();
    w.send(Bytes::from(vec![0x22u8; 100])).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let task = w.reset(Some(Bytes::from_static(b"LAST")));
    // The peer reads again, quickly enough for the grace.
    let (got, end) = read_all(&mut peer).await;
    assert!(end.is_ok(), "the Cease made it: a clean close, got {end:?}");
    assert_eq!(got.len(), big.len() + 4, "the big message, then LAST only");
    assert!(got[..big.len()] == big[..]);
    assert_eq!(&got[big.len()..], b"LAST");
    task.await.unwrap();
}

#[tokio::test]
async fn a_reset_to_a_peer_that_does_not_read_ends_with_an_rst_after_the_grace() {
    let (w, mut peer, _failures) = writer(4, Duration::from_secs(60)).await;
    jam(&w).await;
    let started = tokio::time::Instant::now();
    let task = w.reset(Some(Bytes::from_static(b"LAST")));
    tokio::time::timeout(RESET_GRACE * 5, task)
        .await
        .expect("the writer ends soon after its grace")
        .unwrap();
    assert!(started.elapsed() >= RESET_GRACE, "{:?}", started.elapsed());
    let (_, end) = read_all(&mut peer).await;
    let e = end.expect_err("an RST, not a FIN");
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
}

#[tokio::test]
async fn a_write_that_makes_no_progress_for_the_stall_limit_is_reported() {
    let (w, mut peer, mut failures) = writer(4, Duration::from_millis(300)).await;
    w.send(Bytes::from(vec![0u8; 4 << 20])).unwrap();
    let failure = tokio::time::timeout(Duration::from_secs(10), failures.recv())
        .await
        .expect("a failure within 10 s")
        .unwrap();
    assert!(
        failure.error.contains("peer not reading"),
        "{}",
        failure.error
    );
    // The writer gave up: later messages are taken and dropped, and the
    // connection is reset (in the peer task, when it drops the read half
    // on the report; here that half is gone already).
    assert_eq!(w.send(Bytes::from_static(b"x")), Ok(()));
    let (_, end) = read_all(&mut peer).await;
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn dropping_the_handle_resets_the_connection_without_flushing() {
    let (w, mut peer, _failures) = writer(4, Duration::from_secs(60)).await;
    jam(&w).await;
    drop(w);
    let (_, end) = read_all(&mut peer).await;
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionReset);
}
