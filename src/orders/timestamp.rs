//! Timestamps written as chrono's serde writes a `DateTime<Utc>`
//! (`2026-12-01T09:15:00.123456Z`: RFC 3339, the fraction in 0, 3, 6 or 9 digits, `Z`), with
//! one string handed to the serializer instead of chrono's character-by-character writes
//! through serde_json's escaping adapter. Every order's records, rows and answers hold
//! several: chrono's way was about 6% of a processor's CPU per order.
//!
//! Read back the same way: text in exactly that form (any fraction of 1 to 9 digits) is
//! read field by field, and anything else goes to chrono's own reader, which accepts more
//! (offsets, a space for `T`, a leap second). chrono's general parser was 15% of decoding an
//! order, the largest part of a fresh instance's start-up.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The longest text [`format`] writes: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub(crate) const LONGEST: usize = 30;

/// `at` in chrono's serde form, written into `buf`; `None` for a year outside 0..=9999
/// (which chrono writes with a sign).
pub(crate) fn format<'b>(at: &DateTime<Utc>, buf: &'b mut [u8; LONGEST]) -> Option<&'b str> {
    // Each field read from a `DateTime` converts it to local time first: once, here.
    let at = at.naive_utc();
    let year = u32::try_from(at.year()).ok().filter(|&y| y <= 9999)?;
    let (mut second, mut nano) = (at.second(), at.nanosecond());
    // chrono keeps a leap second as nanoseconds past 1,000,000,000.
    if nano >= 1_000_000_000 {
        second += 1;
        nano -= 1_000_000_000;
    }
    let two = |buf: &mut [u8; LONGEST], at: usize, value: u32| {
        buf[at] = b'0' + (value / 10) as u8;
        buf[at + 1] = b'0' + (value % 10) as u8;
    };
    buf[..19].copy_from_slice(b"0000-00-00T00:00:00");
    two(buf, 0, year / 100);
    two(buf, 2, year % 100);
    two(buf, 5, at.month());
    two(buf, 8, at.day());
    two(buf, 11, at.hour());
    two(buf, 14, at.minute());
    two(buf, 17, second);
    let mut len = 19;
    let fraction = match nano {
        0 => None,
        n if n % 1_000_000 == 0 => Some((n / 1_000_000, 3)),
        n if n % 1_000 == 0 => Some((n / 1_000, 6)),
        n => Some((n, 9)),
    };
    if let Some((mut value, width)) = fraction {
        buf[len] = b'.';
        for i in (len + 1..=len + width).rev() {
            buf[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        len += 1 + width;
    }
    buf[len] = b'Z';
    std::str::from_utf8(&buf[..=len]).ok()
}

/// `#[serde(serialize_with)]` for a `DateTime<Utc>`: the same text as chrono's, faster.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0; LONGEST];
    match format(at, &mut buf) {
        Some(text) => serializer.serialize_str(text),
        None => at.serialize(serializer),
    }
}

/// `text` read as chrono reads a `DateTime<Utc>`, when it is in the form [`format`] writes
/// (with a fraction of any 1 to 9 digits); `None` for anything else, including text chrono
/// would accept.
fn parse(text: &[u8]) -> Option<DateTime<Utc>> {
    let (&b'Z', text) = text.split_last()? else {
        return None;
    };
    if text.len() < 19 {
        return None;
    }
    let (date_time, fraction) = text.split_at(19);
    let digits = |range: std::ops::Range<usize>| {
        date_time[range].iter().try_fold(0u32, |value, &b| {
            b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
        })
    };
    for (at, separator) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        if date_time[at] != separator {
            return None;
        }
    }
    let nano = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let value = digits.iter().try_fold(0u32, |value, &b| {
                b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
            })?;
            value * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let second = digits(17..19)?;
    // A leap second (60) is left to chrono.
    if second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    Some(
        date.and_hms_nano_opt(digits(11..13)?, digits(14..16)?, second, nano)?
            .and_utc(),
    )
}

/// `#[serde(deserialize_with)]` for a `DateTime<Utc>`: what chrono's reader makes of the
/// same text, faster for the form [`serialize`] writes.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    struct Text;

    impl Visitor<'_> for Text {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 timestamp")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            match parse(text.as_bytes()) {
                Some(at) => Ok(at),
                None => text.parse().map_err(E::custom),
            }
        }
    }

    deserializer.deserialize_str(Text)
}

/// [`deserialize`] for an optional timestamp.
pub fn deserialize_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Read(#[serde(deserialize_with = "deserialize")] DateTime<Utc>);

    Ok(Option::<Read>::deserialize(deserializer)?.map(|Read(at)| at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::damage::Damage;
    use chrono::{NaiveDate, TimeZone};

    fn ours(at: &DateTime<Utc>) -> String {
        serde_json::to_string(&Wrapped(*at)).unwrap()
    }

    #[derive(Serialize)]
    #[serde(transparent)]
    struct Wrapped(#[serde(serialize_with = "serialize")] DateTime<Utc>);

    #[test]
    fn writes_what_chrono_writes() {
        let second = Utc.with_ymd_and_hms(2026, 12, 1, 9, 5, 7).unwrap();
        let mut cases = vec![
            second,
            Utc::now(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 15, 12, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
        ];
        for nanos in [
            1,
            7,
            999,
            1_000,
            120_000,
            999_999,
            1_000_000,
            5_000_000,
            100_000_000,
            123_456_789,
            999_999_999,
        ] {
            cases.push(second + chrono::Duration::nanoseconds(nanos));
        }
        // A leap second, as chrono holds one.
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        cases.push(leap);
        for at in &cases {
            assert_eq!(ours(at), serde_json::to_string(at).unwrap(), "{at:?}");
        }
        assert_eq!(ours(&second), r#""2026-12-01T09:05:07Z""#);
    }

    #[derive(Deserialize, Debug)]
    #[serde(transparent)]
    struct Read(#[serde(deserialize_with = "deserialize")] DateTime<Utc>);

    /// What chrono's reader and ours make of `json`: both the same value, or both an error.
    fn read_alike(json: &str) {
        let chrono = serde_json::from_str::<DateTime<Utc>>(json);
        let ours = serde_json::from_str::<Read>(json);
        match (&chrono, &ours) {
            (Ok(chrono), Ok(Read(ours))) => assert_eq!(chrono, ours, "{json}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{json}: chrono {chrono:?}, ours {ours:?}"),
        }
    }

    #[test]
    fn reads_what_chrono_reads() {
        let mut texts: Vec<String> = [
            "2026-12-01T09:05:07Z",
            "2026-12-01T09:05:07.1Z",
            "2026-12-01T09:05:07.123Z",
            "2026-12-01T09:05:07.123456Z",
            "2026-12-01T09:05:07.123456789Z",
            "2026-12-01T09:05:07.000000000Z",
            "2026-12-01T09:05:07.1234567891Z",
            "2026-12-01T09:05:07.Z",
            "2026-12-01T09:05:07,5Z",
            "2026-12-01t09:05:07Z",
            "2026-12-01 09:05:07Z",
            "2026-12-01T09:05:07z",
            "2026-12-01T09:05:07+00:00",
            "2026-12-01T09:05:07.5+02:30",
            "2026-12-01T09:05:07-01:00",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5Z",
            "2026-02-29T00:00:00Z",
            "2024-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-32T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T23:60:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "+2026-12-01T09:05:07Z",
            "-0001-12-01T09:05:07Z",
            "12026-12-01T09:05:07Z",
            "2026-1-01T09:05:07Z",
            "2026-12-01T9:05:07Z",
            "2026-12-01T09:05:07",
            "2026-12-01T09:05:07ZZ",
            " 2026-12-01T09:05:07Z",
            "2026-12-01T09:05:07Z ",
            "2026-12-01T09:0a:07Z",
            "2026-12-01T09:05:07.1a3Z",
            "2026-12-01",
            "",
            "Z",
        ]
        .iter()
        .map(|text| serde_json::to_string(text).unwrap())
        .collect();
        // An escaped character, and what is not a string.
        texts.push(r#""2026-12-01T09:05:07\u005A""#.into());
        texts.extend(["1764580000".into(), "null".into(), "[]".into()]);
        for json in &texts {
            read_alike(json);
        }
        // Every fraction width, and what the writer above writes.
        let second = Utc.with_ymd_and_hms(2026, 12, 1, 9, 5, 7).unwrap();
        for width in 1..=9 {
            read_alike(&format!(
                r#""2026-12-01T09:05:07.{}Z""#,
                &"987654321"[..width]
            ));
        }
        for nanos in [0, 1, 999, 1_000, 5_000_000, 123_456_789, 999_999_999] {
            let at = second + chrono::Duration::nanoseconds(nanos);
            let Read(read) = serde_json::from_str(&ours(&at)).unwrap();
            assert_eq!(read, at);
        }
        // Damaged forms: single-character changes, insertions and deletions (a small
        // xorshift keeps the cases the same from run to run).
        let template = "2026-12-01T09:05:07.123456Z".as_bytes();
        let mut damage = Damage::new(0x2545_f491_4f6c_dd1d, b"0123456789-T:.Zzt +");
        for _ in 0..20_000 {
            let mut text = template.to_vec();
            for _ in 0..=damage.below(2) {
                damage.apply(&mut text);
            }
            let text = String::from_utf8(text).unwrap();
            read_alike(&serde_json::to_string(&text).unwrap());
        }
    }
}
