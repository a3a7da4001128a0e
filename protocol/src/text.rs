//! Error messages put together without `core::fmt`.
//!
//! The browser client shows some of the codec's errors to people (a bad topic, a field too
//! long to encode), and every formatting impl it links costs its npm package code. So those
//! errors also have a `message()` built by concatenation from the same pieces their `Display`
//! uses; the tests check that the two always say the same.

use alloc::string::String;

/// `prefix`, `n` in decimal, then `suffix`.
pub(crate) fn with_number(prefix: &str, n: usize, suffix: &str) -> String {
    // Filled from the end; 20 digits hold any `usize`. Iterators and `get`, not indexing,
    // which linked a bounds check's panic and message into the browser client's package.
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut rest = n;
    for slot in digits.iter_mut().rev() {
        // `rest % 10` is a single digit, so the cast cannot truncate.
        *slot = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let digits = digits.get(digits.len() - len..).unwrap_or_default();
    // ASCII digits: always valid UTF-8.
    let number = core::str::from_utf8(digits).unwrap_or_default();
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
