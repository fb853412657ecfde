//! Lower-case hex encoding, the one used for digests across llmkit (cache keys, content hashes,
//! dataset and output-cache ids). No dependency: callers hash with the digest crate they have.

/// Lower-case hex of `bytes`, two characters per byte.
///
/// ```
/// assert_eq!(llmkit_core::hex::encode([0x00, 0xab, 0xff]), "00abff");
/// ```
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    // Bytes, not `char`s: pushing chars through `char::from_digit` cost ~100 instructions per
    // byte, a tenth of a cache hit (issue 23).
    fn digit(nibble: u8) -> u8 {
        nibble + if nibble < 10 { b'0' } else { b'a' - 10 }
    }
    let bytes = bytes.as_ref();
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 0x0f));
    }
    // Only ASCII digits were written.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_byte_encodes_like_format() {
        let all: Vec<u8> = (0..=255).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(super::encode(&all), want);
        assert_eq!(super::encode([]), "");
    }
}
