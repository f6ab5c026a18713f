//! Identifiers and timestamps that look like Azure's: GUIDs, opaque assignment ids, request ids.
//!
//! No `rand` crate: per-request randomness comes from std's randomly keyed SipHash, and generated
//! tenants use a deterministic mix so the same shape always yields the same ids.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// SplitMix64: a bijection on u64 with good diffusion, so distinct inputs give distinct outputs.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A version-4-looking GUID determined by `(namespace, counter)`.
/// The last group carries a bijective mix of the counter, which keeps ids unique within a namespace.
pub fn deterministic_guid(namespace: u64, counter: u64) -> String {
    let high = mix64(namespace.wrapping_mul(0x1000_0000_0000) ^ counter);
    let low = mix48(counter ^ (namespace << 40));
    format_guid(high, low)
}

/// A fresh random GUID (request ids, trace ids, tokens).
pub fn random_guid() -> String {
    format_guid(random_u64(), random_u64() & MASK48)
}

pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = COUNTER.fetch_add(1, Ordering::Relaxed);
    RandomState::new().hash_one(nonce)
}

const MASK48: u64 = (1 << 48) - 1;

/// Multiplication by an odd constant and xorshift are both bijective modulo 2^48.
fn mix48(x: u64) -> u64 {
    let mut y = x.wrapping_mul(0x5851_f42d_4c95_7f2d) & MASK48;
    y ^= y >> 21;
    y = y.wrapping_mul(0x2545_f491_4f6c_dd1d) & MASK48;
    y ^ (y >> 19)
}

fn format_guid(high: u64, low48: u64) -> String {
    let time_low = high >> 32;
    let time_mid = (high >> 16) & 0xffff;
    let version = 0x4000 | (high & 0x0fff);
    let variant = 0x8000 | ((high >> 12) & 0x3fff);
    format!("{time_low:08x}-{time_mid:04x}-{version:04x}-{variant:04x}-{low48:012x}")
}

/// The 16 bytes of a GUID in Microsoft's mixed-endian layout, as the opaque ids Graph issues embed them.
/// Anything that is not a GUID is hashed instead, so the caller always gets 16 bytes.
pub fn guid_bytes(guid: &str) -> [u8; 16] {
    let hex: String = guid.chars().filter(|c| *c != '-').collect();
    let mut bytes = [0u8; 16];
    let parsed = hex.len() == 32
        && (0..16).all(|i| match u8::from_str_radix(&hex[2 * i..2 * i + 2], 16) {
            Ok(byte) => {
                bytes[i] = byte;
                true
            }
            Err(_) => false,
        });
    if !parsed {
        let first = mix64(fnv1a(guid.as_bytes()));
        bytes[..8].copy_from_slice(&first.to_le_bytes());
        bytes[8..].copy_from_slice(&mix64(first).to_le_bytes());
        return bytes;
    }
    bytes[0..4].reverse();
    bytes[4..6].reverse();
    bytes[6..8].reverse();
    bytes
}

/// Stable hash for deterministic ids (std's default hasher is not guaranteed stable across releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// base64url without padding, the alphabet of Graph's opaque assignment ids.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// An appRoleAssignment id: like Graph's, the principal's GUID bytes followed by 16 more bytes.
pub fn app_role_assignment_id(principal_id: &str, resource_id: &str, app_role_id: &str) -> String {
    let mut bytes = guid_bytes(principal_id).to_vec();
    let salt = format!("{resource_id}/{app_role_id}");
    bytes.extend_from_slice(&guid_bytes(&salt));
    base64url(&bytes)
}

/// A unifiedRoleAssignment id: like Graph's, role definition and principal GUID bytes plus "-1".
pub fn directory_role_assignment_id(role_definition_id: &str, principal_id: &str, scope: &str) -> String {
    let mut bytes = guid_bytes(role_definition_id).to_vec();
    bytes.extend_from_slice(&guid_bytes(principal_id));
    if scope != "/" {
        bytes.extend_from_slice(&guid_bytes(scope.trim_start_matches('/')));
    }
    format!("{}-1", base64url(&bytes))
}

/// Seconds since the epoch split into a UTC civil date and time.
fn utc_now() -> (i64, u32, u32, u64) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0);
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    (year, month, day, secs % 86_400)
}

/// Howard Hinnant's days-to-civil algorithm: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days_since_epoch: i64) -> (i64, u32, u32) {
    let days = days_since_epoch + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Nanoseconds in one tick, the 100 ns unit of .NET times that Graph's audit logs print.
const NANOS_PER_TICK: u32 = 100;

/// `time` cut to whole ticks. Audit events keep their time at that precision so that filtering
/// with a timestamp the fake printed matches the event it was printed from.
pub fn whole_ticks(time: SystemTime) -> SystemTime {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => {
            UNIX_EPOCH + Duration::new(since.as_secs(), since.subsec_nanos() / NANOS_PER_TICK * NANOS_PER_TICK)
        }
        Err(_) => UNIX_EPOCH,
    }
}

/// `2026-11-27T03:10:02.7215374Z`: RFC 3339 in UTC with seven fractional digits, the form of a
/// `directoryAudit`'s `activityDateTime`. Times before 1970 print as the epoch.
pub fn rfc3339_ticks(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let ticks = since.subsec_nanos() / NANOS_PER_TICK;
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ticks:07}Z")
}

/// Parses an OData `DateTimeOffset` literal (RFC 3339: `2026-11-27T03:10:00Z`, with optional
/// fractional seconds and a `Z` or `±hh:mm` offset). `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    let number = |range| digits_in(text, range);
    let separators_ok = bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10].eq_ignore_ascii_case(&b'T')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let days_in_month = match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Digits past nanoseconds cannot change a comparison with the fake's tick-precise times.
        let kept = &fraction[..digits.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &fraction[digits..];
    }
    let offset_secs: i64 = match rest.as_bytes() {
        [zulu] if zulu.eq_ignore_ascii_case(&b'Z') => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits_in(rest, 1..3)?, digits_in(rest, 4..6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'+' { magnitude } else { -magnitude }
        }
        _ => return None,
    };
    let local = days_from_civil(i64::from(year), month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = local - offset_secs;
    let whole = Duration::from_secs(utc.unsigned_abs());
    let time = if utc >= 0 { UNIX_EPOCH.checked_add(whole)? } else { UNIX_EPOCH.checked_sub(whole)? };
    time.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// The number written in `text[range]` with digits only (`parse` alone would accept a sign).
fn digits_in(text: &str, range: std::ops::Range<usize>) -> Option<u32> {
    let digits = text.get(range)?;
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `2018-04-24T18:56:48`, the form of Graph's `innerError.date`.
pub fn graph_date_now() -> String {
    let (year, month, day, secs) = utc_now();
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2020-04-07 20:52:51Z`, the form of the token endpoint's `timestamp`.
pub fn login_timestamp_now() -> String {
    graph_date_now().replace('T', " ") + "Z"
}

/// `2021-02-15T16:14:59Z`, an ISO 8601 instant for `createdDateTime` fields.
pub fn iso_instant_now() -> String {
    graph_date_now() + "Z"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_guids_are_unique_and_well_formed() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|i| deterministic_guid(3, i)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 36 && id.as_bytes()[14] == b'4'));
    }

    #[test]
    fn app_role_assignment_id_starts_with_the_principal_bytes_like_graph() {
        // Graph's sample: principal cdb555e3-b33e-4fd5-a427-17fadacbdfa7 -> id "41W1zT6z1U-kJxf62svfp..."
        let id = app_role_assignment_id("cdb555e3-b33e-4fd5-a427-17fadacbdfa7", "x", "y");
        assert!(id.starts_with("41W1zT6z1U-kJxf62svfp"), "{id}");
        assert_eq!(id.len(), 43);
    }

    #[test]
    fn audit_timestamps_print_seven_digits_and_parse_back() {
        let time = UNIX_EPOCH + Duration::new(1_795_749_002, 721_537_400);
        assert_eq!(rfc3339_ticks(time), "2026-11-27T03:10:02.7215374Z");
        assert_eq!(parse_rfc3339("2026-11-27T03:10:02.7215374Z"), Some(time));
        assert_eq!(parse_rfc3339("2026-11-27T04:10:02.7215374+01:00"), Some(time));
        assert_eq!(parse_rfc3339("2026-11-27T03:10:00Z"), Some(UNIX_EPOCH + Duration::from_secs(1_795_749_000)));
        assert_eq!(whole_ticks(time + Duration::from_nanos(99)), time);
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for text in [
            "2026-11-27",
            "2026-11-27T03:10:00",
            "'2026-11-27T03:10:00Z'",
            "2026-02-29T03:10:00Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T03:10:00.Z",
            "2026-11-27T03:10:00 01:00",
            "2026-+1-27T03:10:00Z",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }

    #[test]
    fn directory_role_assignment_id_matches_graph_layout() {
        // Graph's sample: Global Administrator + principal ace08ec9-... -> "lAPpYvVpN0KRkAEhdxReEMmO4KwRqtpKkUWt3wOYIz4-1"
        let id = directory_role_assignment_id(
            "62e90394-69f5-4237-9190-012177145e10",
            "ace08ec9-aa11-4ada-9145-addf0398233e",
            "/",
        );
        assert_eq!(id, "lAPpYvVpN0KRkAEhdxReEMmO4KwRqtpKkUWt3wOYIz4-1");
    }
}
