//! Timestamps as the vendors send them: RFC 3339 text, decoded into `DateTime<Utc>`.
//!
//! The models' timestamp fields decode through [`required`] and [`option`]. They accept exactly
//! what chrono's own `Deserialize` for `DateTime<Utc>` accepts (its relaxed RFC 3339 parser,
//! then conversion to UTC), with the same result, but read the form nearly every response uses,
//! `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, directly: chrono's general parser costs more than the
//! rest of decoding a device, and a list of 100,000 devices carries 100,000 timestamps.
//!
//! A reading's timestamp is written by [`serialize`]: the same text as chrono's `Serialize`
//! (`to_rfc3339_opts(SecondsFormat::AutoSi, true)`), without its formatting machinery, which
//! costs a third of serializing a reading, and an ingest sends millions.

use std::fmt;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Timelike,
    Utc,
};
use serde::de::Visitor;
use serde::{Deserializer, Serializer};

/// Parses `s` as chrono's `Deserialize` for `DateTime<Utc>` does (`DateTime<FixedOffset>`'s
/// `FromStr`, then UTC).
pub(crate) fn parse(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match parse_utc_z(s) {
        Some(t) => Ok(t),
        None => s
            .parse::<DateTime<FixedOffset>>()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, or `None` for anything else (another form, or a value out
/// of range, which the general parser then judges).
fn parse_utc_z(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    // The fixed part: 19 bytes, then an optional fraction, then `Z`.
    let (head, rest) = b.split_at_checked(19)?;
    let rest = rest.strip_suffix(b"Z")?;
    let [
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        n0,
        n1,
        b':',
        s0,
        s1,
    ] = *head
    else {
        return None;
    };
    let num = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0u32, |acc, &c| {
            let d = c.checked_sub(b'0').filter(|d| *d <= 9)?;
            acc.checked_mul(10)?.checked_add(u32::from(d))
        })
    };
    let year = i32::try_from(num(&[y0, y1, y2, y3])?).ok()?;
    let month = num(&[m0, m1])?;
    let day = num(&[d0, d1])?;
    let hour = num(&[h0, h1])?;
    let minute = num(&[n0, n1])?;
    let second = num(&[s0, s1])?;
    // A leap second (60) is left to the general parser.
    if second > 59 {
        return None;
    }
    let nanos = match rest {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            let value = num(fraction)?;
            let scale =
                10u32.checked_pow(u32::try_from(9usize.checked_sub(fraction.len())?).ok()?)?;
            value.checked_mul(scale)?
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

#[allow(
    dead_code,
    reason = "some vendors need it and others do not; it is dead only in a build without them"
)]
/// `serialize_with` for a `DateTime<Utc>` field: what chrono's `Serialize` writes.
pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut text = Text::default();
    match write_utc_z(t, &mut text).and_then(|()| text.as_str()) {
        Some(text) => s.serialize_str(text),
        None => s.collect_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

#[allow(
    dead_code,
    reason = "some vendors need it and others do not; it is dead only in a build without them"
)]
/// Room for `YYYY-MM-DDTHH:MM:SS.fffffffffZ` (30 bytes).
#[derive(Default)]
struct Text {
    bytes: [u8; 32],
    len: usize,
}

#[allow(
    dead_code,
    reason = "some vendors need it and others do not; it is dead only in a build without them"
)]
impl Text {
    fn push(&mut self, b: u8) -> Option<()> {
        *self.bytes.get_mut(self.len)? = b;
        self.len = self.len.checked_add(1)?;
        Some(())
    }

    /// `value` in exactly `width` decimal digits (`None` if it does not fit).
    fn digits(&mut self, value: u32, width: u32) -> Option<()> {
        let mut div = 10u32.checked_pow(width.checked_sub(1)?)?;
        if value.checked_div(div)? >= 10 {
            return None;
        }
        loop {
            let d = u8::try_from(value.checked_div(div)? % 10).ok()?;
            self.push(b'0'.checked_add(d)?)?;
            if div == 1 {
                return Some(());
            }
            div /= 10;
        }
    }

    /// `value` (below 100) in two decimal digits: the width of every field but the year and
    /// the fraction, written without a loop.
    fn two_digits(&mut self, value: u32) -> Option<()> {
        let tens = u8::try_from(value / 10).ok().filter(|t| *t < 10)?;
        let ones = u8::try_from(value % 10).ok()?;
        self.push(b'0'.checked_add(tens)?)?;
        self.push(b'0'.checked_add(ones)?)
    }

    fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes.get(..self.len)?).ok()
    }
}

#[allow(
    dead_code,
    reason = "some vendors need it and others do not; it is dead only in a build without them"
)]
/// `t` as chrono writes it with `SecondsFormat::AutoSi` and `Z`, for years 0 to 9999 and no
/// leap second; `None` otherwise (chrono then writes it).
fn write_utc_z(t: &DateTime<Utc>, out: &mut Text) -> Option<()> {
    // The calendar fields of the UTC time, worked out once (each of `DateTime`'s own accessors
    // applies the offset again).
    let n = t.naive_utc();
    let year = u32::try_from(n.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = n.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    out.digits(year, 4)?;
    out.push(b'-')?;
    out.two_digits(n.month())?;
    out.push(b'-')?;
    out.two_digits(n.day())?;
    out.push(b'T')?;
    out.two_digits(n.hour())?;
    out.push(b':')?;
    out.two_digits(n.minute())?;
    out.push(b':')?;
    out.two_digits(n.second())?;
    // AutoSi: no fraction, or milli-, micro- or nanoseconds, the fewest digits that hold it.
    if nanos != 0 {
        out.push(b'.')?;
        if nanos % 1_000_000 == 0 {
            out.digits(nanos / 1_000_000, 3)?;
        } else if nanos % 1_000 == 0 {
            out.digits(nanos / 1_000, 6)?;
        } else {
            out.digits(nanos, 9)?;
        }
    }
    out.push(b'Z')
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<DateTime<Utc>, E> {
        parse(s).map_err(E::custom)
    }
}

struct OptionVisitor;

impl<'de> Visitor<'de> for OptionVisitor {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        required(d).map(Some)
    }
}

/// `deserialize_with` for a `DateTime<Utc>` field.
pub(crate) fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_str(TimestampVisitor)
}

/// `deserialize_with` for an `Option<DateTime<Utc>>` field (with `#[serde(default)]`, so that a
/// missing field is `None` as for a plain `Option`).
pub(crate) fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    d.deserialize_option(OptionVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chrono_parse(s: &str) -> Option<DateTime<Utc>> {
        s.parse::<DateTime<FixedOffset>>()
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    #[test]
    fn the_usual_forms() {
        for s in [
            "2026-01-05T07:15:00Z",
            "2026-01-05T07:15:00.5Z",
            "2026-01-05T07:15:00.123456789Z",
            "2024-02-29T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            assert!(parse_utc_z(s).is_some(), "{s}");
            assert_eq!(parse(s).ok(), chrono_parse(s), "{s}");
        }
        // Left to the general parser: other forms, leap seconds, impossible dates.
        for s in [
            "2026-01-05 07:15:00Z",
            "2026-01-05t07:15:00z",
            "2026-01-05T07:15:00+05:30",
            "2016-12-31T23:59:60Z",
            "2026-02-30T00:00:00Z",
            "2026-01-05T24:00:00Z",
            "2026-01-05T07:15:00.1234567891Z",
            "2026-01-05T07:15:00.Z",
            "+2026-01-05T07:15:00Z",
        ] {
            assert!(parse_utc_z(s).is_none(), "{s}");
            assert_eq!(parse(s).ok(), chrono_parse(s), "{s}");
        }
    }

    #[test]
    fn serde_fields_decode_as_chrono_does() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Row {
            #[serde(deserialize_with = "required")]
            at: DateTime<Utc>,
            #[serde(default, deserialize_with = "option")]
            seen: Option<DateTime<Utc>>,
        }
        let row: Row = serde_json::from_str(r#"{"at":"2026-01-05T07:15:00Z"}"#).unwrap();
        assert_eq!(row.seen, None);
        let row: Row =
            serde_json::from_str(r#"{"at":"2026-01-05T07:15:00Z","seen":null}"#).unwrap();
        assert_eq!(row.seen, None);
        let row: Row = serde_json::from_str(
            r#"{"at":"2026-01-05T12:45:00+05:30","seen":"2026-01-05T07:15:00.25Z"}"#,
        )
        .unwrap();
        assert_eq!(row.at, chrono_parse("2026-01-05T07:15:00Z").unwrap());
        assert_eq!(row.seen, chrono_parse("2026-01-05T07:15:00.25Z"));
        // Escaped text (no borrowed str) decodes too.
        let row: Row = serde_json::from_str(r#"{"at":"2026-01-05T07:15:00\u005a"}"#).unwrap();
        assert_eq!(row.at, chrono_parse("2026-01-05T07:15:00Z").unwrap());
        let err = serde_json::from_str::<Row>(r#"{"at":"yesterday"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("input contains invalid characters"),
            "{err}"
        );
        assert!(serde_json::from_str::<Row>(r#"{"at":5}"#).is_err());
        assert!(serde_json::from_str::<Row>(r#"{}"#).is_err());
    }

    #[test]
    fn serialize_writes_what_chrono_writes() {
        #[derive(serde::Serialize)]
        struct Row(#[serde(serialize_with = "serialize")] DateTime<Utc>);
        for s in [
            "2026-01-05T07:15:00Z",
            "2026-01-05T07:15:00.5Z",
            "2026-01-05T07:15:00.000001Z",
            "2026-01-05T07:15:00.123456789Z",
            "0000-01-01T00:00:00Z",
            "2016-12-31T23:59:60.5Z",
            "+10000-01-01T00:00:00Z",
            "-0001-12-31T23:59:59Z",
        ] {
            let t = s.parse::<DateTime<Utc>>().unwrap();
            assert_eq!(
                serde_json::to_string(&Row(t)).unwrap(),
                serde_json::to_string(&t).unwrap(),
                "{s}"
            );
        }
    }

    fn timestamp_like() -> impl Strategy<Value = String> {
        (
            0u32..10_000,
            0u32..14,
            0u32..33,
            prop::sample::select(vec!["T", "t", " ", "X"]),
            0u32..26,
            0u32..61,
            0u32..62,
            prop::option::of("[0-9]{0,11}"),
            prop::sample::select(vec!["Z", "z", "+00:00", "-05:30", "+14:00", "", "ZZ"]),
        )
            .prop_map(|(y, mo, d, sep, h, mi, s, frac, zone)| {
                let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{zone}")
            })
    }

    proptest! {
        /// On timestamps of every shape, valid and not, the result is chrono's.
        #[test]
        fn parse_is_chronos(s in timestamp_like()) {
            prop_assert_eq!(parse(&s).ok(), chrono_parse(&s));
        }

        /// Any instant (leap seconds and years past 9999 or before 0 included) is written as
        /// chrono writes it.
        #[test]
        fn serialize_is_chronos(
            secs in -100_000_000_000i64..300_000_000_000,
            nanos in prop::sample::select(vec![0u32, 500_000_000, 1_000, 7, 999_999_999, 1_250_000_000]),
            sub in 0u32..1_000_000_000,
            exact in any::<bool>(),
        ) {
            #[derive(serde::Serialize)]
            struct Row(#[serde(serialize_with = "serialize")] DateTime<Utc>);
            let nanos = if exact { nanos } else { sub };
            if let Some(t) = DateTime::<Utc>::from_timestamp(secs, nanos) {
                prop_assert_eq!(
                    serde_json::to_string(&Row(t)).unwrap(),
                    serde_json::to_string(&t).unwrap()
                );
            }
        }

        /// On arbitrary text too (and nothing panics).
        #[test]
        fn parse_is_chronos_on_any_text(s in "\\PC{0,40}|[0-9TZ:.+-]{0,32}") {
            prop_assert_eq!(parse(&s).ok(), chrono_parse(&s));
        }
    }
}
