//! Hold, keepalive and ConnectRetry timers, with jitter and backoff.

use anyvip_proto::Message;

use super::*;
use crate::{jitter, SplitMix64, OPEN_SENT_HOLD_TIME};

/// 0.75 × the given number of seconds: the jitter of `FixedRng(0)`.
fn three_quarters(seconds: u64) -> Duration {
    Duration::from_secs(seconds) * 3 / 4
}

#[test]
fn jitter_stays_between_three_quarters_and_the_full_value() {
    let base = secs(30);
    assert_eq!(jitter(base, &mut FixedRng(0)), three_quarters(30));
    let top = jitter(base, &mut FixedRng(u32::MAX));
    assert!(top < base && top > base - millis(1), "{top:?}");
    let mut rng = SplitMix64::new(7);
    for _ in 0..1000 {
        let j = jitter(base, &mut rng);
        assert!(j >= three_quarters(30) && j < base, "{j:?}");
    }
}

#[test]
fn hold_timer_expiry_sends_4_0_and_closes() {
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    let mut actions = s.advance_to_timeout();
    while sent(&actions) == [&Message::Keepalive] {
        actions = s.advance_to_timeout();
    }
    assert_eq!(s.elapsed(), secs(90));
    let n = notification(&actions);
    assert_eq!((u8::from(n.code), n.subcode), (4, 0));
    assert!(n.data.is_empty());
    assert!(closes(&actions, id));
    assert_eq!(down_reason(&actions), Some(&DownReason::HoldTimerExpired));
    assert_eq!(s.fsm.state(), State::Idle);
    // The hold timer fired at the same instant as a keepalive: the
    // keepalive did not go out on the dead connection.
    assert_eq!(sent(&actions).len(), 1);
}

#[test]
fn open_sent_hold_timer_is_four_minutes() {
    let mut s = Session::new(config());
    let id = s.connect();
    assert_eq!(s.fsm.poll_timeout(), Some(s.now + OPEN_SENT_HOLD_TIME));
    let actions = s.advance_to_timeout();
    assert_eq!(s.elapsed(), secs(240));
    assert_eq!(error(&actions), (4, 0));
    assert!(closes(&actions, id));
}

#[test]
fn keepalives_are_sent_at_the_keepalive_interval() {
    // Jitter factor 0.75: every 22.5 s for a 30 s keepalive interval.
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    for k in 1..=8u32 {
        let actions = s.advance_to_timeout();
        assert_eq!(sent_on(&actions, id), [&Message::Keepalive]);
        assert_eq!(s.elapsed(), three_quarters(30) * k);
        // The peer's own keepalives keep the session up.
        assert_eq!(s.receive(id, Message::Keepalive), []);
    }

    // Jitter factor just under 1: every (just under) 30 s.
    let mut s = Session::with_rng(config(), FixedRng(u32::MAX));
    let (id, _) = s.establish(peer_open());
    let mut last = s.now;
    for _ in 0..5 {
        let actions = s.advance_to_timeout();
        assert_eq!(sent_on(&actions, id), [&Message::Keepalive]);
        let gap = s.now - last;
        assert!(gap < secs(30) && gap > secs(30) - millis(1), "{gap:?}");
        last = s.now;
        s.receive(id, Message::Keepalive);
    }
}

#[test]
fn connect_retry_backs_off_exponentially_with_jitter() {
    let mut s = Session::new(config());
    let mut id = connect_id(&s.handle(Event::ManualStart));
    assert_eq!(s.fsm.state(), State::Connect);
    let mut gaps = Vec::new();
    for _ in 0..8 {
        let started = s.now;
        let actions = s.handle(Event::TcpConnectionFails { connection: id });
        assert_eq!(s.fsm.state(), State::Active);
        assert!(!actions.iter().any(|a| matches!(a, Action::Connect { .. })));
        id = connect_id(&s.advance_to_timeout());
        assert_eq!(s.fsm.state(), State::Connect);
        gaps.push(s.now - started);
    }
    // 5 s doubling to the 120 s ceiling, each × 0.75.
    let expected: Vec<Duration> = [5, 10, 20, 40, 80, 120, 120, 120]
        .into_iter()
        .map(three_quarters)
        .collect();
    assert_eq!(gaps, expected);
}

#[test]
fn connect_retry_jitter_varies_within_the_rfc_range() {
    let mut fsm = Fsm::with_rng(config(), Instant::now(), SplitMix64::new(42));
    let mut now = Instant::now();
    let mut id = connect_id(&fsm.handle(now, Event::ManualStart));
    let mut gaps = Vec::new();
    for nominal in [5u64, 10, 20, 40] {
        fsm.handle(now, Event::TcpConnectionFails { connection: id });
        let at = fsm.poll_timeout().unwrap();
        let gap = at - now;
        assert!(
            gap >= three_quarters(nominal) && gap < secs(nominal),
            "{gap:?}"
        );
        gaps.push(gap);
        now = at;
        id = connect_id(&fsm.handle_timeout(now));
    }
    assert!(gaps.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_connect_attempt_that_hangs_is_dropped_and_retried_with_a_longer_window() {
    let mut s = Session::new(config());
    let first = connect_id(&s.handle(Event::ManualStart));
    let actions = s.advance_to_timeout();
    assert!(closes(&actions, first));
    let second = connect_id(&actions);
    assert_ne!(first, second);
    assert_eq!(s.elapsed(), three_quarters(5));
    let actions = s.advance_to_timeout();
    assert!(closes(&actions, second));
    assert_eq!(s.elapsed(), three_quarters(5) * 2);
    s.advance_to_timeout();
    assert_eq!(s.elapsed(), three_quarters(5) * 2 + three_quarters(10));
}

#[test]
fn a_rejected_open_is_never_retried_in_a_hot_loop() {
    let mut s = Session::new(config());
    let bad = Open::new(Asn(65099), hold(90), PEER_ID, Vec::new());
    let mut id = s.connect();
    let mut gaps = Vec::new();
    for _ in 0..6 {
        let actions = s.receive(id, Message::Open(bad.clone()));
        assert_eq!(error(&actions), (2, 2));
        assert_eq!(s.fsm.state(), State::Idle);
        let rejected_at = s.now;
        // While holding off, the peer cannot get in either.
        assert_eq!(s.handle(Event::TcpAccepted), [Action::Reject]);
        assert_eq!(s.handle(Event::AutomaticStart), []);
        let actions = s.advance_to_timeout();
        id = connect_id(&actions);
        gaps.push(s.now - rejected_at);
        s.handle(Event::TcpConnected { connection: id });
    }
    let expected: Vec<Duration> = [5, 10, 20, 40, 80, 120]
        .into_iter()
        .map(three_quarters)
        .collect();
    assert_eq!(gaps, expected);
    assert_eq!(s.fsm.consecutive_failures(), 6);
}

#[test]
fn backoff_resets_once_established() {
    let mut s = Session::new(config());
    let id = connect_id(&s.handle(Event::ManualStart));
    s.handle(Event::TcpConnectionFails { connection: id });
    let id = connect_id(&s.advance_to_timeout());
    s.handle(Event::TcpConnectionFails { connection: id });
    assert_eq!(s.fsm.consecutive_failures(), 2);
    let id = connect_id(&s.advance_to_timeout());
    s.handle(Event::TcpConnected { connection: id });
    s.receive(id, Message::Open(peer_open()));
    s.receive(id, Message::Keepalive);
    assert_eq!(s.fsm.state(), State::Established);
    assert_eq!(s.fsm.consecutive_failures(), 0);
    // The next loss waits the base interval again.
    s.handle(Event::TcpConnectionFails { connection: id });
    assert_eq!(s.fsm.poll_timeout(), Some(s.now + three_quarters(5)));
}

#[test]
fn a_passive_session_only_listens() {
    let mut c = config();
    c.passive = true;
    let mut s = Session::new(c);
    assert_eq!(
        s.handle(Event::ManualStart),
        [Action::StateChanged {
            from: State::Idle,
            to: State::Active
        }]
    );
    assert_eq!(s.fsm.poll_timeout(), None);
    let actions = s.handle(Event::TcpAccepted);
    let id = accept_id(&actions);
    assert!(matches!(sent_on(&actions, id)[..], [Message::Open(_)]));
    assert_eq!(s.fsm.state(), State::OpenSent);
    // The peer goes away before its OPEN: back to listening, no connect.
    let actions = s.handle(Event::TcpConnectionFails { connection: id });
    assert_eq!(s.fsm.state(), State::Active);
    assert!(!actions.iter().any(|a| matches!(a, Action::Connect { .. })));
    // A rejected OPEN makes even a passive session hold off.
    let id = accept_id(&s.handle(Event::TcpAccepted));
    let bad = Open::new(Asn(65099), hold(90), PEER_ID, Vec::new());
    s.receive(id, Message::Open(bad));
    assert_eq!(s.fsm.state(), State::Idle);
    assert_eq!(s.handle(Event::TcpAccepted), [Action::Reject]);
    let actions = s.advance_to_timeout();
    assert_eq!(s.fsm.state(), State::Active);
    assert!(!actions.iter().any(|a| matches!(a, Action::Connect { .. })));
}

#[test]
fn timers_that_are_due_fire_before_the_event() {
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    // The caller was late: 100 s passed without a timeout call, then a
    // KEEPALIVE is read. The hold timer expired first.
    s.now += secs(100);
    let actions = s.receive(id, Message::Keepalive);
    assert_eq!(down_reason(&actions), Some(&DownReason::HoldTimerExpired));
    assert_eq!(s.fsm.state(), State::Idle);
    assert!(s.fsm.poll_timeout().unwrap() > s.now);
}
