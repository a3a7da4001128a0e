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
    let mut s = String::with_capacity(prefix.len() + digits.len() - start + suffix.len());
    s.push_str(prefix);
    for &d in &digits[start..] {
        s.push(char::from(d));
    }
    s.push_str(suffix);
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
}
