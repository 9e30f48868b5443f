//! Rise/fall hysteresis: the pure part of a check. No clock, no I/O.
//!
//! A check starts [`Health::Down`] (unknown is down: design invariant 1,
//! "fail closed"). While down, `rise` consecutive passes bring it up; any
//! failure on the way starts the count again. While up, `fall` consecutive
//! failures bring it down; any pass on the way starts that count again. So
//! after every failure, however short, a VIP needs `rise` fresh passes
//! before it is announced again, and down -> up happens every time the
//! passes are there (no "never re-added after recovery").

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    Down,
    Up,
}

impl Health {
    pub fn is_up(self) -> bool {
        self == Health::Up
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Down => "down",
            Health::Up => "up",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    health: Health,
    /// Consecutive results against the current health (passes while down,
    /// failures while up); reset by any result that agrees with it.
    streak: u32,
}

impl Hysteresis {
    /// Down, with no passes yet. `rise` and `fall` below 1 count as 1.
    pub fn new(rise: u32, fall: u32) -> Hysteresis {
        Hysteresis {
            rise: rise.max(1),
            fall: fall.max(1),
            health: Health::Down,
            streak: 0,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// Record one probe result. Returns the new health when it changed.
    pub fn record(&mut self, pass: bool) -> Option<Health> {
        let (against, needed, next) = match self.health {
            Health::Down => (pass, self.rise, Health::Up),
            Health::Up => (!pass, self.fall, Health::Down),
        };
        if !against {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < needed {
            return None;
        }
        self.health = next;
        self.streak = 0;
        Some(next)
    }

    /// Results so far towards a change, and how many it takes: `(1, 3)`
    /// is "one pass of the three needed to come up" while down.
    pub fn progress(&self) -> (u32, u32) {
        match self.health {
            Health::Down => (self.streak, self.rise),
            Health::Up => (self.streak, self.fall),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed results ("P" pass, "F" fail) and return the health after each.
    fn run(h: &mut Hysteresis, results: &str) -> String {
        results
            .chars()
            .map(|c| {
                h.record(c == 'P');
                if h.health().is_up() {
                    'U'
                } else {
                    'D'
                }
            })
            .collect()
    }

    #[test]
    fn starts_down_with_no_progress() {
        let h = Hysteresis::new(3, 2);
        assert_eq!(h.health(), Health::Down);
        assert_eq!(h.progress(), (0, 3));
    }

    #[test]
    fn rise_minus_one_passes_are_not_enough() {
        let mut h = Hysteresis::new(3, 2);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), None);
        assert_eq!(h.health(), Health::Down);
        assert_eq!(h.progress(), (2, 3));
        assert_eq!(h.record(true), Some(Health::Up));
        assert_eq!(h.progress(), (0, 2));
    }

    #[test]
    fn a_failure_on_the_way_up_starts_the_count_again() {
        let mut h = Hysteresis::new(3, 2);
        assert_eq!(run(&mut h, "PPFPP"), "DDDDD");
        assert_eq!(h.progress(), (2, 3));
        assert_eq!(run(&mut h, "P"), "U");
    }

    #[test]
    fn failures_while_down_keep_it_down() {
        let mut h = Hysteresis::new(1, 1);
        assert_eq!(run(&mut h, "FFFF"), "DDDD");
        assert_eq!(h.record(false), None, "no change, no report");
    }

    #[test]
    fn fall_consecutive_failures_bring_it_down() {
        let mut h = Hysteresis::new(2, 3);
        assert_eq!(run(&mut h, "PP"), "DU");
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.progress(), (2, 3));
        assert_eq!(h.record(false), Some(Health::Down));
    }

    #[test]
    fn a_pass_between_failures_keeps_it_up() {
        let mut h = Hysteresis::new(1, 2);
        assert_eq!(run(&mut h, "PFPFPFP"), "UUUUUUU");
        assert_eq!(run(&mut h, "FF"), "UD");
    }

    #[test]
    fn flapping_never_comes_up_and_recovery_needs_rise_fresh_passes() {
        let mut h = Hysteresis::new(3, 2);
        // Alternating results: never three passes in a row.
        assert_eq!(run(&mut h, "PFPFPFPFPF"), "DDDDDDDDDD");
        // Up, down, and up again: re-added every time, after `rise` passes.
        for _ in 0..20 {
            assert_eq!(run(&mut h, "PPP"), "DDU");
            assert_eq!(run(&mut h, "FF"), "UD");
        }
    }

    #[test]
    fn rise_and_fall_of_one_follow_every_result() {
        let mut h = Hysteresis::new(1, 1);
        assert_eq!(run(&mut h, "PFPPFF"), "UDUUDD");
    }

    #[test]
    fn zero_is_treated_as_one() {
        let mut h = Hysteresis::new(0, 0);
        assert_eq!(h.record(true), Some(Health::Up));
        assert_eq!(h.record(false), Some(Health::Down));
    }
}
