//! Property tests: the codec round trip, and sessions fed random packets,
//! timeouts and operator actions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use anyvip_bfd::{
    Action, AuthType, Authentication, ControlPacket, Diagnostic, Session, SessionConfig, State,
    SLOW_TX_INTERVAL,
};
use common::{local_discriminator, seeded, TestSession, LOCAL};
use proptest::prelude::*;

fn state() -> impl Strategy<Value = State> {
    (0u8..4).prop_map(State::from_code)
}

fn authentication() -> impl Strategy<Value = Option<Authentication>> {
    proptest::option::of(
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=229))
            .prop_map(|(t, data)| Authentication::new(AuthType::from_code(t), data).unwrap()),
    )
}

prop_compose! {
    fn packet()(
        diagnostic in 0u8..32,
        state in state(),
        bits in any::<[bool; 5]>(),
        detect_multiplier in any::<u8>(),
        discriminators in any::<[u32; 2]>(),
        intervals in any::<[u32; 3]>(),
        authentication in authentication(),
    ) -> ControlPacket {
        ControlPacket {
            diagnostic: Diagnostic::from_code(diagnostic),
            state,
            poll: bits[0],
            final_: bits[1],
            control_plane_independent: bits[2],
            demand: bits[3],
            multipoint: bits[4],
            detect_multiplier,
            my_discriminator: discriminators[0],
            your_discriminator: discriminators[1],
            desired_min_tx_us: intervals[0],
            required_min_rx_us: intervals[1],
            required_min_echo_rx_us: intervals[2],
            authentication,
        }
    }
}

/// Packets a session may meet: mostly well-formed and plausible, so the
/// state machine gets exercised, with the odd bad one.
fn peer_packet(your_choices: Vec<u32>) -> impl Strategy<Value = ControlPacket> {
    (
        state(),
        any::<[bool; 4]>(),
        prop_oneof![8 => 1u8..=5, 1 => Just(0u8), 1 => any::<u8>()],
        prop_oneof![8 => Just(0x2222_2222u32), 1 => Just(0u32), 1 => any::<u32>()],
        proptest::sample::select(your_choices),
        prop_oneof![Just(0u32), Just(1), 10_000u32..2_000_000, any::<u32>()],
        prop_oneof![Just(0u32), Just(1), 10_000u32..2_000_000, any::<u32>()],
        proptest::bool::weighted(0.05),
        proptest::bool::weighted(0.05),
    )
        .prop_map(
            |(state, bits, mult, my, your, tx, rx, multipoint, auth)| ControlPacket {
                diagnostic: Diagnostic::NoDiagnostic,
                state,
                poll: bits[0],
                final_: bits[1],
                control_plane_independent: bits[2],
                demand: bits[3],
                multipoint,
                detect_multiplier: mult,
                my_discriminator: my,
                your_discriminator: your,
                desired_min_tx_us: tx,
                required_min_rx_us: rx,
                required_min_echo_rx_us: 0,
                authentication: auth
                    .then(|| Authentication::new(AuthType::KeyedSha1, vec![0; 26]).unwrap()),
            },
        )
}

fn session_config() -> impl Strategy<Value = SessionConfig> {
    (1u64..3_000_000, 1u64..3_000_000, 1u8..=10).prop_map(|(tx, rx, mult)| {
        SessionConfig::new(Duration::from_micros(tx), Duration::from_micros(rx), mult).unwrap()
    })
}

#[derive(Debug, Clone)]
enum Event {
    Packet(ControlPacket),
    /// Run the timers this long.
    Wait(Duration),
    Reload(SessionConfig),
    AdminDown,
    Enable,
}

fn events(your_choices: Vec<u32>) -> impl Strategy<Value = Vec<Event>> {
    let event = prop_oneof![
        10 => peer_packet(your_choices).prop_map(Event::Packet),
        6 => (0u64..4_000_000).prop_map(|us| Event::Wait(Duration::from_micros(us))),
        1 => session_config().prop_map(Event::Reload),
        1 => Just(Event::AdminDown),
        1 => Just(Event::Enable),
    ];
    proptest::collection::vec(event, 0..120)
}

/// Feed `events` to a fresh session, checking on every step what must
/// always hold; returns whether it ever went Up.
fn run(config: SessionConfig, seed: u32, events: Vec<Event>) -> bool {
    let t0 = Instant::now();
    let mut s: TestSession =
        Session::new(config, local_discriminator(), t0, Box::new(seeded(seed)));
    let mut now = t0;
    let mut state = s.state();
    let mut went_up = false;
    for event in events {
        let mut handshake_packet = false;
        let actions = match event {
            Event::Packet(p) => {
                handshake_packet =
                    p.your_discriminator == LOCAL && matches!(p.state, State::Init | State::Up);
                let result = s.handle_packet(now, &p);
                if result.is_err() {
                    assert_eq!(s.state(), state, "a discarded packet moves nothing");
                }
                result.unwrap_or_default()
            }
            Event::Wait(span) => {
                let until = now + span;
                let mut actions = Vec::new();
                while let Some(at) = s.poll_timeout().filter(|at| *at <= until) {
                    now = now.max(at);
                    actions.extend(s.handle_timeout(now));
                    let next = s.poll_timeout();
                    assert!(
                        next.is_none_or(|n| n > now),
                        "deadline {next:?} not after {now:?}"
                    );
                    assert!(actions.len() < 10_000, "runaway timers");
                }
                now = until;
                actions
            }
            Event::Reload(config) => {
                s.set_config(now, config);
                Vec::new()
            }
            Event::AdminDown => s.admin_down(now, Diagnostic::AdministrativelyDown),
            Event::Enable => s.enable(now),
        };
        for action in &actions {
            match action {
                Action::StateChanged { from, to, .. } => {
                    assert_eq!(*from, state, "from is the previous state");
                    assert_ne!(from, to);
                    if *to == State::Up {
                        assert!(handshake_packet, "Up without the peer's Init/Up naming us");
                        went_up = true;
                    }
                    state = *to;
                }
                Action::Transmit(p) => {
                    assert!(!(p.poll && p.final_), "never P and F together");
                    assert_eq!(p.my_discriminator, LOCAL);
                    assert_eq!(p.state, state, "packets carry the current state");
                    if p.state != State::Up {
                        assert!(
                            u64::from(p.desired_min_tx_us) >= SLOW_TX_INTERVAL.as_micros() as u64
                        );
                    }
                    if p.state != State::AdminDown {
                        assert_eq!(p.check(), Ok(()), "we send what we would accept");
                    }
                    assert_eq!(ControlPacket::decode(&p.encode()).as_ref(), Ok(p));
                }
            }
        }
        assert_eq!(s.state(), state);
        now += Duration::from_micros(1);
    }
    went_up
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_of_encode_is_the_identity(p in packet()) {
        let bytes = p.encode();
        prop_assert_eq!(bytes.len(), p.encoded_len());
        prop_assert_eq!(ControlPacket::decode(&bytes), Ok(p));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics_and_what_decodes_re_encodes_stably(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(p) = ControlPacket::decode(&bytes) {
            let again = p.encode();
            prop_assert_eq!(ControlPacket::decode(&again), Ok(p));
            prop_assert!(again.len() <= bytes.len());
        }
    }

    #[test]
    fn decoding_a_version_1_prefix_never_panics(
        head in (0u8..32).prop_map(|d| 0x20 | d),
        rest in proptest::collection::vec(any::<u8>(), 0..60),
    ) {
        let mut bytes = vec![head];
        bytes.extend(rest);
        let _ = ControlPacket::decode(&bytes);
    }

    #[test]
    fn random_packets_timeouts_and_reloads_never_panic_and_up_needs_the_handshake(
        config in session_config(),
        seed in any::<u32>(),
        events in events(vec![0, LOCAL, LOCAL, 0x3333_3333, 1]),
    ) {
        run(config, seed, events);
    }

    #[test]
    fn a_peer_that_never_names_our_discriminator_never_brings_us_up(
        config in session_config(),
        seed in any::<u32>(),
        events in events(vec![0, LOCAL + 1, 0x3333_3333, u32::MAX]),
    ) {
        prop_assert!(!run(config, seed, events));
    }
}

/// The generator can reach Up at all (else the two properties above would
/// prove nothing).
#[test]
fn the_random_event_runner_does_reach_up_with_a_proper_handshake() {
    let mut p = ControlPacket::decode(&common::unhex(
        "20800318 22222222 11111111 000493e0 000493e0 00000000",
    ))
    .unwrap();
    assert_eq!(p.state, State::Init);
    assert!(run(
        common::config(300, 300, 3),
        1,
        vec![Event::Packet(p.clone())]
    ));
    p.your_discriminator = LOCAL + 1;
    assert!(!run(common::config(300, 300, 3), 1, vec![Event::Packet(p)]));
}
