//! Shared helpers for the BFD tests: a seeded random source, a fixed
//! starting time, hex with a diff.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use anyvip_bfd::{Action, ControlPacket, Diagnostic, Session, SessionConfig, State};

/// xorshift32, seeded: deterministic jitter.
pub fn seeded(seed: u32) -> impl FnMut() -> u32 + Clone {
    let mut x = seed.max(1);
    move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    }
}

pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

pub const LOCAL: u32 = 0x1111_1111;
pub const REMOTE: u32 = 0x2222_2222;

pub fn local_discriminator() -> NonZeroU32 {
    NonZeroU32::new(LOCAL).unwrap()
}

pub fn config(tx_ms: u64, rx_ms: u64, multiplier: u8) -> SessionConfig {
    SessionConfig::new(ms(tx_ms), ms(rx_ms), multiplier).unwrap()
}

pub type TestSession = Session<Box<dyn FnMut() -> u32>>;

/// 300 ms x 3, seeded jitter; its first packet (due at `t0`) already sent.
pub fn session(t0: Instant) -> TestSession {
    session_with(t0, config(300, 300, 3))
}

pub fn session_with(t0: Instant, config: SessionConfig) -> TestSession {
    let mut s: TestSession = Session::new(config, local_discriminator(), t0, Box::new(seeded(7)));
    let first = s.handle_timeout(t0);
    assert!(
        matches!(first.as_slice(), [Action::Transmit(_)]),
        "{first:?}"
    );
    s
}

/// A packet from the peer, 300 ms x 3, as a peer in `state` sends it.
pub fn from_peer(state: State, your: u32) -> ControlPacket {
    ControlPacket {
        diagnostic: Diagnostic::NoDiagnostic,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        multipoint: false,
        detect_multiplier: 3,
        my_discriminator: REMOTE,
        your_discriminator: your,
        desired_min_tx_us: 300_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
        authentication: None,
    }
}

/// Drive `session` from Down to Up with the peer's Init.
pub fn bring_up(session: &mut TestSession, at: Instant) {
    let actions = session
        .handle_packet(at, &from_peer(State::Init, LOCAL))
        .unwrap();
    assert!(
        state_changes(&actions).contains(&(State::Down, State::Up)),
        "{actions:?}"
    );
}

pub fn state_changes(actions: &[Action]) -> Vec<(State, State)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, .. } => Some((*from, *to)),
            Action::Transmit(_) => None,
        })
        .collect()
}

pub fn transmitted(actions: &[Action]) -> Vec<&ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transmit(p) => Some(p),
            Action::StateChanged { .. } => None,
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Both byte strings as 4-byte rows (the RFC diagram's words), rows that
/// differ marked with `!`.
pub fn hex_diff(expected: &[u8], actual: &[u8]) -> String {
    let rows = expected.len().max(actual.len()).div_ceil(4);
    let mut out = String::from("      expected  actual\n");
    for row in 0..rows {
        let word = |b: &[u8]| hex(b.get(row * 4..(row * 4 + 4).min(b.len())).unwrap_or(&[]));
        let (e, a) = (word(expected), word(actual));
        let mark = if e == a { ' ' } else { '!' };
        out.push_str(&format!("{mark} {:3}  {e:8}  {a:8}\n", row * 4));
    }
    out
}

pub fn assert_bytes(expected: &[u8], actual: &[u8]) {
    assert!(
        expected == actual,
        "bytes differ:\n{}",
        hex_diff(expected, actual)
    );
}

/// Fire every deadline up to `until`, returning what each produced and
/// when. Never sleeps: time is whatever `poll_timeout` says.
pub fn run_until(session: &mut TestSession, until: Instant) -> Vec<(Instant, Action)> {
    let mut out = Vec::new();
    while let Some(at) = session.poll_timeout() {
        if at > until {
            break;
        }
        for action in session.handle_timeout(at) {
            out.push((at, action));
        }
        assert!(out.len() < 100_000, "runaway timers");
    }
    out
}

/// Times of the packets sent in `events`.
pub fn send_times(events: &[(Instant, Action)]) -> Vec<Instant> {
    events
        .iter()
        .filter(|(_, a)| matches!(a, Action::Transmit(_)))
        .map(|(t, _)| *t)
        .collect()
}
