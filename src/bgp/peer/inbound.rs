//! The receiving half of one connection: bytes in, messages out, and the
//! counters of what the peer sent us.
//!
//! Messages are taken out of the buffer one at a time, because the peer
//! task must feed each to the session FSM before decoding the next: the
//! decoding context changes when the session reaches Established.

use std::io;

use anyvip_proto::{frame, Context, DecodeError, Message, Update};
use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;

use super::{family_of_prefix, PeerStatus};

pub struct Inbound {
    half: OwnedReadHalf,
    buf: BytesMut,
}

impl Inbound {
    pub fn new(half: OwnedReadHalf) -> Inbound {
        Inbound {
            half,
            buf: BytesMut::with_capacity(anyvip_proto::MAX_LEN),
        }
    }

    /// Wait for more bytes; `Ok(0)` is the end of the stream.
    pub async fn read(&mut self) -> io::Result<usize> {
        self.half.read_buf(&mut self.buf).await
    }

    /// The next complete message in the buffer, decoded with `context`;
    /// `None` when more bytes are needed. After an error the stream cannot
    /// be resynchronised: the caller drops the connection.
    pub fn next_message(&mut self, context: &Context) -> Option<Result<Message, DecodeError>> {
        match frame(&self.buf, context) {
            Ok(None) => {
                // Room for one whole message, never more: a peer cannot
                // make us buffer more than that.
                self.buf.reserve(anyvip_proto::MAX_LEN);
                None
            }
            Ok(Some(f)) => {
                let len = f.message.len();
                let decoded = Message::decode(&f, context);
                self.buf.advance(len);
                Some(decoded)
            }
            Err(e) => Some(Err(e)),
        }
    }
}

/// Count an UPDATE the FSM accepted, prefixes by family. RFC 7606
/// treat-as-withdraw: the announced prefixes count as withdrawn; we keep
/// no routes either way, so only the counters differ.
pub fn count_update(status: &mut PeerStatus, update: &Update) {
    if let Some(t) = update.treatment() {
        tracing::debug!(treatment = ?t, errors = ?update.errors, "malformed UPDATE handled per RFC 7606");
    }
    status.updates_received += 1;
    for n in update.announced() {
        *status
            .prefixes_received
            .entry(family_of_prefix(&n.prefix).to_string())
            .or_default() += 1;
    }
}
