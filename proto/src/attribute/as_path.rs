//! AS_PATH (type 2, RFC 4271 §4.3 / §5.1.2) and AS4_PATH (type 17,
//! RFC 6793 §3). The width of each AS number (two or four octets) comes from
//! the session context, never from the bytes.
//!
//! ```text
//! +-----------------+-----------------+----------------------------+
//! | segment type    | segment length  | AS numbers (length × 2|4)  |
//! +-----------------+-----------------+----------------------------+
//! ```

use bytes::{BufMut, BytesMut};

use crate::encode::{len_u8, EncodeError};
use crate::parse::{be_u16, be_u32, be_u8, PResult, Short};
use crate::types::AS_TRANS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentType {
    /// 1: unordered set of ASes (aggregation).
    Set,
    /// 2: ordered sequence.
    Sequence,
    /// 3: RFC 5065 confederation sequence.
    ConfedSequence,
    /// 4: RFC 5065 confederation set.
    ConfedSet,
}

impl SegmentType {
    fn from_u8(v: u8) -> Option<SegmentType> {
        Some(match v {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        match self {
            SegmentType::Set => 1,
            SegmentType::Sequence => 2,
            SegmentType::ConfedSequence => 3,
            SegmentType::ConfedSet => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Segment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AsPath {
    pub segments: Vec<Segment>,
}

/// RFC 4271 §5.1.2: a segment holds at most 255 ASes; longer runs are split.
const MAX_SEGMENT_LEN: usize = 255;

impl AsPath {
    /// An AS_SEQUENCE of `asns` (split into segments of at most 255).
    pub fn sequence(asns: impl IntoIterator<Item = u32>) -> AsPath {
        let asns: Vec<u32> = asns.into_iter().collect();
        AsPath {
            segments: asns
                .chunks(MAX_SEGMENT_LEN)
                .map(|c| Segment {
                    kind: SegmentType::Sequence,
                    asns: c.to_vec(),
                })
                .collect(),
        }
    }

    /// Every AS in order, regardless of segment type.
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments.iter().flat_map(|s| s.asns.iter().copied())
    }

    /// RFC 4271 §9.1.2.2 path length: a sequence counts each AS, a set counts
    /// one, confederation segments count nothing (RFC 5065 §5.3).
    pub fn route_length(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// Whether any AS needs four octets.
    pub fn needs_four_octets(&self) -> bool {
        self.asns().any(|a| a > u32::from(u16::MAX))
    }

    /// RFC 6793 §4.2.2: the AS_PATH to send to a two-octet speaker (every
    /// four-octet AS replaced by AS_TRANS) and, when anything was replaced,
    /// the AS4_PATH carrying the real numbers.
    pub fn for_two_octet_peer(&self) -> (AsPath, Option<AsPath>) {
        if !self.needs_four_octets() {
            return (self.clone(), None);
        }
        let two = AsPath {
            segments: self
                .segments
                .iter()
                .map(|s| Segment {
                    kind: s.kind,
                    asns: s
                        .asns
                        .iter()
                        .map(|&a| u32::from(u16::try_from(a).unwrap_or(AS_TRANS)))
                        .collect(),
                })
                .collect(),
        };
        // RFC 6793 §3: confederation segments are not carried in AS4_PATH.
        let four = AsPath {
            segments: self
                .segments
                .iter()
                .filter(|s| matches!(s.kind, SegmentType::Set | SegmentType::Sequence))
                .cloned()
                .collect(),
        };
        (two, Some(four))
    }

    /// RFC 6793 §4.2.3: rebuild the real path from a two-octet AS_PATH and
    /// the AS4_PATH a two-octet speaker passed along. If AS4_PATH is longer
    /// than AS_PATH it is ignored, as the RFC says.
    pub fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let len = self.route_length();
        let len4 = as4.route_length();
        if len4 > len {
            return self.clone();
        }
        // Keep the leading (len - len4) path-length worth of AS_PATH, then
        // append AS4_PATH.
        let mut keep = len - len4;
        let mut segments = Vec::new();
        for s in &self.segments {
            if keep == 0 {
                if matches!(s.kind, SegmentType::ConfedSequence | SegmentType::ConfedSet) {
                    segments.push(s.clone());
                }
                continue;
            }
            match s.kind {
                SegmentType::Sequence => {
                    let take = keep.min(s.asns.len());
                    segments.push(Segment {
                        kind: s.kind,
                        asns: s.asns.iter().take(take).copied().collect(),
                    });
                    keep -= take;
                }
                SegmentType::Set => {
                    segments.push(s.clone());
                    keep -= 1;
                }
                SegmentType::ConfedSequence | SegmentType::ConfedSet => segments.push(s.clone()),
            }
        }
        segments.extend(as4.segments.iter().cloned());
        AsPath { segments }
    }

    /// Decode the attribute value. `Err` for every RFC 7606 §7.2 malformation:
    /// unknown segment type, zero-length segment, overrun, or underrun.
    pub(crate) fn decode(mut input: &[u8], four_octet: bool) -> Result<AsPath, &'static str> {
        let mut segments = Vec::new();
        while !input.is_empty() {
            let (rest, segment) = segment(input, four_octet).map_err(|e| match e {
                nom::Err::Failure(SegmentError::UnknownType) => "unknown segment type",
                nom::Err::Failure(SegmentError::Empty) => "segment of length zero",
                _ => "segment overruns the attribute",
            })?;
            segments.push(segment);
            input = rest;
        }
        Ok(AsPath { segments })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut, four_octet: bool) -> Result<(), EncodeError> {
        for s in &self.segments {
            out.put_u8(s.kind.code());
            out.put_u8(len_u8(s.asns.len(), "AS_PATH segment")?);
            for &asn in &s.asns {
                if four_octet {
                    out.put_u32(asn);
                } else {
                    out.put_u16(
                        u16::try_from(asn).map_err(|_| EncodeError::AsnNeedsFourOctets { asn })?,
                    );
                }
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for AsPath {
    /// The common textual form: sequences space separated, sets in braces,
    /// confederation segments in parentheses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for s in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let list = s.asns.iter().map(|a| a.to_string()).collect::<Vec<_>>();
            match s.kind {
                SegmentType::Sequence => f.write_str(&list.join(" "))?,
                SegmentType::Set => write!(f, "{{{}}}", list.join(","))?,
                SegmentType::ConfedSequence => write!(f, "({})", list.join(" "))?,
                SegmentType::ConfedSet => write!(f, "[{}]", list.join(","))?,
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
enum SegmentError {
    Short,
    UnknownType,
    Empty,
}

impl<I> nom::error::ParseError<I> for SegmentError {
    fn from_error_kind(_: I, _: nom::error::ErrorKind) -> Self {
        SegmentError::Short
    }
    fn append(_: I, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

fn segment(input: &[u8], four_octet: bool) -> nom::IResult<&[u8], Segment, SegmentError> {
    let short = |_: nom::Err<Short>| nom::Err::Error(SegmentError::Short);
    let (input, kind) = be_u8(input).map_err(short)?;
    let kind = SegmentType::from_u8(kind).ok_or(nom::Err::Failure(SegmentError::UnknownType))?;
    let (mut input, count) = be_u8(input).map_err(short)?;
    if count == 0 {
        return Err(nom::Err::Failure(SegmentError::Empty));
    }
    let mut asns = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (rest, asn) = asn(input, four_octet).map_err(short)?;
        asns.push(asn);
        input = rest;
    }
    Ok((input, Segment { kind, asns }))
}

fn asn(input: &[u8], four_octet: bool) -> PResult<'_, u32> {
    if four_octet {
        be_u32(input)
    } else {
        be_u16(input).map(|(rest, a)| (rest, u32::from(a)))
    }
}
