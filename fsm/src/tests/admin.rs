//! Start, stop and stale connection events.

use anyvip_proto::{ErrorCode, Message};

use super::*;

#[test]
fn manual_stop_with_a_message_sends_cease_6_2_with_the_rfc_9003_text() {
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    let actions = s.handle(Event::ManualStop {
        shutdown_message: Some("draining apiserver, back in 5 min".into()),
    });
    let n = notification(&actions);
    assert_eq!(n.code, ErrorCode::Cease);
    assert_eq!(n.subcode, 2);
    assert_eq!(
        n.shutdown_communication(),
        Some(Ok("draining apiserver, back in 5 min"))
    );
    assert!(closes(&actions, id));
    assert_eq!(down_reason(&actions), Some(&DownReason::AdminStop));
    assert!(actions.contains(&Action::StateChanged {
        from: State::Established,
        to: State::Idle
    }));
    // Stopped means stopped: no timer, no reconnect, no incoming.
    assert_eq!(s.fsm.poll_timeout(), None);
    assert_eq!(s.handle(Event::TcpAccepted), [Action::Reject]);
    assert_eq!(s.advance(secs(3600)), []);
}

#[test]
fn manual_stop_without_a_message_sends_a_bare_cease_6_2() {
    let mut s = Session::new(config());
    s.establish(peer_open());
    let actions = s.handle(Event::ManualStop {
        shutdown_message: None,
    });
    let n = notification(&actions);
    assert_eq!((u8::from(n.code), n.subcode), (6, 2));
    assert!(n.data.is_empty());
}

#[test]
fn a_long_shutdown_message_is_cut_at_a_character_boundary() {
    let mut s = Session::new(config());
    s.establish(peer_open());
    let long = "é".repeat(200); // 400 octets
    let actions = s.handle(Event::ManualStop {
        shutdown_message: Some(long),
    });
    let text = notification(&actions)
        .shutdown_communication()
        .unwrap()
        .unwrap();
    assert_eq!(text, "é".repeat(127)); // 254 octets
}

#[test]
fn manual_stop_while_connecting_only_drops_the_attempt() {
    let mut s = Session::new(config());
    let id = connect_id(&s.handle(Event::ManualStart));
    let actions = s.handle(Event::ManualStop {
        shutdown_message: Some("bye".into()),
    });
    assert_eq!(sent(&actions), Vec::<&Message>::new());
    assert!(closes(&actions, id));
    assert_eq!(s.fsm.state(), State::Idle);
    assert_eq!(down_reason(&actions), None);
}

#[test]
fn stale_connection_ids_are_ignored() {
    let mut s = Session::new(config());
    let old = connect_id(&s.handle(Event::ManualStart));
    // The attempt hangs; ConnectRetry replaces it.
    let new = connect_id(&s.advance_to_timeout());
    assert_ne!(old, new);

    assert_eq!(s.receive(old, Message::Open(peer_open())), []);
    assert_eq!(s.receive(old, Message::Keepalive), []);
    assert_eq!(s.handle(Event::TcpConnectionFails { connection: old }), []);
    assert_eq!(
        s.handle(Event::DecodeError {
            connection: old,
            error: anyvip_proto::DecodeError::ConnectionNotSynchronized,
        }),
        []
    );
    // A late success still holds a socket: close it, nothing else.
    assert_eq!(
        s.handle(Event::TcpConnected { connection: old }),
        [Action::Close { connection: old }]
    );
    assert_eq!(s.fsm.state(), State::Connect);

    // The current attempt is unaffected.
    let actions = s.handle(Event::TcpConnected { connection: new });
    assert!(matches!(sent_on(&actions, new)[..], [Message::Open(_)]));

    // After a session ends, its connection is stale too.
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    s.handle(Event::TcpConnectionFails { connection: id });
    assert_eq!(s.receive(id, Message::Keepalive), []);
    assert_eq!(s.receive(id, Message::Open(peer_open())), []);
}

#[test]
fn incoming_connections_are_refused_while_idle() {
    let mut s = Session::new(config());
    assert_eq!(s.handle(Event::TcpAccepted), [Action::Reject]);
    assert_eq!(s.fsm.state(), State::Idle);
}

#[test]
fn automatic_start_starts_a_stopped_session() {
    let mut s = Session::new(config());
    let actions = s.handle(Event::AutomaticStart);
    connect_id(&actions);
    assert_eq!(s.fsm.state(), State::Connect);
    // Starting again changes nothing.
    assert_eq!(s.handle(Event::ManualStart), []);
    assert_eq!(s.handle(Event::AutomaticStart), []);
}

#[test]
fn manual_start_ends_a_hold_off_at_once() {
    let mut s = Session::new(config());
    let bad = Open::new(Asn(65099), hold(90), PEER_ID, Vec::new());
    s.offer(bad);
    assert_eq!(s.fsm.state(), State::Idle);
    let actions = s.handle(Event::ManualStart);
    connect_id(&actions);
    assert_eq!(s.fsm.consecutive_failures(), 0);
}

#[test]
fn state_changes_are_reported_in_order_up_to_established() {
    let mut s = Session::new(config());
    let mut changes = Vec::new();
    let mut record = |actions: &[Action]| {
        for a in actions {
            if let Action::StateChanged { from, to } = a {
                changes.push((*from, *to));
            }
        }
    };
    let actions = s.handle(Event::ManualStart);
    record(&actions);
    let id = connect_id(&actions);
    record(&s.handle(Event::TcpConnected { connection: id }));
    record(&s.receive(id, Message::Open(peer_open())));
    record(&s.receive(id, Message::Keepalive));
    assert_eq!(
        changes,
        [
            (State::Idle, State::Connect),
            (State::Connect, State::OpenSent),
            (State::OpenSent, State::OpenConfirm),
            (State::OpenConfirm, State::Established),
        ]
    );
}

#[test]
fn cease_now_sends_cease_bfd_down_and_reconnects_after_the_backoff() {
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    let actions = s.handle(Event::CeaseNow { subcode: 10 });
    let n = notification(&actions);
    assert_eq!((u8::from(n.code), n.subcode), (6, 10));
    assert!(n.data.is_empty());
    assert!(closes(&actions, id));
    assert_eq!(
        down_reason(&actions),
        Some(&DownReason::NotificationSent(n.clone()))
    );
    assert!(actions.contains(&Action::StateChanged {
        from: State::Established,
        to: State::Idle
    }));
    // Not stopped: ConnectRetry runs and the session dials again.
    assert!(s.fsm.poll_timeout().is_some());
    connect_id(&s.advance_to_timeout());
}

#[test]
fn cease_now_while_connecting_drops_the_attempt_without_a_message() {
    let mut s = Session::new(config());
    let id = connect_id(&s.handle(Event::ManualStart));
    let actions = s.handle(Event::CeaseNow { subcode: 10 });
    assert_eq!(sent(&actions), Vec::<&Message>::new());
    assert!(closes(&actions, id));
    assert_eq!(s.fsm.state(), State::Idle);
    connect_id(&s.advance_to_timeout());
}

#[test]
fn cease_now_on_a_stopped_session_does_nothing() {
    let mut s = Session::new(config());
    assert_eq!(s.handle(Event::CeaseNow { subcode: 10 }), []);
    assert_eq!(s.fsm.poll_timeout(), None);
}
