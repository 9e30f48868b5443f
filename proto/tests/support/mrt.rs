//! Just enough of MRT (RFC 6396) to pull BGP messages out of BGP4MP records.
//!
//! ```text
//! common header: timestamp (4) | type (2) | subtype (2) | length (4)
//! BGP4MP MESSAGE (subtype 1):       peer AS (2) | local AS (2) | ifindex (2) | AFI (2) | peer IP | local IP | message
//! BGP4MP MESSAGE_AS4 (subtype 4):   peer AS (4) | local AS (4) | ifindex (2) | AFI (2) | peer IP | local IP | message
//! ```
//! Subtypes 6/7 (…_LOCAL) have the same layouts as 1/4; the add-path
//! subtypes of RFC 8050 (8, 9, 10, 11) carry path identifiers.

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

const BGP4MP: u16 = 16;
const BGP4MP_ET: u16 = 17;

/// One BGP message as a route collector recorded it.
#[derive(Debug, Clone)]
pub struct Record {
    pub timestamp: u32,
    pub peer_as: u32,
    pub local_as: u32,
    pub peer_ip: IpAddr,
    pub local_ip: IpAddr,
    /// Subtype 4/7: the session used four-octet AS numbers, so AS_PATH in
    /// the message is four octets wide.
    pub four_octet_as: bool,
    /// RFC 8050 add-path subtypes.
    pub add_path: bool,
    /// The complete BGP message, marker included.
    pub message: Vec<u8>,
}

/// Read a whole MRT file (gzip when the name ends in .gz).
pub fn read(path: &Path) -> Vec<Record> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let data = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out
    } else {
        raw
    };
    parse(&data)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Every BGP4MP message record in an MRT byte stream (other record types,
/// such as state changes and table dumps, are skipped).
pub fn parse(mut data: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    while data.len() >= 12 {
        let timestamp = u32_at(data, 0);
        let mrt_type = u16_at(data, 4);
        let subtype = u16_at(data, 6);
        let len = u32_at(data, 8) as usize;
        assert!(data.len() >= 12 + len, "MRT record overruns the file");
        let mut body = &data[12..12 + len];
        data = &data[12 + len..];
        if mrt_type == BGP4MP_ET {
            body = &body[4..]; // microseconds
        } else if mrt_type != BGP4MP {
            continue;
        }
        let (four_octet_as, add_path) = match subtype {
            1 | 6 => (false, false),
            4 | 7 => (true, false),
            8 | 10 => (false, true),
            9 | 11 => (true, true),
            _ => continue, // state changes
        };
        let (peer_as, local_as, rest) = if four_octet_as {
            (u32_at(body, 0), u32_at(body, 4), &body[8..])
        } else {
            (
                u32::from(u16_at(body, 0)),
                u32::from(u16_at(body, 2)),
                &body[4..],
            )
        };
        let afi = u16_at(rest, 2);
        let rest = &rest[4..];
        let (peer_ip, local_ip, message) = match afi {
            1 => {
                let p: [u8; 4] = rest[0..4].try_into().unwrap();
                let l: [u8; 4] = rest[4..8].try_into().unwrap();
                (IpAddr::from(p), IpAddr::from(l), &rest[8..])
            }
            2 => {
                let p: [u8; 16] = rest[0..16].try_into().unwrap();
                let l: [u8; 16] = rest[16..32].try_into().unwrap();
                (IpAddr::from(p), IpAddr::from(l), &rest[32..])
            }
            other => panic!("MRT BGP4MP record with AFI {other}"),
        };
        out.push(Record {
            timestamp,
            peer_as,
            local_as,
            peer_ip,
            local_ip,
            four_octet_as,
            add_path,
            message: message.to_vec(),
        });
    }
    out
}
