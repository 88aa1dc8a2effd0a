//! Time ranges: half-open `[from, to)` windows for APIs that cap how long one request may span.

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::{Error, Result};

/// Splits `[from, to)` into consecutive half-open windows no longer than `max`, lazily. The
/// windows share their boundaries, so a reading exactly on one is in exactly one window.
pub(crate) fn windows(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max: TimeDelta,
) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + Send + 'static {
    let mut start = from;
    std::iter::from_fn(move || {
        if start >= to {
            return None;
        }
        let end = start.checked_add_signed(max).map_or(to, |e| e.min(to));
        let w = (start, end);
        start = end;
        Some(w)
    })
}

/// Refuses an empty or inverted range.
pub(crate) fn check_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<()> {
    if from >= to {
        return Err(Error::invalid_input(format!(
            "the time range is empty or inverted: from {from} is not before to {to}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn windows_are_consecutive_half_open_and_bounded() {
        let max = TimeDelta::days(31);
        let from = instant("2026-01-01T00:00:00Z");
        let to = instant("2026-04-01T00:00:00Z"); // 90 days
        let w: Vec<_> = windows(from, to, max).collect();
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], (from, instant("2026-02-01T00:00:00Z")));
        assert_eq!(
            w[1],
            (
                instant("2026-02-01T00:00:00Z"),
                instant("2026-03-04T00:00:00Z")
            )
        );
        assert_eq!(w[2], (instant("2026-03-04T00:00:00Z"), to));
        for pair in w.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "no gap, no overlap");
        }
        assert!(w.iter().all(|(a, b)| *b - *a <= max));
        assert_eq!(windows(from, from + max, max).count(), 1);
        assert_eq!(windows(from, from, max).count(), 0);
        // Near the end of time: no overflow.
        let end = DateTime::<Utc>::MAX_UTC;
        assert_eq!(windows(end - TimeDelta::days(40), end, max).count(), 2);
    }

    #[test]
    fn ranges() {
        let a = instant("2026-01-01T00:00:00Z");
        assert!(check_range(a, a + TimeDelta::seconds(1)).is_ok());
        assert!(matches!(check_range(a, a), Err(Error::InvalidInput(_))));
        assert!(matches!(
            check_range(a + TimeDelta::seconds(1), a),
            Err(Error::InvalidInput(_))
        ));
    }
}
