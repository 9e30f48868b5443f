//! RFC 6608 unexpected messages, NOTIFICATIONs received, and what
//! Established does with messages.

use anyvip_proto::{ErrorCode, Message, Notification, Update};
use bytes::Bytes;

use super::*;

fn cease() -> Notification {
    Notification::new(ErrorCode::Cease, 2, Bytes::new())
}

#[test]
fn rfc_6608_subcodes_come_from_one_table_keyed_by_state() {
    let table: Vec<(State, Option<u8>)> = [
        State::Idle,
        State::Connect,
        State::Active,
        State::OpenSent,
        State::OpenConfirm,
        State::Established,
    ]
    .into_iter()
    .map(|s| (s, s.unexpected_message_subcode()))
    .collect();
    assert_eq!(
        table,
        [
            (State::Idle, None),
            (State::Connect, None),
            (State::Active, None),
            (State::OpenSent, Some(1)),
            (State::OpenConfirm, Some(2)),
            (State::Established, Some(3)),
        ]
    );
}

#[test]
fn keepalive_in_open_sent_is_answered_with_5_1() {
    let mut s = Session::new(config());
    let id = s.connect();
    let actions = s.receive(id, Message::Keepalive);
    assert_eq!(error(&actions), (5, 1));
    // RFC 6608 §4: the data is the type of the unexpected message.
    assert_eq!(&notification(&actions).data[..], &[4]);
    assert!(closes(&actions, id));
    assert_eq!(s.fsm.state(), State::Idle);
}

#[test]
fn update_in_open_sent_is_answered_with_5_1() {
    let mut s = Session::new(config());
    let id = s.connect();
    let actions = s.receive(id, Message::Update(Update::default()));
    assert_eq!(error(&actions), (5, 1));
    assert_eq!(&notification(&actions).data[..], &[2]);
}

#[test]
fn update_in_open_confirm_is_answered_with_5_2() {
    let mut s = Session::new(config());
    let id = s.open_confirm(peer_open());
    let actions = s.receive(id, Message::Update(Update::default()));
    assert_eq!(error(&actions), (5, 2));
    assert_eq!(&notification(&actions).data[..], &[2]);
    assert!(closes(&actions, id));
}

#[test]
fn open_in_open_confirm_is_answered_with_5_2() {
    // A second OPEN on the same connection is a protocol error; a collision
    // is an OPEN on the other connection (see the collision tests).
    let mut s = Session::new(config());
    let id = s.open_confirm(peer_open());
    let actions = s.receive(id, Message::Open(peer_open()));
    assert_eq!(error(&actions), (5, 2));
    assert_eq!(&notification(&actions).data[..], &[1]);
    assert!(closes(&actions, id));
    assert_eq!(s.fsm.state(), State::Idle);
}

#[test]
fn open_in_established_is_answered_with_5_3() {
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    let actions = s.receive(id, Message::Open(peer_open()));
    assert_eq!(error(&actions), (5, 3));
    assert_eq!(&notification(&actions).data[..], &[1]);
    assert!(closes(&actions, id));
    assert!(matches!(
        down_reason(&actions),
        Some(DownReason::NotificationSent(n)) if n.subcode == 3
    ));
    assert_eq!(s.fsm.state(), State::Idle);
}

#[test]
fn a_received_notification_is_never_answered() {
    // OpenSent.
    let mut s = Session::new(config());
    let id = s.connect();
    let actions = s.receive(id, Message::Notification(cease()));
    assert_eq!(sent(&actions), Vec::<&Message>::new());
    assert!(closes(&actions, id));
    assert_eq!(
        down_reason(&actions),
        Some(&DownReason::NotificationReceived(cease()))
    );

    // OpenConfirm.
    let mut s = Session::new(config());
    let id = s.open_confirm(peer_open());
    let actions = s.receive(id, Message::Notification(cease()));
    assert_eq!(sent(&actions), Vec::<&Message>::new());
    assert!(closes(&actions, id));

    // Established, even an unknown error code.
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    let odd = Notification::new(ErrorCode::Unknown(99), 7, Bytes::from_static(b"?"));
    let actions = s.receive(id, Message::Notification(odd.clone()));
    assert_eq!(sent(&actions), Vec::<&Message>::new());
    assert!(closes(&actions, id));
    assert_eq!(
        down_reason(&actions),
        Some(&DownReason::NotificationReceived(odd))
    );
    assert_eq!(s.fsm.state(), State::Idle);
}

#[test]
fn updates_in_established_are_handed_over_and_restart_the_hold_timer() {
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    // Just before the hold timer would fire, an UPDATE arrives.
    s.now += secs(89);
    let actions = s.receive(id, Message::Update(Update::default()));
    assert!(actions.contains(&Action::UpdateReceived(Update::default())));
    // Keepalives that were due went out first; nothing else did.
    assert!(sent(&actions).iter().all(|m| **m == Message::Keepalive));
    // The old deadline passes without a 4/0 (keepalives may go out).
    let actions = s.advance(secs(2));
    assert!(sent(&actions).iter().all(|m| **m == Message::Keepalive));
    assert_eq!(s.fsm.state(), State::Established);
}

#[test]
fn keepalives_in_established_restart_the_hold_timer() {
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    for _ in 0..10 {
        s.now += secs(80);
        s.receive(id, Message::Keepalive);
        assert_eq!(s.fsm.state(), State::Established);
    }
    assert_eq!(s.elapsed(), secs(800));
}

#[test]
fn tcp_closed_in_established_goes_idle_with_reason() {
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    let actions = s.handle(Event::TcpConnectionFails { connection: id });
    assert_eq!(down_reason(&actions), Some(&DownReason::TcpClosed));
    assert!(actions.contains(&Action::StateChanged {
        from: State::Established,
        to: State::Idle
    }));
    // Nothing is sent on a connection that is gone.
    assert_eq!(sent(&actions), Vec::<&Message>::new());
}
