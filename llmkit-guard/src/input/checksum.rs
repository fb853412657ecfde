//! Checksum validators that turn "looks like a number" into "is a card / an IBAN".
//!
//! ```
//! use llmkit_guard::input::checksum::{iban_valid, luhn_valid};
//! assert!(luhn_valid("4111 1111 1111 1111"));
//! assert!(!luhn_valid("4111 1111 1111 1112"));
//! assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
//! assert!(!iban_valid("GB82 WEST 1234 5698 7654 33"));
//! ```

/// The Luhn (mod 10) check over the digits of `s`; spaces and dashes are ignored, any other
/// character fails. Needs at least two digits.
pub fn luhn_valid(s: &str) -> bool {
    let mut sum = 0u32;
    let mut n = 0usize;
    for c in s.chars().rev() {
        if c == ' ' || c == '-' {
            continue;
        }
        let Some(d) = c.to_digit(10) else {
            return false;
        };
        let v = if n % 2 == 1 {
            let x = d * 2;
            if x > 9 { x - 9 } else { x }
        } else {
            d
        };
        sum += v;
        n += 1;
    }
    n >= 2 && sum.is_multiple_of(10)
}

/// Expected IBAN length per country (ISO 13616 registry, the common ones). Countries not listed
/// are accepted with any length from 15 to 34.
fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "AD" => 24,
        "AT" => 20,
        "BE" => 16,
        "BG" => 22,
        "CH" => 21,
        "CY" => 28,
        "CZ" => 24,
        "DE" => 22,
        "DK" => 18,
        "EE" => 20,
        "ES" => 24,
        "FI" => 18,
        "FR" => 27,
        "GB" => 22,
        "GR" => 27,
        "HR" => 21,
        "HU" => 28,
        "IE" => 22,
        "IS" => 26,
        "IT" => 27,
        "LI" => 21,
        "LT" => 20,
        "LU" => 20,
        "LV" => 21,
        "MC" => 27,
        "MT" => 31,
        "NL" => 18,
        "NO" => 15,
        "PL" => 28,
        "PT" => 25,
        "RO" => 24,
        "SE" => 24,
        "SI" => 19,
        "SK" => 24,
        "SM" => 27,
        _ => return None,
    })
}

/// ISO 13616 validation: two letters, two check digits, the country's length, and the mod-97
/// remainder of the rearranged number equal to 1. Spaces are ignored.
pub fn iban_valid(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (Some(head), Some(tail)) = (compact.get(..4), compact.get(4..)) else {
        return false;
    };
    let country = std::str::from_utf8(head.get(..2).unwrap_or(&[])).unwrap_or("");
    if !country.bytes().all(|b| b.is_ascii_uppercase())
        || !head.get(2..4).unwrap_or(&[]).iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    if let Some(len) = iban_length(country)
        && compact.len() != len
    {
        return false;
    }
    let mut rem: u32 = 0;
    for &b in tail.iter().chain(head) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// US SSN structural rules: area not 000, 666 or 9xx; group not 00; serial not 0000.
pub fn ssn_valid(area: &str, group: &str, serial: &str) -> bool {
    let (Ok(a), Ok(g), Ok(s)) = (
        area.parse::<u16>(),
        group.parse::<u8>(),
        serial.parse::<u16>(),
    ) else {
        return false;
    };
    a != 0 && a != 666 && a < 900 && g != 0 && s != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_table() {
        for ok in [
            "4111111111111111",
            "5500 0000 0000 0004",
            "3400-0000-0000-009",
            "6011000000000004",
            "79927398713",
        ] {
            assert!(luhn_valid(ok), "{ok}");
        }
        for bad in [
            "4111111111111112",
            "1234567812345678",
            "7",
            "41x1111111111111",
            "",
        ] {
            assert!(!luhn_valid(bad), "{bad}");
        }
    }

    #[test]
    fn iban_table() {
        for ok in [
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "CH9300762011623852957",
            "ES9121000418450200051332",
        ] {
            assert!(iban_valid(ok), "{ok}");
        }
        for bad in [
            "DE89370400440532013001",
            "DE8937040044053201300",
            "XX00",
            "de89370400440532013000",
            "GB82WEST12345698765433",
        ] {
            assert!(!iban_valid(bad), "{bad}");
        }
    }

    #[test]
    fn ssn_rules() {
        assert!(ssn_valid("123", "45", "6789"));
        assert!(!ssn_valid("000", "45", "6789"));
        assert!(!ssn_valid("666", "45", "6789"));
        assert!(!ssn_valid("900", "45", "6789"));
        assert!(!ssn_valid("123", "00", "6789"));
        assert!(!ssn_valid("123", "45", "0000"));
    }
}
