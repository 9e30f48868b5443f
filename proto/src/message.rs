//! The five BGP messages, decoded from a [`Frame`] and encoded with header.

use bytes::{BufMut, Bytes, BytesMut};

use crate::context::Context;
use crate::encode::{begin_u16, finish_u16, EncodeError};
use crate::error::DecodeError;
use crate::header::{frame, Frame, MessageType, MARKER};
use crate::notification::Notification;
use crate::open::Open;
use crate::route_refresh::RouteRefresh;
use crate::update::Update;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Decode a complete frame.
    pub fn decode(frame: &Frame<'_>, ctx: &Context) -> Result<Message, DecodeError> {
        Ok(match frame.message_type {
            MessageType::Open => Message::Open(Open::decode(frame.body)?),
            MessageType::Update => Message::Update(Update::decode(frame.body, ctx)?),
            MessageType::Notification => Message::Notification(Notification::decode(frame.body)?),
            MessageType::Keepalive => Message::Keepalive,
            MessageType::RouteRefresh => {
                Message::RouteRefresh(RouteRefresh::decode(frame.body, frame.message)?)
            }
        })
    }

    /// Decode the message at the start of `buf`: `Ok(None)` until all of it
    /// has arrived, otherwise the message and how many octets it used.
    pub fn decode_from(buf: &[u8], ctx: &Context) -> Result<Option<(Message, usize)>, DecodeError> {
        match frame(buf, ctx)? {
            None => Ok(None),
            Some(f) => Ok(Some((Message::decode(&f, ctx)?, f.message.len()))),
        }
    }

    /// Append the message, header included, to `out`. Fails if any field
    /// (or the whole message, beyond the session's maximum) is too large;
    /// `out` is then left as it was.
    pub fn encode(&self, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_unchecked(ctx, out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(
        &self,
        ctx: &Context,
        out: &mut BytesMut,
        start: usize,
    ) -> Result<(), EncodeError> {
        out.put_slice(&MARKER);
        let at = begin_u16(out);
        out.put_u8(self.message_type().code());
        match self {
            Message::Open(open) => open.encode_body(out)?,
            Message::Update(update) => update.encode_body(ctx, out)?,
            Message::Notification(n) => n.encode_body(out),
            Message::Keepalive => {}
            Message::RouteRefresh(rr) => rr.encode_body(out),
        }
        finish_u16(out, at, start, ctx.max_message_len(), "BGP message")
    }

    /// The encoded message as one buffer.
    pub fn to_bytes(&self, ctx: &Context) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(64);
        self.encode(ctx, &mut out)?;
        Ok(out.freeze())
    }
}
