//! Bidirectional Forwarding Detection (RFC 5880) for anyvip: the Control
//! packet codec and the per-peer session state machine.
//!
//! Pure: no sockets, no async runtime, no clock, no threads. The daemon
//! owns the UDP sockets (RFC 5881 single hop, RFC 5883 multihop: ports,
//! TTL 255 and its check are socket-level and not in here), the clock and
//! the table of sessions, and drives each [`Session`]:
//!
//! ```text
//!   datagram ─▶ ControlPacket::decode ─▶ find session ─▶ Session::handle_packet(now, &packet)
//!                 (Err: Discard)          (by Your Discr     (Err: Discard)    │
//!                                          or by address)                      ▼
//!   sleep until Session::poll_timeout(), then Session::handle_timeout(now) ─▶ Vec<Action>
//!   reload: Session::set_config   stop: Session::admin_down   start: Session::enable
//! ```
//!
//! [`Action::Transmit`] asks for a packet to be sent, [`Action::StateChanged`]
//! reports a transition with its [`Diagnostic`]. Every discarded packet
//! comes back as a [`Discard`] reason, one per rule of RFC 5880 §6.8.6, for
//! the caller to count.
//!
//! Timers (the periodic transmission and the Detection Time) are deadlines
//! the session owns; transmit jitter (§6.8.7) comes from an injected
//! [`Rng`], so tests are deterministic and no real time passes.
//!
//! # What is implemented
//! Asynchronous mode with the three-way handshake (§6.2), the §6.8.6
//! reception checks in the RFC's order, timer negotiation (§6.8.2, §6.8.4),
//! Poll Sequences for interval changes with the §6.8.3 rules on when a new
//! value takes effect, one-second transmission while not Up (§6.8.3),
//! jitter (§6.8.7) and administrative control (§6.8.16).
//!
//! # What is not
//! - **Echo mode** (§6.4): we advertise Required Min Echo RX Interval 0, so
//!   peers send us no Echo packets, and we send none.
//! - **Demand mode** (§6.6): we never set D. A peer that asks for it is
//!   honoured as §6.8.7 requires (no periodic packets from us while both
//!   are Up and no Poll is outstanding).
//! - **Authentication** (§6.7): packets with the A bit are discarded and
//!   counted ([`Discard::AuthenticationNotConfigured`]); the section is
//!   parsed only far enough to be recognised ([`Authentication`]).
//! - **Passive role** (§6.1): we always send first.

#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod action;
mod config;
mod discard;
mod jitter;
mod packet;
mod session;

pub use action::Action;
pub use config::{ConfigError, SessionConfig, MAX_INTERVAL};
pub use discard::Discard;
pub use jitter::{jitter, Rng};
pub use packet::{
    AuthType, Authentication, AuthenticationTooLong, ControlPacket, Diagnostic, State,
    MANDATORY_LEN, MAX_AUTH_DATA_LEN, VERSION,
};
pub use session::{Session, SLOW_TX_INTERVAL};
