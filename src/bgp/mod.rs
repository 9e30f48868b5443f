//! BGP sessions: what we announce, the sockets, and one task per peer.

pub mod announce;
pub mod listener;
pub mod peer;
pub mod socket;
