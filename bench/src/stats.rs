//! The statistics and number formatting behind every table: medians of repeated runs,
//! nearest-rank percentiles of latencies, thousands separators.

/// A number with thousands separators, or a dash when missing.
pub(crate) fn format_value(value: Option<f64>, decimals: usize) -> String {
    let Some(value) = value else {
        return "–".to_owned();
    };
    let text = format!("{value:.decimals$}");
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text.as_str(), None),
    };
    let (sign, digits) = match int.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(frac) => format!("{sign}{grouped}.{frac}"),
        None => format!("{sign}{grouped}"),
    }
}

/// The median of some numbers, or the lower of the two middle ones.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len().checked_sub(1)? / 2).copied()
}

/// The `p`-th percentile (0 < p <= 100) of sorted samples, by the nearest-rank method: the
/// smallest sample that at least p % of the samples are less than or equal to. No
/// interpolation, so every reported latency is one that really happened.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    // The epsilon keeps float error from pushing an exact rank up by one (99.9 % of 1,000 is
    // 999.0000000000001 in f64).
    let rank = (p / 100.0).mul_add(sorted.len() as f64, -1e-9).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&samples, 50.0), Some(500));
        assert_eq!(percentile(&samples, 90.0), Some(900));
        assert_eq!(percentile(&samples, 99.0), Some(990));
        assert_eq!(percentile(&samples, 99.9), Some(999));
        assert_eq!(percentile(&samples, 100.0), Some(1000));
        assert_eq!(percentile(&[7], 99.9), Some(7));
        assert_eq!(percentile(&[1, 2], 50.0), Some(1));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&samples, 0.0), None);
    }

    #[test]
    fn values_get_thousands_separators() {
        assert_eq!(format_value(Some(1_234_567.0), 0), "1,234,567");
        assert_eq!(format_value(Some(999.0), 0), "999");
        assert_eq!(format_value(Some(1234.5678), 1), "1,234.6");
        assert_eq!(format_value(Some(-4321.0), 0), "-4,321");
        assert_eq!(format_value(None, 0), "–");
    }
}
