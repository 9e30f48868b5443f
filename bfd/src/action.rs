//! What a session asks its caller to do.

use crate::packet::{ControlPacket, Diagnostic, State};

/// Output of the [`Session`](crate::Session) methods, to be carried out in
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this packet to the peer (encode with
    /// [`ControlPacket::encode`]).
    Transmit(ControlPacket),
    /// bfd.SessionState changed; `diagnostic` is bfd.LocalDiag after the
    /// change (why it went down, or No Diagnostic when it came up).
    StateChanged {
        from: State,
        to: State,
        diagnostic: Diagnostic,
    },
}
