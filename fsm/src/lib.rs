//! The BGP-4 session state machine (RFC 4271 §8) for one configured peer.
//!
//! Pure: no sockets, no async runtime, no clock, no threads. The peer task
//! that owns the sockets feeds [`Event`]s in with the current time and
//! carries out the [`Action`]s that come back:
//!
//! ```text
//!            Event (admin, TCP, message, timeout)  + now
//!   peer task ───────────────────────────────────────────▶ Fsm::handle
//!       ▲                                                      │
//!       └──────────── Vec<Action> (connect, send, close, ...) ─┘
//!   sleep until Fsm::poll_timeout(), then Fsm::handle_timeout(now)
//! ```
//!
//! Timers (ConnectRetry, Hold, Keepalive) are deadlines the machine owns;
//! jitter (RFC 4271 §10) comes from an injected [`Rng`], so tests are
//! deterministic and no real time has to pass.
//!
//! # Connections and collisions
//!
//! RFC 4271 §8 runs one state machine per TCP connection and resolves a
//! connection collision (§6.8) between them. [`Fsm`] does the same inside
//! one value: it tracks at most one outgoing and one incoming connection,
//! each with its own state and timers, and the session state it reports is
//! the furthest of the two (or Idle/Active when there is none). When an OPEN
//! arrives on one connection while the other is in OpenConfirm or
//! Established, [`resolve_collision`] decides which survives and the loser
//! is closed with Cease / Connection Collision Resolution (6/7). Every
//! connection event carries a [`ConnectionId`] that the machine issued, so
//! events about a connection it has already dropped are ignored.

#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod action;
mod backoff;
mod collision;
mod config;
mod connection;
mod event;
mod open_check;
mod session;
mod state;
mod timers;

#[cfg(test)]
mod tests;

pub use action::{Action, DownReason, Negotiated};
pub use collision::{preferred_direction, resolve_collision, Side, Survivor};
pub use config::SessionConfig;
pub use connection::{ConnectionId, ConnectionView, Direction};
pub use event::Event;
pub use open_check::{check_open, local_open};
pub use session::Fsm;
pub use state::State;
pub use timers::{jitter, Rng, SplitMix64, OPEN_SENT_HOLD_TIME};
