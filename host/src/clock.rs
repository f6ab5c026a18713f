//! Wall-clock timestamps for records (UTC, RFC 3339, second precision).

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
