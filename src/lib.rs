//! The anyvip daemon as a library: the binary in `main.rs` is its CLI, and
//! the integration tests drive the same modules.

pub mod address;
pub mod api;
pub mod bfd;
pub mod bgp;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod health;
pub mod notify;
pub mod steer;
pub mod vip;
