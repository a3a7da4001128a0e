//! Numbers in messages and ids without `core::fmt`, whose machinery would cost the npm
//! package kilobytes for a few error messages.

use alloc::string::String;
use alloc::vec::Vec;

/// `n` in decimal (the Rust API's socket close messages; the npm build has none).
#[cfg_attr(all(target_arch = "wasm32", feature = "npm"), allow(dead_code))]
pub(crate) fn decimal(n: u32) -> String {
    let mut digits = Vec::with_capacity(10);
    let mut rest = n;
    loop {
        digits.push(digit(rest % 10));
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// `prefix`, then the low `count` hexadecimal digits of `n`, zero-padded, most significant
/// first. (With its prefix, so that the client id needs no `concat`, which the npm package
/// then does without.)
pub(crate) fn hex(prefix: &str, n: u64, count: u32) -> String {
    // Built as bytes, not chars: pushing a `char` brings its UTF-8 encoder into the package.
    // A plain loop: the reversed range's iterator adapters were code of their own.
    let mut digits = Vec::with_capacity(prefix.len() + count as usize);
    digits.extend_from_slice(prefix.as_bytes());
    let mut shift = 4 * count;
    while shift > 0 {
        shift -= 4;
        digits.push(b"0123456789abcdef"[((n >> shift) & 0xF) as usize]);
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// `parts` one after the other (the Rust API's messages; the npm build has none). Not `[&str]::concat`, whose generic join (with its overflow
/// check and panic message) is several times the size of these few lines in the package.
#[cfg_attr(all(target_arch = "wasm32", feature = "npm"), allow(dead_code))]
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        s.push_str(part);
    }
    s
}

fn digit(d: u32) -> char {
    char::from_digit(d, 16).unwrap_or('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_hex_say_what_format_says() {
        for n in [0, 9, 10, 1000, 65_535, u32::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
        let seed = 0x1234_5678_9abc_def0_u64;
        assert_eq!(
            hex("", seed, 12),
            format!("{:012x}", seed & 0xFFFF_FFFF_FFFF)
        );
        assert_eq!(hex("aviary_", 0xa, 12), "aviary_00000000000a");
        assert_eq!(concat(&["aviary_", "", "00ff"]), "aviary_00ff");
    }
}
