//! Numbers and times as the panel shows them: "12 s ago", "1.2 km", "1,234".

/// How long ago `then_ms` was, at `now_ms`: "just now", "12 s ago", "3 min ago", "2 h ago".
pub(crate) fn ago(now_ms: f64, then_ms: f64) -> String {
    let secs = ((now_ms - then_ms) / 1000.0).max(0.0).floor() as u64;
    match secs {
        0 => "just now".to_owned(),
        1..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// A distance in metres: "85 m" below a kilometre, "1.2 km" above.
pub(crate) fn distance(metres: f64) -> String {
    if metres < 1000.0 {
        format!("{metres:.0} m")
    } else {
        format!("{:.1} km", metres / 1000.0)
    }
}

/// A count with thousands separators: "1,234".
pub(crate) fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Seconds until `then_ms`, rounded up, never negative: for the reconnect countdown.
pub(crate) fn seconds_until(now_ms: f64, then_ms: f64) -> u64 {
    ((then_ms - now_ms) / 1000.0).ceil().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(ago(10_000.0, 10_000.0), "just now");
        assert_eq!(ago(22_500.0, 10_000.0), "12 s ago");
        assert_eq!(ago(200_000.0, 10_000.0), "3 min ago");
        assert_eq!(ago(7_300_000.0, 0.0), "2 h ago");
        assert_eq!(
            ago(0.0, 5_000.0),
            "just now",
            "a clock ahead of ours is 'now'"
        );
    }

    #[test]
    fn distances_and_counts() {
        assert_eq!(distance(85.4), "85 m");
        assert_eq!(distance(1234.0), "1.2 km");
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1234.0), "1,234");
        assert_eq!(count(1_234_567.0), "1,234,567");
    }

    #[test]
    fn countdown() {
        assert_eq!(seconds_until(0.0, 2_100.0), 3);
        assert_eq!(seconds_until(5_000.0, 2_100.0), 0);
    }
}
