//! Arbitrary bytes as one received UDP payload (a failed check panics).
//!
//! Shared by the cargo-fuzz target (`fuzz_targets/decode.rs`) and the
//! corpus replay test (`../tests/fuzz_corpus.rs`, stable Rust).
//!
//! Checked (a failed check is a crash): decoding never panics; a decoded
//! packet re-encodes to at most the bytes it came from (the encoder writes
//! the canonical Length, the decoder ignores what lies past it), the
//! re-encoding decodes back to an equal value and is the same bytes as the
//! input's first Length octets when no octets were skipped; `check` and
//! the labels of every outcome do not panic.

use anyvip_bfd::{ControlPacket, MANDATORY_LEN};

/// Run one input; panics when a check fails.
pub fn run(data: &[u8]) {
    let packet = match ControlPacket::decode(data) {
        Ok(packet) => packet,
        Err(discard) => {
            let _ = discard.as_str();
            return;
        }
    };
    let _ = packet.check().map_err(|d| d.as_str());
    let encoded = packet.encode();
    assert_eq!(encoded.len(), packet.encoded_len());
    assert!(encoded.len() <= data.len());
    assert_eq!(ControlPacket::decode(&encoded).as_ref(), Ok(&packet));
    // Canonical input: Length equals the mandatory section plus the auth
    // section, so nothing was skipped and the bytes come back unchanged.
    let length = usize::from(data.get(3).copied().unwrap_or(0));
    if length == encoded.len() {
        assert_eq!(data.get(..length), Some(encoded.as_slice()));
    }
    assert!(encoded.len() >= MANDATORY_LEN);
}
