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
    let nanos = humantime::format_rfc3339_nanos(whole_ticks(time).max(UNIX_EPOCH)).to_string();
    // `…02.721537400Z`: the last two digits are always zero once cut to ticks.
    format!("{}Z", &nanos[..nanos.len() - 3])
}

/// Parses an OData `DateTimeOffset` literal (RFC 3339: `2026-11-27T03:10:00Z`, with optional
/// fractional seconds and a `Z` or `±hh:mm` offset). `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    // humantime reads UTC (`Z`) only: an offset is read here and applied after.
    let (utc_text, offset, west) = match text.len().checked_sub(6).map(|at| text.split_at(at)) {
        Some((local, offset)) if matches!(offset.as_bytes(), [b'+' | b'-', _, _, b':', _, _]) => {
            (format!("{local}Z"), parse_offset(offset)?, offset.starts_with('-'))
        }
        _ => (text.to_owned(), Duration::ZERO, false),
    };
    // humantime takes `…:00.Z` (a point without digits); OData does not.
    if !utc_text.ends_with('Z') || utc_text.ends_with(".Z") {
        return None;
    }
    let local = humantime::parse_rfc3339(&utc_text).ok()?;
    if west { local.checked_add(offset) } else { local.checked_sub(offset) }
}

/// `+hh:mm` or `-hh:mm` as a duration (its sign is the caller's).
fn parse_offset(offset: &str) -> Option<Duration> {
    let (hours, minutes) = (offset.get(1..3)?, offset.get(4..6)?);
    if !hours.bytes().chain(minutes.bytes()).all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes): (u64, u64) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours <= 23 && minutes <= 59).then(|| Duration::from_secs(hours * 3600 + minutes * 60))
}

/// `2018-04-24T18:56:48`, the form of Graph's `innerError.date`.
pub fn graph_date_now() -> String {
    let instant = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    instant.trim_end_matches('Z').to_owned()
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
