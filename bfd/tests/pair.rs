//! Two sessions talking over a simulated link (1 ms each way, optional
//! loss), on simulated time: the handshake, negotiation, reloads and
//! failures end to end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use anyvip_bfd::{Action, ControlPacket, Diagnostic, Session, SessionConfig, State};
use common::{config, ms, seeded, TestSession};

struct Pair {
    now: Instant,
    sides: [TestSession; 2],
    /// (delivery time, sequence) -> (to side, bytes)
    wire: BTreeMap<(Instant, u64), (usize, Vec<u8>)>,
    sequence: u64,
    /// Packets from this side are lost.
    cut: [bool; 2],
    /// Packets each side sent.
    sent: [usize; 2],
    /// Every state change: (time, side, from, to, diagnostic).
    changes: Vec<(Instant, usize, State, State, Diagnostic)>,
}

impl Pair {
    fn new(a: SessionConfig, b: SessionConfig) -> Pair {
        let now = Instant::now();
        let side = |config, discriminator, seed| -> TestSession {
            Session::new(
                config,
                NonZeroU32::new(discriminator).unwrap(),
                now,
                Box::new(seeded(seed)),
            )
        };
        Pair {
            now,
            sides: [side(a, 0xa, 11), side(b, 0xb, 22)],
            wire: BTreeMap::new(),
            sequence: 0,
            cut: [false, false],
            sent: [0, 0],
            changes: Vec::new(),
        }
    }

    fn apply(&mut self, from: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Transmit(packet) => {
                    self.sent[from] += 1;
                    if !self.cut[from] {
                        self.sequence += 1;
                        self.wire.insert(
                            (self.now + ms(1), self.sequence),
                            (1 - from, packet.encode()),
                        );
                    }
                }
                Action::StateChanged {
                    from: old,
                    to,
                    diagnostic,
                } => {
                    self.changes.push((self.now, from, old, to, diagnostic));
                }
            }
        }
    }

    fn run_for(&mut self, span: Duration) {
        let until = self.now + span;
        loop {
            let next = [
                self.sides[0].poll_timeout(),
                self.sides[1].poll_timeout(),
                self.wire.keys().next().map(|(t, _)| *t),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(at) = next.filter(|at| *at <= until) else {
                break;
            };
            self.now = at;
            if let Some(entry) = self.wire.first_entry().filter(|e| e.key().0 <= at) {
                let (to, bytes) = entry.remove();
                let packet = ControlPacket::decode(&bytes).unwrap();
                let actions = self.sides[to].handle_packet(at, &packet).unwrap();
                self.apply(to, actions);
                continue;
            }
            for side in 0..2 {
                if self.sides[side].poll_timeout().is_some_and(|t| t <= at) {
                    let actions = self.sides[side].handle_timeout(at);
                    self.apply(side, actions);
                }
            }
        }
        self.now = until;
    }

    fn states(&self) -> [State; 2] {
        [self.sides[0].state(), self.sides[1].state()]
    }
}

#[test]
fn two_sessions_come_up_and_negotiate_intervals_in_both_directions() {
    let mut pair = Pair::new(config(100, 100, 3), config(300, 200, 5));
    pair.run_for(ms(3000));
    assert_eq!(pair.states(), [State::Up, State::Up]);
    let [a, b] = &pair.sides;
    assert_eq!(
        a.transmit_interval(),
        Some(ms(200)),
        "max(our 100, their RX 200)"
    );
    assert_eq!(b.transmit_interval(), Some(ms(300)));
    assert_eq!(
        a.detection_time(),
        Some(ms(1500)),
        "their mult 5 x max(our RX 100, their TX 300)"
    );
    assert_eq!(b.detection_time(), Some(ms(600)), "3 x max(200, 200)");
    assert!(!a.polling() && !b.polling(), "the Up polls completed");
}

#[test]
fn a_silent_peer_is_detected_within_the_detection_time() {
    let mut pair = Pair::new(config(100, 100, 3), config(100, 100, 3));
    pair.run_for(ms(3000));
    assert_eq!(pair.states(), [State::Up, State::Up]);
    pair.changes.clear();
    let cut_at = pair.now;
    pair.cut[1] = true;
    pair.run_for(ms(2000));
    let (at, side, from, to, diagnostic) = pair.changes[0];
    assert_eq!(
        (side, from, to, diagnostic),
        (
            0,
            State::Up,
            State::Down,
            Diagnostic::ControlDetectionTimeExpired
        )
    );
    // The last packet before the cut left at most 100 ms before it.
    assert!(
        at - cut_at <= ms(300 + 1),
        "detected after {:?}",
        at - cut_at
    );
    // B hears A's Down and goes Down with diagnostic 3.
    assert!(pair.changes.iter().any(|c| c.1 == 1 && c.3 == State::Down));
    pair.cut[1] = false;
    pair.run_for(ms(5000));
    assert_eq!(pair.states(), [State::Up, State::Up], "they come back");
}

#[test]
fn reloads_in_both_directions_never_take_the_session_down() {
    let mut pair = Pair::new(config(100, 100, 3), config(100, 100, 3));
    pair.run_for(ms(3000));
    pair.changes.clear();
    for (tx, rx, mult) in [
        (1000, 1000, 3),
        (50, 50, 1),
        (2000, 20, 2),
        (20, 2000, 3),
        (100, 100, 3),
    ] {
        pair.sides[0].set_config(pair.now, config(tx, rx, mult));
        pair.run_for(ms(100));
        pair.sides[1].set_config(pair.now, config(rx, tx, mult));
        pair.run_for(ms(10_000));
        assert!(!pair.sides[0].polling() && !pair.sides[1].polling());
    }
    assert_eq!(pair.changes, vec![], "no state change during reloads");
}

#[test]
fn admin_down_on_one_side_takes_the_other_down_with_diagnostic_3_and_back() {
    let mut pair = Pair::new(config(300, 300, 3), config(300, 300, 3));
    pair.run_for(ms(3000));
    pair.changes.clear();
    let actions = pair.sides[0].admin_down(pair.now, Diagnostic::AdministrativelyDown);
    pair.apply(0, actions);
    pair.run_for(ms(5000));
    assert_eq!(pair.states(), [State::AdminDown, State::Down]);
    let b_down: Vec<_> = pair.changes.iter().filter(|c| c.1 == 1).collect();
    assert_eq!(b_down.len(), 1, "{b_down:?}");
    assert_eq!(b_down[0].4, Diagnostic::NeighborSignaledSessionDown);
    let actions = pair.sides[0].enable(pair.now);
    pair.apply(0, actions);
    pair.run_for(ms(5000));
    assert_eq!(pair.states(), [State::Up, State::Up]);
}

#[test]
fn a_session_facing_no_peer_stays_down_and_sends_about_once_a_second() {
    let mut pair = Pair::new(config(100, 100, 3), config(100, 100, 3));
    pair.cut[1] = true;
    pair.run_for(ms(60_000));
    // A never hears B and stays Down; B hears A and waits in Init for an
    // answer that never arrives. Nobody gets to Up without the handshake.
    assert_eq!(pair.states(), [State::Down, State::Init]);
    assert!(pair.changes.iter().all(|c| c.3 != State::Up));
    // 60 s at 1 s less 0-25 % jitter: 60 to 80 packets from A.
    assert!(
        (60..=81).contains(&pair.sent[0]),
        "{} packets",
        pair.sent[0]
    );
}
