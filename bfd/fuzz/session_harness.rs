//! A session fed random packets, timer events and operator actions
//! (a failed check panics).
//!
//! Shared by the cargo-fuzz target (`fuzz_targets/session.rs`) and the
//! corpus replay test (`../tests/fuzz_corpus.rs`, stable Rust).
//!
//! Input: a 3-octet header (transmit interval, receive interval and
//! multiplier selectors, and the jitter seed), then a list of events, each
//! one opcode octet and its operands:
//! - `0`: a packet: the next 24 octets as a Control packet's mandatory
//!   section (Version forced to 1 and Length to 24 so most decode; octet 6
//!   picks Your Discriminator: ours, zero or as given);
//! - `1`: raw datagram: a length octet and that many octets;
//! - `2`: advance time by a 16-bit number of milliseconds and run timers;
//! - `3`: reload with new intervals; `4`: AdminDown; `5`: enable.
//!
//! Checked (a failed check is a crash): nothing panics; after
//! `handle_timeout(now)` the next deadline lies after `now`;
//! `StateChanged.from` is the previous state; Up is reached only on a
//! packet from the peer in Init or Up naming our discriminator; every
//! packet we send has our discriminator and current state, never P with
//! F, the slow rate while not Up, and passes our own checks (AdminDown
//! aside, which may carry Your Discriminator 0).

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use anyvip_bfd::{
    Action, ControlPacket, Diagnostic, Session, SessionConfig, State, SLOW_TX_INTERVAL,
};

const LOCAL: u32 = 0x0bfd_0001;

fn interval(selector: u8) -> Duration {
    // 1 µs .. ~2.6 s, with the common values likely.
    match selector % 8 {
        0 => Duration::from_millis(100),
        1 => Duration::from_millis(300),
        2 => Duration::from_secs(1),
        3 => Duration::from_micros(1),
        _ => Duration::from_micros(u64::from(selector) * 10_000 + 1),
    }
}

fn config(tx: u8, rx: u8, mult: u8) -> SessionConfig {
    SessionConfig::new(interval(tx), interval(rx), mult.max(1)).expect("valid by construction")
}

fn xorshift(mut x: u32) -> impl FnMut() -> u32 {
    x = x.max(1);
    move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    }
}

/// Run one input; panics when a check fails.
pub fn run(data: &[u8]) {
    let Some((&[tx, rx, seed], mut rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let t0 = Instant::now();
    let mut now = t0;
    let local = NonZeroU32::new(LOCAL).expect("non-zero");
    let mut session = Session::new(
        config(tx, rx, seed % 4),
        local,
        t0,
        xorshift(u32::from(seed)),
    );
    let mut state = session.state();

    while let Some((&opcode, tail)) = rest.split_first() {
        rest = tail;
        let mut handshake = false;
        let actions = match opcode % 6 {
            0 => {
                let Some((chunk, tail)) = rest.split_first_chunk::<24>() else {
                    return;
                };
                rest = tail;
                let mut bytes = *chunk;
                bytes[0] = 0x20 | (bytes[0] & 0x1f);
                bytes[1] &= !0x04; // no A bit: Length 24 must hold
                bytes[3] = 24;
                match bytes[6] % 4 {
                    0 => bytes[8..12].copy_from_slice(&LOCAL.to_be_bytes()),
                    1 => bytes[8..12].fill(0),
                    _ => {}
                }
                deliver(&mut session, now, &bytes, &mut handshake)
            }
            1 => {
                let Some((&len, tail)) = rest.split_first() else {
                    return;
                };
                let len = usize::from(len).min(tail.len());
                let (datagram, tail) = tail.split_at(len);
                rest = tail;
                deliver(&mut session, now, datagram, &mut handshake)
            }
            2 => {
                let Some((&[hi, lo], tail)) = rest.split_first_chunk::<2>() else {
                    return;
                };
                rest = tail;
                let until = now + Duration::from_millis(u64::from(u16::from_be_bytes([hi, lo])));
                let mut actions = Vec::new();
                // A 1 µs interval is legal and fires ~20 000 times per
                // simulated second: stop after enough firings (time still
                // moved on each one, which is what is checked) rather than
                // spend the fuzzer's time there.
                let mut firings = 0;
                while let Some(at) = session.poll_timeout().filter(|at| *at <= until) {
                    now = now.max(at);
                    actions.extend(session.handle_timeout(now));
                    assert!(session.poll_timeout().is_none_or(|next| next > now));
                    firings += 1;
                    if firings == 2_000 {
                        break;
                    }
                }
                now = now.max(until.min(session.poll_timeout().unwrap_or(until)));
                actions
            }
            3 => {
                let Some((&[tx, rx, mult], tail)) = rest.split_first_chunk::<3>() else {
                    return;
                };
                rest = tail;
                session.set_config(now, config(tx, rx, mult));
                Vec::new()
            }
            4 => session.admin_down(now, Diagnostic::AdministrativelyDown),
            _ => session.enable(now),
        };
        for action in &actions {
            match action {
                Action::StateChanged { from, to, .. } => {
                    assert_eq!(*from, state);
                    assert_ne!(from, to);
                    if *to == State::Up {
                        assert!(handshake, "Up without the handshake");
                    }
                    state = *to;
                }
                Action::Transmit(p) => {
                    assert!(!(p.poll && p.final_));
                    assert_eq!(p.my_discriminator, LOCAL);
                    assert_eq!(p.state, state);
                    if p.state != State::Up {
                        assert!(u128::from(p.desired_min_tx_us) >= SLOW_TX_INTERVAL.as_micros());
                    }
                    if p.state != State::AdminDown {
                        assert_eq!(p.check(), Ok(()));
                    }
                }
            }
        }
        assert_eq!(session.state(), state);
        now += Duration::from_micros(1);
    }
}

/// Decode and hand to the session as the daemon would; `handshake` says
/// whether this packet may legitimately bring the session Up.
fn deliver<R: anyvip_bfd::Rng>(
    session: &mut Session<R>,
    now: Instant,
    bytes: &[u8],
    handshake: &mut bool,
) -> Vec<Action> {
    let Ok(packet) = ControlPacket::decode(bytes) else {
        return Vec::new();
    };
    *handshake =
        packet.your_discriminator == LOCAL && matches!(packet.state, State::Init | State::Up);
    let before = session.state();
    match session.handle_packet(now, &packet) {
        Ok(actions) => actions,
        Err(_) => {
            assert_eq!(session.state(), before);
            Vec::new()
        }
    }
}
