//! Encoding helpers: placeholder lengths patched after the fact, so that a
//! length field always describes what was really written.

use bytes::{BufMut, BytesMut};

/// A value that does not fit the wire field meant to carry it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{what} is {len} octets, more than its field can carry ({max})")]
    ValueTooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("AS {asn} does not fit a two-octet field; send AS_TRANS with AS4_PATH instead")]
    AsnNeedsFourOctets { asn: u32 },
}

/// Write a placeholder u8 length, return where it is.
pub(crate) fn begin_u8(out: &mut BytesMut) -> usize {
    let at = out.len();
    out.put_u8(0);
    at
}

/// Write a placeholder u16 length, return where it is.
pub(crate) fn begin_u16(out: &mut BytesMut) -> usize {
    let at = out.len();
    out.put_u16(0);
    at
}

/// Patch the u8 length at `at` with the number of octets written after it.
pub(crate) fn finish_u8(
    out: &mut BytesMut,
    at: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let len = out.len().saturating_sub(at + 1);
    let value = u8::try_from(len).map_err(|_| EncodeError::ValueTooLarge {
        what,
        len,
        max: usize::from(u8::MAX),
    })?;
    if let Some(slot) = out.get_mut(at) {
        *slot = value;
    }
    Ok(())
}

/// Patch the u16 length at `at` with the number of octets written after it
/// (or, with `include_from`, after that earlier offset: the message header
/// counts itself).
pub(crate) fn finish_u16(
    out: &mut BytesMut,
    at: usize,
    counted_from: usize,
    max: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let len = out.len().saturating_sub(counted_from);
    let value = u16::try_from(len)
        .ok()
        .filter(|_| len <= max)
        .ok_or(EncodeError::ValueTooLarge { what, len, max })?;
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&value.to_be_bytes());
    }
    Ok(())
}

/// A length that must fit in one octet, checked before writing.
pub(crate) fn len_u8(len: usize, what: &'static str) -> Result<u8, EncodeError> {
    u8::try_from(len).map_err(|_| EncodeError::ValueTooLarge {
        what,
        len,
        max: usize::from(u8::MAX),
    })
}
