//! Identifiers and timestamps that look like Azure's: GUIDs, opaque assignment ids, request ids.
//!
//! No `rand` crate: per-request randomness comes from std's randomly keyed SipHash, and generated
//! tenants use a deterministic mix so the same shape always yields the same ids.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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
    // Howard Hinnant's days-to-civil algorithm.
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day, secs % 86_400)
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
