//! Inputs the fuzz targets (bfd/fuzz) stopped on, as named tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use anyvip_bfd::{Action, State};
use common::*;

/// fuzz `session`, crash-b33de800949896b44c46fcbef02a2ff8f7c3ae43 (the
/// harness's own "runaway timers" limit, not a library fault): reloaded to
/// a 1 µs transmit interval, then brought Up by a peer asking for 51 µs,
/// the session legitimately sends ~20 000 packets a second. It must keep
/// every deadline ahead of the last and every gap within the jitter range.
#[test]
fn a_one_microsecond_session_facing_a_51_microsecond_peer_sends_at_that_rate_without_stalling() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.set_config(
        t0,
        anyvip_bfd::SessionConfig::new(Duration::from_micros(1), ms(1000), 162).unwrap(),
    );
    let mut p = from_peer(State::Init, LOCAL);
    p.poll = true;
    p.demand = true;
    p.detect_multiplier = 162;
    p.desired_min_tx_us = 0x0100_0000;
    p.required_min_rx_us = 51;
    let actions = s.handle_packet(t0 + ms(1), &p).unwrap();
    assert_eq!(state_changes(&actions), vec![(State::Down, State::Up)]);
    assert!(transmitted(&actions).last().unwrap().final_);
    assert_eq!(s.transmit_interval(), Some(Duration::from_micros(51)));

    let mut last = t0 + ms(1);
    let mut sent = 0;
    while let Some(at) = s.poll_timeout().filter(|at| *at <= t0 + ms(101)) {
        assert!(at > last || sent == 0, "deadline {at:?} not after {last:?}");
        let actions = s.handle_timeout(at);
        if actions.iter().any(|a| matches!(a, Action::Transmit(_))) {
            if sent > 0 {
                let gap = at - last;
                assert!(
                    gap >= Duration::from_nanos(38_250) && gap <= Duration::from_micros(51),
                    "{gap:?}"
                );
            }
            sent += 1;
            last = at;
        }
    }
    // 100 ms at 38-51 µs per packet.
    assert!((1_900..=2_700).contains(&sent), "{sent} packets");
    assert_eq!(s.state(), State::Up);
}
