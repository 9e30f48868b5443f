//! The session state machine (RFC 5880 §6.2, §6.8): no sockets, no
//! sleeping; time is `t0 + Duration`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use anyvip_bfd::{jitter, Action, Diagnostic, Session, State};
use common::*;

fn session_in(state: State, t0: Instant) -> TestSession {
    let mut s = session(t0);
    match state {
        State::Down => {}
        State::Init => {
            s.handle_packet(t0, &from_peer(State::Down, 0)).unwrap();
        }
        State::Up => bring_up(&mut s, t0),
        State::AdminDown => {
            s.admin_down(t0, Diagnostic::AdministrativelyDown);
        }
    }
    assert_eq!(s.state(), state);
    s
}

#[test]
fn a_new_session_sends_down_at_once_with_one_second_tx_and_its_own_rx() {
    let t0 = Instant::now();
    let mut s: TestSession = Session::new(
        config(100, 100, 3),
        local_discriminator(),
        t0,
        Box::new(seeded(1)),
    );
    assert_eq!(s.poll_timeout(), Some(t0));
    let actions = s.handle_timeout(t0);
    let [Action::Transmit(p)] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert_eq!(p.state, State::Down);
    assert_eq!((p.my_discriminator, p.your_discriminator), (LOCAL, 0));
    assert_eq!(
        p.desired_min_tx_us, 1_000_000,
        "§6.8.3 slow rate while not Up"
    );
    assert_eq!(p.required_min_rx_us, 100_000);
    assert_eq!(p.detect_multiplier, 3);
    assert_eq!(p.required_min_echo_rx_us, 0, "no Echo");
    assert!(!p.poll && !p.final_ && !p.demand && p.authentication.is_none());
    assert_eq!(p.check(), Ok(()), "what we send passes our own checks");
}

#[test]
fn the_state_table_of_rfc_5880_section_6_8_6_holds_from_every_state() {
    use State::*;
    // (local, received) -> local after, diagnostic if it changed
    let table = [
        (Down, AdminDown, Down, None),
        (Down, Down, Init, Some(Diagnostic::NoDiagnostic)),
        (Down, Init, Up, Some(Diagnostic::NoDiagnostic)),
        (Down, Up, Down, None),
        (
            Init,
            AdminDown,
            Down,
            Some(Diagnostic::NeighborSignaledSessionDown),
        ),
        (Init, Down, Init, None),
        (Init, Init, Up, Some(Diagnostic::NoDiagnostic)),
        (Init, Up, Up, Some(Diagnostic::NoDiagnostic)),
        (
            Up,
            AdminDown,
            Down,
            Some(Diagnostic::NeighborSignaledSessionDown),
        ),
        (
            Up,
            Down,
            Down,
            Some(Diagnostic::NeighborSignaledSessionDown),
        ),
        (Up, Init, Up, None),
        (Up, Up, Up, None),
        (AdminDown, AdminDown, AdminDown, None),
        (AdminDown, Down, AdminDown, None),
        (AdminDown, Init, AdminDown, None),
        (AdminDown, Up, AdminDown, None),
    ];
    for (local, received, after, diagnostic) in table {
        let t0 = Instant::now();
        let mut s = session_in(local, t0);
        let t1 = t0 + ms(10);
        let your = if matches!(received, Down | AdminDown) {
            0
        } else {
            LOCAL
        };
        let actions = s.handle_packet(t1, &from_peer(received, your)).unwrap();
        assert_eq!(s.state(), after, "{local:?} receiving {received:?}");
        match diagnostic {
            Some(diagnostic) => {
                assert_eq!(
                    actions.first(),
                    Some(&Action::StateChanged {
                        from: local,
                        to: after,
                        diagnostic
                    }),
                    "{local:?} receiving {received:?}"
                );
                // The new state goes out at once, not at the next tick.
                let sent = transmitted(&actions);
                assert_eq!(sent.first().map(|p| p.state), Some(after));
                assert_eq!(sent.first().map(|p| p.diagnostic), Some(diagnostic));
            }
            None => assert_eq!(
                state_changes(&actions),
                vec![],
                "{local:?} receiving {received:?}"
            ),
        }
    }
}

#[test]
fn up_is_reached_only_through_the_three_way_handshake() {
    let t0 = Instant::now();
    let mut s = session(t0);
    // The peer says Up but has never heard us: discarded (Your Discr 0).
    assert!(s.handle_packet(t0, &from_peer(State::Up, 0)).is_err());
    // Down -> Init, and the Init packet carries the peer's discriminator.
    let actions = s
        .handle_packet(t0 + ms(1), &from_peer(State::Down, 0))
        .unwrap();
    assert_eq!(state_changes(&actions), vec![(State::Down, State::Init)]);
    assert_eq!(transmitted(&actions)[0].your_discriminator, REMOTE);
    // The peer's Up with our discriminator completes it.
    let actions = s
        .handle_packet(t0 + ms(2), &from_peer(State::Up, LOCAL))
        .unwrap();
    assert_eq!(state_changes(&actions), vec![(State::Init, State::Up)]);
}

#[test]
fn going_up_advertises_the_configured_tx_with_a_poll_as_frr_and_bird_do() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let actions = s.handle_packet(t0, &from_peer(State::Init, LOCAL)).unwrap();
    let up = transmitted(&actions)[0];
    assert_eq!(
        (up.state, up.poll, up.desired_min_tx_us),
        (State::Up, true, 300_000)
    );
    assert!(s.polling());
    // The peer's Final ends it; later packets have no P.
    let mut fin = from_peer(State::Up, LOCAL);
    fin.final_ = true;
    s.handle_packet(t0 + ms(5), &fin).unwrap();
    assert!(!s.polling());
    let later = run_until(&mut s, t0 + ms(400));
    let sent: Vec<_> = later
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Transmit(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|p| !p.poll && p.state == State::Up));
}

#[test]
fn detection_timeout_in_up_goes_down_with_diagnostic_1_after_mult_times_the_interval() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    assert_eq!(s.detection_time(), Some(ms(900)));
    let events = run_until(&mut s, t0 + ms(899));
    assert!(state_changes(&events.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>()).is_empty());
    assert_eq!(s.state(), State::Up);
    let events = run_until(&mut s, t0 + ms(900));
    let (at, first) = events
        .iter()
        .find(|(_, a)| matches!(a, Action::StateChanged { .. }))
        .unwrap();
    assert_eq!(*at, t0 + ms(900));
    assert_eq!(
        first,
        &Action::StateChanged {
            from: State::Up,
            to: State::Down,
            diagnostic: Diagnostic::ControlDetectionTimeExpired
        }
    );
    // §6.8.1: bfd.RemoteDiscr is zeroed; the Down packet says so.
    assert_eq!(s.remote_discriminator(), None);
    let down = events
        .iter()
        .find_map(|(_, a)| match a {
            Action::Transmit(p) => Some(p),
            _ => None,
        })
        .unwrap();
    assert_eq!((down.state, down.your_discriminator), (State::Down, 0));
    assert_eq!(down.diagnostic, Diagnostic::ControlDetectionTimeExpired);
    assert_eq!(down.desired_min_tx_us, 1_000_000, "back to the slow rate");
}

#[test]
fn detection_timeout_in_init_goes_down_and_in_down_only_forgets_the_peer() {
    let t0 = Instant::now();
    let mut s = session_in(State::Init, t0);
    // Peer's Down packet said 1 s TX: 3 x max(300 ms, 1 s).
    let mut down = from_peer(State::Down, 0);
    down.desired_min_tx_us = 1_000_000;
    s.handle_packet(t0, &down).unwrap();
    assert_eq!(s.detection_time(), Some(ms(3000)));
    run_until(&mut s, t0 + ms(3000));
    assert_eq!(s.state(), State::Down);
    assert_eq!(
        s.local_diagnostic(),
        Diagnostic::ControlDetectionTimeExpired
    );

    let mut s = session(t0);
    s.handle_packet(t0, &from_peer(State::AdminDown, 0))
        .unwrap();
    assert_eq!(s.remote_discriminator().map(|d| d.get()), Some(REMOTE));
    let events = run_until(&mut s, t0 + ms(1000));
    assert!(events.iter().all(|(_, a)| matches!(a, Action::Transmit(_))));
    assert_eq!(s.remote_discriminator(), None);
    assert_eq!(s.detection_time(), None);
}

#[test]
fn every_accepted_packet_restarts_the_detection_time() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    for step in 1..=10 {
        let at = t0 + ms(800 * step);
        run_until(&mut s, at - ms(1));
        s.handle_packet(at, &from_peer(State::Up, LOCAL)).unwrap();
        assert_eq!(s.state(), State::Up, "step {step}");
    }
}

#[test]
fn detection_time_is_remote_mult_times_the_larger_of_local_rx_and_remote_tx() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let mut p = from_peer(State::Up, LOCAL);
    p.detect_multiplier = 5;
    p.desired_min_tx_us = 500_000;
    s.handle_packet(t0, &p).unwrap();
    assert_eq!(s.detection_time(), Some(ms(2500)));
    p.desired_min_tx_us = 50_000;
    p.detect_multiplier = 2;
    s.handle_packet(t0, &p).unwrap();
    assert_eq!(
        s.detection_time(),
        Some(ms(600)),
        "local RequiredMinRx 300 ms wins"
    );
}

#[test]
fn transmit_interval_is_the_larger_of_local_tx_and_remote_rx() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let mut fin = from_peer(State::Up, LOCAL);
    fin.final_ = true;
    fin.required_min_rx_us = 700_000;
    s.handle_packet(t0, &fin).unwrap();
    assert_eq!(s.transmit_interval(), Some(ms(700)));
    fin.required_min_rx_us = 10_000;
    s.handle_packet(t0, &fin).unwrap();
    assert_eq!(s.transmit_interval(), Some(ms(300)));
}

#[test]
fn a_lower_remote_rx_is_honoured_at_once_not_after_the_old_interval() {
    let t0 = Instant::now();
    let mut s = session(t0);
    // Down: 1 s. Peer asks for 2 s, then lowers to 100 ms: we stay at 1 s
    // (slow rate), but the next packet moves no later than 1 s from now.
    let mut p = from_peer(State::Down, 0);
    p.required_min_rx_us = 2_000_000;
    s.handle_packet(t0, &p).unwrap();
    let t1 = t0 + ms(10);
    p.required_min_rx_us = 100_000;
    s.handle_packet(t1, &p).unwrap();
    assert!(s.poll_timeout().unwrap() <= t1 + ms(1000));
}

#[test]
fn while_not_up_packets_go_out_no_faster_than_every_750_ms() {
    let t0 = Instant::now();
    for state in [State::Down, State::Init, State::AdminDown] {
        let mut s = session_with(t0, config(10, 10, 3));
        if state == State::Init {
            let mut p = from_peer(State::Down, 0);
            p.required_min_rx_us = 1; // the peer would take anything
            p.desired_min_tx_us = 10_000_000; // and says it sends slowly
            s.handle_packet(t0, &p).unwrap();
        } else if state == State::AdminDown {
            s.admin_down(t0, Diagnostic::AdministrativelyDown);
        }
        assert_eq!(s.transmit_interval(), Some(ms(1000)));
        let times = send_times(&run_until(&mut s, t0 + Duration::from_secs(20)));
        assert!(times.len() >= 19, "{state:?}: {} packets", times.len());
        for gap in times.windows(2).map(|w| w[1] - w[0]) {
            assert!(gap >= ms(750) && gap <= ms(1000), "{state:?}: gap {gap:?}");
        }
    }
}

#[test]
fn periodic_jitter_stays_within_75_to_100_percent_of_the_interval() {
    for seed in 1..=20 {
        let t0 = Instant::now();
        let mut s: TestSession = Session::new(
            config(300, 300, 3),
            local_discriminator(),
            t0,
            Box::new(seeded(seed)),
        );
        bring_up(&mut s, t0);
        let mut gaps = Vec::new();
        let mut last = t0;
        // Keep it Up by feeding a packet every 200 ms, Final first.
        for step in 1..=50u32 {
            let at = t0 + ms(200) * step;
            for t in send_times(&run_until(&mut s, at)) {
                gaps.push(t - last);
                last = t;
            }
            let mut p = from_peer(State::Up, LOCAL);
            p.final_ = step == 1;
            s.handle_packet(at, &p).unwrap();
        }
        let (min, max) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
        assert!(
            *min >= ms(225) && *max < ms(300),
            "seed {seed}: {min:?}..{max:?}"
        );
        assert!(gaps.len() > 30);
    }
}

#[test]
fn with_detect_mult_1_jitter_stays_within_75_to_90_percent() {
    let mut rng = seeded(3);
    let interval = ms(1000);
    for _ in 0..10_000 {
        let j = jitter(interval, 1, &mut rng);
        assert!(j >= ms(750) && j < ms(900), "{j:?}");
    }
    assert_eq!(jitter(interval, 1, &mut || 0u32), ms(750));
    let top = jitter(interval, 1, &mut || u32::MAX);
    assert!(top < ms(900) && top > ms(899));
    let top = jitter(interval, 3, &mut || u32::MAX);
    assert!(top < ms(1000) && top > ms(999));
}

#[test]
fn a_poll_is_answered_at_once_with_final_and_never_both_bits() {
    let t0 = Instant::now();
    for state in [State::Down, State::Init, State::Up, State::AdminDown] {
        let mut s = session_in(state, t0);
        assert_eq!(s.polling(), state == State::Up, "going Up starts a poll");
        let your = if state == State::Down { 0 } else { LOCAL };
        let mut p = from_peer(if your == 0 { State::Down } else { State::Up }, your);
        p.poll = true;
        let actions = s.handle_packet(t0 + ms(1), &p).unwrap();
        let last = transmitted(&actions).last().copied().unwrap();
        assert!(last.final_ && !last.poll, "{state:?}: {last:?}");
    }
}

#[test]
fn a_reload_that_raises_tx_waits_for_the_final_and_keeps_the_session_up() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let mut fin = from_peer(State::Up, LOCAL);
    fin.final_ = true;
    fin.required_min_rx_us = 1;
    s.handle_packet(t0, &fin).unwrap();
    assert!(!s.polling());
    let t1 = t0 + ms(10);
    s.set_config(t1, config(1000, 300, 3));
    // §6.5: the Poll rides the periodic packets; nothing extra goes out.
    assert!(s.polling());
    assert_eq!(s.transmit_interval(), Some(ms(300)), "held until Final");
    let events = run_until(&mut s, t1 + ms(300));
    let sent: Vec<_> = events
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Transmit(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].poll && sent[0].desired_min_tx_us == 1_000_000);
    assert!(
        events.iter().all(|(_, a)| matches!(a, Action::Transmit(_))),
        "no state change"
    );
    s.handle_packet(t1 + ms(300), &fin).unwrap();
    assert!(!s.polling());
    assert_eq!(s.transmit_interval(), Some(ms(1000)));
    assert_eq!(s.state(), State::Up);
}

#[test]
fn a_reload_that_lowers_rx_keeps_the_old_detection_time_until_the_final() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let mut p = from_peer(State::Up, LOCAL);
    p.desired_min_tx_us = 50_000;
    p.final_ = true;
    s.handle_packet(t0, &p).unwrap();
    assert_eq!(s.detection_time(), Some(ms(900)));
    s.set_config(t0, config(300, 100, 3));
    p.final_ = false;
    s.handle_packet(t0 + ms(1), &p).unwrap();
    assert_eq!(s.detection_time(), Some(ms(900)), "held until Final");
    p.final_ = true;
    s.handle_packet(t0 + ms(2), &p).unwrap();
    assert_eq!(s.detection_time(), Some(ms(300)));
}

#[test]
fn a_reload_that_lowers_tx_or_raises_rx_applies_at_once() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let mut p = from_peer(State::Up, LOCAL);
    p.final_ = true;
    p.required_min_rx_us = 1;
    s.handle_packet(t0, &p).unwrap();
    s.set_config(t0, config(100, 600, 3));
    assert!(s.polling());
    assert_eq!(s.transmit_interval(), Some(ms(100)));
    assert_eq!(s.detection_time(), Some(ms(1800)));
    assert!(
        s.poll_timeout().unwrap() <= t0 + ms(100),
        "the faster rate starts now"
    );
}

#[test]
fn a_final_for_a_poll_whose_values_changed_since_takes_one_more_round() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let mut fin = from_peer(State::Up, LOCAL);
    fin.final_ = true;
    fin.required_min_rx_us = 1;
    s.handle_packet(t0, &fin).unwrap();
    s.set_config(t0, config(1000, 300, 3));
    s.set_config(t0 + ms(1), config(2000, 300, 3));
    s.handle_packet(t0 + ms(2), &fin).unwrap();
    assert!(s.polling(), "that Final may answer the 1 s Poll");
    assert_eq!(s.transmit_interval(), Some(ms(300)));
    s.handle_packet(t0 + ms(3), &fin).unwrap();
    assert!(!s.polling());
    assert_eq!(s.transmit_interval(), Some(ms(2000)));
}

#[test]
fn a_new_detect_multiplier_goes_out_in_the_next_packet_without_a_poll() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.set_config(t0, config(300, 300, 5));
    assert!(!s.polling());
    let sent = send_times(&run_until(&mut s, t0 + ms(1000)));
    assert_eq!(sent.len(), 1);
    let actions = s.handle_timeout(s.poll_timeout().unwrap());
    assert_eq!(transmitted(&actions)[0].detect_multiplier, 5);
}

#[test]
fn admin_down_sends_admin_down_with_its_diagnostic_and_ignores_the_peer() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let actions = s.admin_down(t0 + ms(1), Diagnostic::AdministrativelyDown);
    assert_eq!(
        actions.first(),
        Some(&Action::StateChanged {
            from: State::Up,
            to: State::AdminDown,
            diagnostic: Diagnostic::AdministrativelyDown
        })
    );
    let sent = transmitted(&actions)[0];
    assert_eq!(
        (sent.state, sent.diagnostic),
        (State::AdminDown, Diagnostic::AdministrativelyDown)
    );
    assert_eq!(sent.your_discriminator, REMOTE);
    // The peer keeps talking; nothing moves, and AdminDown keeps going out.
    for (i, state) in [State::Up, State::Down, State::Init]
        .into_iter()
        .enumerate()
    {
        let at = t0 + ms(100) * (i as u32 + 2);
        let actions = s.handle_packet(at, &from_peer(state, LOCAL)).unwrap();
        assert!(actions.is_empty(), "{actions:?}");
    }
    let events = run_until(&mut s, t0 + ms(5000));
    assert!(events
        .iter()
        .all(|(_, a)| matches!(a, Action::Transmit(p) if p.state == State::AdminDown)));
    assert!(send_times(&events).len() >= 4);
    assert!(
        s.admin_down(t0 + ms(5001), Diagnostic::PathDown).is_empty(),
        "already AdminDown"
    );
}

#[test]
fn enable_returns_to_down_and_the_handshake_runs_again() {
    let t0 = Instant::now();
    let mut s = session_in(State::AdminDown, t0);
    assert!(
        session_in(State::Up, t0).enable(t0).is_empty(),
        "enable outside AdminDown does nothing"
    );
    let actions = s.enable(t0 + ms(1));
    assert_eq!(
        actions.first(),
        Some(&Action::StateChanged {
            from: State::AdminDown,
            to: State::Down,
            diagnostic: Diagnostic::NoDiagnostic
        })
    );
    assert_eq!(transmitted(&actions)[0].state, State::Down);
    s.handle_packet(t0 + ms(2), &from_peer(State::Down, 0))
        .unwrap();
    s.handle_packet(t0 + ms(3), &from_peer(State::Up, LOCAL))
        .unwrap();
    assert_eq!(s.state(), State::Up);
}

#[test]
fn the_peer_going_admin_down_takes_us_down_with_diagnostic_3_and_no_detection_failure() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let actions = s
        .handle_packet(t0 + ms(1), &from_peer(State::AdminDown, LOCAL))
        .unwrap();
    assert_eq!(
        actions.first(),
        Some(&Action::StateChanged {
            from: State::Up,
            to: State::Down,
            diagnostic: Diagnostic::NeighborSignaledSessionDown
        })
    );
    assert_eq!(s.remote_state(), State::AdminDown);
    // While the peer stays AdminDown we stay Down: no Init, no flapping.
    for step in 2..20u32 {
        let at = t0 + ms(500) * step;
        let events = run_until(&mut s, at);
        assert!(events.iter().all(|(_, a)| matches!(a, Action::Transmit(_))));
        let actions = s
            .handle_packet(at, &from_peer(State::AdminDown, LOCAL))
            .unwrap();
        assert!(state_changes(&actions).is_empty());
    }
    assert_eq!(s.state(), State::Down);
}

#[test]
fn a_peer_that_asks_for_no_packets_gets_none_but_its_polls_are_answered() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut p = from_peer(State::Down, 0);
    p.required_min_rx_us = 0;
    p.desired_min_tx_us = 1_000_000; // Detection Time 3 s
    s.handle_packet(t0, &p).unwrap();
    assert_eq!(s.state(), State::Init);
    assert_eq!(s.transmit_interval(), None);
    let events = run_until(&mut s, t0 + ms(2900));
    assert!(send_times(&events).is_empty(), "{events:?}");
    p.poll = true;
    let actions = s.handle_packet(t0 + ms(2950), &p).unwrap();
    assert!(transmitted(&actions).iter().any(|p| p.final_));
    // After a Detection Time of silence it is forgotten and we talk again.
    let events = run_until(&mut s, t0 + ms(7000));
    assert!(!send_times(&events).is_empty());
}

#[test]
fn a_peer_in_demand_mode_with_both_up_gets_no_periodic_packets() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let mut p = from_peer(State::Up, LOCAL);
    p.final_ = true;
    p.demand = true;
    s.handle_packet(t0, &p).unwrap();
    assert_eq!(s.transmit_interval(), None);
    p.final_ = false;
    p.demand = false;
    s.handle_packet(t0 + ms(1), &p).unwrap();
    assert_eq!(s.transmit_interval(), Some(ms(300)));
}

#[test]
fn time_running_backwards_is_treated_as_no_time_passing() {
    let t0 = Instant::now() + Duration::from_secs(60);
    let mut s = session_in(State::Up, t0);
    let before = s.poll_timeout();
    assert!(s.handle_timeout(t0 - Duration::from_secs(30)).is_empty());
    s.handle_packet(t0 - Duration::from_secs(30), &from_peer(State::Up, LOCAL))
        .unwrap();
    assert!(s.poll_timeout() >= before.map(|b| b.min(t0)));
    assert_eq!(s.state(), State::Up);
}

#[test]
fn a_packet_before_the_first_transmission_does_not_delay_it() {
    let t0 = Instant::now();
    let mut s: TestSession = Session::new(
        config(300, 300, 3),
        local_discriminator(),
        t0,
        Box::new(seeded(5)),
    );
    s.handle_packet(t0, &from_peer(State::AdminDown, 0))
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(t0));
}
