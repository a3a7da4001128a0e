//! Error messages put together without `core::fmt`.
//!
//! The browser client shows some of the codec's errors to people (a bad topic, a field too
//! long to encode), and every formatting impl it links costs its npm package code. So those
//! errors also have a `message()` built by concatenation from the same pieces their `Display`
//! uses; the tests check that the two always say the same.

use alloc::string::String;

/// `prefix`, `n` in decimal, then `suffix`.
pub(crate) fn with_number(prefix: &str, n: usize, suffix: &str) -> String {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        // `rest % 10` is a single digit, so the cast cannot truncate.
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    // ASCII digits: always valid UTF-8.
    let number = core::str::from_utf8(&digits[start..]).unwrap_or_default();
    concat(&[prefix, number, suffix])
}

/// `parts` one after the other. Not `[&str]::concat`, whose generic join (with its overflow
/// check and panic message) is several times the size of these few lines in the browser
/// client's package.
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        s.push_str(part);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 65_535, 268_435_456, usize::MAX] {
            assert_eq!(with_number("<", n, ">"), format!("<{n}>"));
        }
    }

    #[test]
    fn concat_joins_in_order() {
        assert_eq!(concat(&["a", "", "bc", "d"]), "abcd");
        assert_eq!(concat(&[]), "");
    }
}
