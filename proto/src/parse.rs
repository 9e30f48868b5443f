//! The small amount of glue between nom and [`DecodeError`].
//!
//! Parsers run over complete, length-delimited slices, so the only thing nom
//! can report is "the field ran past the end". That carries no RFC meaning
//! on its own; [`OrDecodeError::or_fail`] attaches the error the enclosing
//! structure prescribes (an attribute length error inside an attribute, an
//! invalid network field inside NLRI, …).

use nom::error::{ErrorKind, ParseError};

use crate::error::DecodeError;

/// nom's error: the input ended (or a value was out of range) where a field
/// was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short;

impl<I> ParseError<I> for Short {
    fn from_error_kind(_input: I, _kind: ErrorKind) -> Self {
        Short
    }

    fn append(_input: I, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = nom::IResult<&'a [u8], T, Short>;

pub(crate) trait OrDecodeError<T> {
    /// Replace nom's "short input" with the error the RFC names here.
    fn or_fail(self, error: impl FnOnce() -> DecodeError) -> Result<T, DecodeError>;
}

impl<'a, T> OrDecodeError<(&'a [u8], T)> for PResult<'a, T> {
    fn or_fail(self, error: impl FnOnce() -> DecodeError) -> Result<(&'a [u8], T), DecodeError> {
        self.map_err(|_| error())
    }
}

use nom::Parser;

pub(crate) fn be_u8(input: &[u8]) -> PResult<'_, u8> {
    nom::number::complete::be_u8(input)
}

pub(crate) fn be_u16(input: &[u8]) -> PResult<'_, u16> {
    nom::number::complete::be_u16(input)
}

pub(crate) fn be_u32(input: &[u8]) -> PResult<'_, u32> {
    nom::number::complete::be_u32(input)
}

/// `take(n)` for a length that came from the wire.
pub(crate) fn take_n(input: &[u8], n: usize) -> PResult<'_, &[u8]> {
    nom::bytes::complete::take(n).parse(input)
}

pub(crate) fn ipv4(input: &[u8]) -> PResult<'_, std::net::Ipv4Addr> {
    be_u32(input).map(|(rest, v)| (rest, std::net::Ipv4Addr::from(v)))
}

pub(crate) fn ipv6(input: &[u8]) -> PResult<'_, std::net::Ipv6Addr> {
    nom::number::complete::be_u128(input).map(|(rest, v)| (rest, std::net::Ipv6Addr::from(v)))
}
