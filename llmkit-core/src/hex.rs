//! Lower-case hex encoding, the one used for digests across llmkit (cache keys, content hashes,
//! dataset and output-cache ids). No dependency: callers hash with the digest crate they have.

/// Lower-case hex of `bytes`, two characters per byte.
///
/// ```
/// assert_eq!(llmkit_core::hex::encode([0x00, 0xab, 0xff]), "00abff");
/// ```
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            // `from_digit` of a nibble in radix 16 is always `Some`, and lower case.
            out.extend(char::from_digit(u32::from(nibble), 16));
        }
    }
    out
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
