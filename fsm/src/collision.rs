//! Connection collision detection (RFC 4271 §6.8).
//!
//! Both speakers may connect to each other at once; once an OPEN reveals the
//! peer's BGP Identifier, one of the two connections has to go, and both
//! ends must pick the same one. The rule keeps the connection initiated by
//! the speaker with the higher identifier, except that an Established
//! connection always stays.

use std::cmp::Ordering;
use std::net::Ipv4Addr;

use anyvip_proto::Asn;

use crate::connection::Direction;
use crate::state::State;

/// Which of our connections the §6.8 rule prefers.
///
/// RFC 4271 §6.8: "the BGP Identifiers of the peers involved in the
/// connection collision are compared ... as 4-octet unsigned integers";
/// the connection initiated by the higher one is kept. When the
/// identifiers are equal (allowed between ASes by RFC 6286), RFC 6286 §2.3:
/// "the connection initiated by the BGP speaker with the larger AS number
/// is preserved."
pub fn preferred_direction(
    local_id: Ipv4Addr,
    local_asn: Asn,
    peer_id: Ipv4Addr,
    peer_asn: Asn,
) -> Direction {
    match u32::from(local_id)
        .cmp(&u32::from(peer_id))
        .then(local_asn.cmp(&peer_asn))
    {
        Ordering::Greater => Direction::Outgoing,
        Ordering::Less | Ordering::Equal => Direction::Incoming,
    }
}

/// One of two colliding connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub direction: Direction,
    pub state: State,
}

/// Which connection of a collision is kept; the other is closed with
/// Cease / Connection Collision Resolution (6/7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Survivor {
    Existing,
    New,
}

/// Resolve a collision between the `existing` connection and the `new` one
/// on which the peer's OPEN just arrived. `preferred` comes from
/// [`preferred_direction`].
pub fn resolve_collision(existing: Side, new: Side, preferred: Direction) -> Survivor {
    // RFC 4271 §6.8: "a connection collision with an existing BGP
    // connection that is in the Established state causes closing of the
    // newly created connection."
    if existing.state == State::Established {
        return Survivor::Existing;
    }
    if new.state == State::Established {
        return Survivor::New;
    }
    if existing.direction == new.direction {
        // Not a collision the rule can decide (both initiated by the same
        // side); keep the connection that got further.
        return Survivor::Existing;
    }
    if new.direction == preferred {
        Survivor::New
    } else {
        Survivor::Existing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const HIGH: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn connection_initiated_by_the_higher_router_id_is_preferred() {
        assert_eq!(
            preferred_direction(HIGH, Asn(65001), LOW, Asn(65000)),
            Direction::Outgoing
        );
        assert_eq!(
            preferred_direction(LOW, Asn(65001), HIGH, Asn(65000)),
            Direction::Incoming
        );
    }

    #[test]
    fn router_ids_compare_as_unsigned_integers() {
        // 128.0.0.1 is above 127.255.255.255 only when compared unsigned.
        let a = Ipv4Addr::new(128, 0, 0, 1);
        let b = Ipv4Addr::new(127, 255, 255, 255);
        assert_eq!(
            preferred_direction(a, Asn(1), b, Asn(2)),
            Direction::Outgoing
        );
    }

    #[test]
    fn equal_router_ids_are_broken_by_the_larger_as_number() {
        assert_eq!(
            preferred_direction(LOW, Asn(65010), LOW, Asn(65000)),
            Direction::Outgoing
        );
        assert_eq!(
            preferred_direction(LOW, Asn(65000), LOW, Asn(65010)),
            Direction::Incoming
        );
    }

    #[test]
    fn higher_router_id_wins_and_established_always_wins() {
        let out = |state| Side {
            direction: Direction::Outgoing,
            state,
        };
        let inc = |state| Side {
            direction: Direction::Incoming,
            state,
        };
        // We have the higher id: keep our outgoing connection.
        let preferred = preferred_direction(HIGH, Asn(1), LOW, Asn(2));
        assert_eq!(
            resolve_collision(out(State::OpenConfirm), inc(State::OpenSent), preferred),
            Survivor::Existing
        );
        assert_eq!(
            resolve_collision(inc(State::OpenConfirm), out(State::OpenSent), preferred),
            Survivor::New
        );
        // An Established connection stays even when the rule prefers the
        // other one.
        assert_eq!(
            resolve_collision(inc(State::Established), out(State::OpenSent), preferred),
            Survivor::Existing
        );
    }
}
