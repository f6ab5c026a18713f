//! The two things provisioning needs from the platform: the current time (PIM schedules start
//! now) and random bytes (ARM role assignment names are client-chosen GUIDs). Both come from
//! the standard `wasi:clocks/wall-clock` and `wasi:random/random` imports.

use std::time::SystemTime;

use waki::bindings::wasi::random::random;

/// The current UTC time as RFC 3339 (`2024-05-01T12:00:00Z`); the standard library reads
/// `wasi:clocks/wall-clock`.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time as RFC 3339 UTC, to the second (`2024-05-01T12:00:00Z`).
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A random (version 4) GUID.
pub fn new_guid() -> String {
    let mut bytes = [0u8; 16];
    for (target, source) in bytes.iter_mut().zip(random::get_random_bytes(16)) {
        *target = source;
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn times_are_written_as_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(19_782 * 86_400 + 3_661)), "2024-02-29T01:01:01Z");
    }
}
