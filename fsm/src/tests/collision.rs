//! Connection collisions (RFC 4271 §6.8) as the state machine resolves
//! them.

use anyvip_proto::Message;

use super::*;

/// Above [`LOCAL_ID`]: the peer's outgoing connection wins.
const HIGHER_PEER_ID: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

fn higher_peer_open() -> Open {
    let mut open = peer_open();
    open.bgp_identifier = HIGHER_PEER_ID;
    open
}

fn is_collision_cease(message: &Message) -> bool {
    matches!(message, Message::Notification(n) if u8::from(n.code) == 6 && n.subcode == 7)
}

#[test]
fn collision_keeps_our_connection_when_our_router_id_is_higher() {
    let mut s = Session::new(config());
    let outgoing = s.open_confirm(peer_open());
    let actions = s.handle(Event::TcpAccepted);
    let incoming = accept_id(&actions);
    assert!(matches!(
        sent_on(&actions, incoming)[..],
        [Message::Open(_)]
    ));
    assert_eq!(s.fsm.state(), State::OpenConfirm);

    let actions = s.receive(incoming, Message::Open(peer_open()));
    let on_incoming = sent_on(&actions, incoming);
    assert!(matches!(on_incoming[..], [m] if is_collision_cease(m)));
    assert!(closes(&actions, incoming));
    assert!(!closes(&actions, outgoing));
    // The session did not go down.
    assert_eq!(down_reason(&actions), None);
    assert_eq!(s.fsm.state(), State::OpenConfirm);

    let actions = s.receive(outgoing, Message::Keepalive);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Established { connection, .. } if *connection == outgoing
    )));
}

#[test]
fn collision_keeps_the_peers_connection_when_its_router_id_is_higher() {
    let mut s = Session::new(config());
    let outgoing = s.open_confirm(higher_peer_open());
    let incoming = accept_id(&s.handle(Event::TcpAccepted));

    let actions = s.receive(incoming, Message::Open(higher_peer_open()));
    let on_outgoing = sent_on(&actions, outgoing);
    assert!(matches!(on_outgoing[..], [m] if is_collision_cease(m)));
    assert!(closes(&actions, outgoing));
    assert_eq!(sent_on(&actions, incoming), [&Message::Keepalive]);
    assert_eq!(down_reason(&actions), None);
    assert_eq!(s.fsm.state(), State::OpenConfirm);

    let actions = s.receive(incoming, Message::Keepalive);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Established { connection, .. } if *connection == incoming
    )));
    assert_eq!(s.fsm.established().unwrap().0, incoming);
}

#[test]
fn an_established_connection_always_wins_a_collision() {
    // The rule would prefer the peer's connection, but ours is Established.
    let mut s = Session::new(config());
    let (outgoing, _) = s.establish(higher_peer_open());
    let incoming = accept_id(&s.handle(Event::TcpAccepted));
    let actions = s.receive(incoming, Message::Open(higher_peer_open()));
    let on_incoming = sent_on(&actions, incoming);
    assert!(matches!(on_incoming[..], [m] if is_collision_cease(m)));
    assert!(closes(&actions, incoming));
    assert!(!closes(&actions, outgoing));
    assert_eq!(sent_on(&actions, outgoing), Vec::<&Message>::new());
    assert_eq!(s.fsm.state(), State::Established);
    assert_eq!(s.fsm.established().unwrap().0, outgoing);
}

#[test]
fn collision_is_resolved_when_the_second_open_arrives() {
    // Both connections in OpenSent; the OPEN on the incoming one moves it to
    // OpenConfirm, the OPEN on the outgoing one then collides with it.
    let mut s = Session::new(config());
    let outgoing = s.connect();
    let incoming = accept_id(&s.handle(Event::TcpAccepted));
    let actions = s.receive(incoming, Message::Open(higher_peer_open()));
    assert_eq!(sent_on(&actions, incoming), [&Message::Keepalive]);
    let actions = s.receive(outgoing, Message::Open(higher_peer_open()));
    let on_outgoing = sent_on(&actions, outgoing);
    assert!(matches!(on_outgoing[..], [m] if is_collision_cease(m)));
    assert!(closes(&actions, outgoing));
    assert_eq!(s.fsm.state(), State::OpenConfirm);
    assert_eq!(s.fsm.connections().len(), 1);
}

#[test]
fn a_second_incoming_connection_is_refused() {
    let mut s = Session::new(config());
    s.connect();
    accept_id(&s.handle(Event::TcpAccepted));
    assert_eq!(s.handle(Event::TcpAccepted), [Action::Reject]);
}

#[test]
fn an_incoming_connection_replaces_an_attempt_still_connecting() {
    let mut s = Session::new(config());
    let attempt = connect_id(&s.handle(Event::ManualStart));
    let actions = s.handle(Event::TcpAccepted);
    assert!(closes(&actions, attempt));
    let incoming = accept_id(&actions);
    assert!(matches!(
        sent_on(&actions, incoming)[..],
        [Message::Open(_)]
    ));
    assert_eq!(s.fsm.state(), State::OpenSent);
    // ConnectRetry stopped; only the OpenSent hold timer runs.
    assert_eq!(
        s.fsm.poll_timeout(),
        Some(s.now + crate::OPEN_SENT_HOLD_TIME)
    );
    // The late result of the abandoned attempt is stale.
    assert_eq!(
        s.handle(Event::TcpConnected {
            connection: attempt
        }),
        [Action::Close {
            connection: attempt
        }]
    );
}

#[test]
fn losing_the_surviving_connection_after_a_collision_takes_the_session_down() {
    let mut s = Session::new(config());
    let outgoing = s.open_confirm(peer_open());
    let incoming = accept_id(&s.handle(Event::TcpAccepted));
    s.receive(incoming, Message::Open(peer_open()));
    let actions = s.handle(Event::TcpConnectionFails {
        connection: outgoing,
    });
    assert_eq!(down_reason(&actions), Some(&DownReason::TcpClosed));
    assert_eq!(s.fsm.state(), State::Idle);
}
