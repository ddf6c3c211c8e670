//! JSON numbers a copy cannot carry exactly. The entity models read JSON
//! into `serde_json::Value`, whose numbers are 64-bit integers or doubles:
//! a number written with more digits than a double holds (an id of 20+
//! digits, a decimal of 18) would come out rounded on the target, on both
//! sides of the checksum alike. Such numbers are looked for in the source
//! before anything is written.

/// The first number in the JSON document `json` that does not read back
/// as the same number, if any (numbers inside strings are text, not
/// numbers).
pub(super) fn first_inexact_number(json: &str) -> Option<&str> {
    let bytes = json.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
        } else if b == b'"' {
            in_string = true;
            i += 1;
        } else if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            let token = &json[start..i];
            if !reads_back_exactly(token) {
                return Some(token);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Whether serde_json reads `token` as a number equal to it: a 64-bit
/// integer, or a double whose shortest decimal form has the same value
/// (PostgreSQL's jsonb writes `1e300` as 1 followed by 300 zeros: the same
/// number).
fn reads_back_exactly(token: &str) -> bool {
    if !token.contains(['.', 'e', 'E'])
        && (token.parse::<i64>().is_ok() || token.parse::<u64>().is_ok())
    {
        return true;
    }
    // Parsed as the models parse it (serde_json, `float_roundtrip`).
    match serde_json::from_str::<f64>(token) {
        Ok(x) if x.is_finite() => decimal(token) == decimal(&format!("{x:?}")),
        _ => false,
    }
}

/// A decimal number as (negative, significant digits, exponent): value =
/// digits × 10^exponent, digits without leading or trailing zeros; zero
/// is (false, "", 0).
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let mut exponent = exponent - i64::try_from(fraction.len()).ok()?;
    let digits = digits.trim_start_matches('0');
    let significant = digits.trim_end_matches('0');
    exponent += i64::try_from(digits.len() - significant.len()).ok()?;
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((negative, significant.to_owned(), exponent))
}

#[cfg(test)]
mod tests {
    use super::first_inexact_number;

    #[test]
    fn numbers_a_double_or_a_64_bit_integer_holds_pass() {
        for json in &[
            r#"{"a":1,"b":-0.5,"c":1e300,"d":0.1,"e":18446744073709551615,"f":-9223372036854775808}"#.to_owned(),
            r#"[1.0, 1e2, 100, 0.30000000000000004, 5e-324, -0.0, 1e-30]"#.to_owned(),
            // Python's repr of a float that a parser without correct
            // rounding reads one step off.
            "[0.9226015798506805]".to_owned(),
            // jsonb's spelling of 1e300.
            format!("[1{}]", "0".repeat(300)),
            r#"{"phone":"123456789012345678901234567890","escaped":"a\"12345678901234567890123"}"#
                .to_owned(),
        ] {
            assert_eq!(first_inexact_number(json), None, "{json}");
        }
    }

    #[test]
    fn numbers_that_would_be_rounded_are_found() {
        assert_eq!(
            first_inexact_number(r#"{"n":12345678901234567890123}"#),
            Some("12345678901234567890123")
        );
        assert_eq!(
            first_inexact_number(r#"[0.1, 0.12345678901234567890]"#),
            Some("0.12345678901234567890")
        );
        assert_eq!(first_inexact_number("[1e400]"), Some("1e400"));
        assert_eq!(
            first_inexact_number("[1.234567e-320]"),
            Some("1.234567e-320"),
            "a subnormal keeps fewer digits"
        );
    }
}
