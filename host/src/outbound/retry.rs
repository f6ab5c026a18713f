//! Retries of throttled and unavailable answers, in the host so every connector benefits.
//!
//! Azure says how long to wait in `Retry-After` (Graph sends fractional seconds, e.g. `2.128`);
//! without it we back off exponentially with jitter, capped. Only answers that mean "not
//! processed" are retried for writes (429); reads are also retried on 503 and lost connections.
//! An answer that asks for a longer wait than `max_retry_after` is not waited for: the request
//! gives up at once with that answer, so a broken or hostile `Retry-After` cannot park a
//! tenant's sync for hours.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

use super::OutboundStats;
use super::pacing::Pacer;
use super::transport::{BufferedRequest, BufferedResponse, HttpTransport, TransportError};

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Attempts of a request answered 429 when a pacer spaces them: each waits for budget
    /// rather than racing the others, so more of them are worth making.
    pub max_paced_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this ends the request with that answer instead.
    pub max_retry_after: Duration,
}

/// The longest `Retry-After` the host honours; the pacer never holds an origin longer either.
/// Azure asks for seconds; minutes mean "not today".
pub const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(300);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_paced_attempts: 32,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(60),
            max_retry_after: LONGEST_RETRY_AFTER,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: Azure's `Retry-After` when given (capped), else
    /// `base * 2^attempt` with up to 25% jitter, capped.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let exponential = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        let jitter = exponential.mul_f64(jitter_fraction() * 0.25);
        (exponential + jitter).min(self.max_delay)
    }
}

/// Parses `Retry-After` as (possibly fractional) seconds. HTTP dates are not used by Azure's
/// directory and ARM endpoints; an unparsable or negative value falls back to backoff, and a
/// value too large for a `Duration` (or infinite) saturates to `Duration::MAX`.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let seconds: f64 = text.parse().ok()?;
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn should_retry_status(method: &Method, status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || (status == StatusCode::SERVICE_UNAVAILABLE && is_idempotent(method))
}

fn jitter_fraction() -> f64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

/// Sends `request`, retrying throttled or unavailable answers. Returns the last answer when
/// attempts run out, so the caller sees Azure's own 429 rather than a made-up error. With a
/// `pacer`, every attempt waits for its budget and every answer teaches it.
pub async fn send_with_retry(
    transport: &HttpTransport,
    request: &BufferedRequest,
    policy: RetryPolicy,
    stats: &OutboundStats,
    pacer: Option<&Pacer>,
) -> Result<BufferedResponse, TransportError> {
    let mut attempt = 0;
    loop {
        if let Some(pacer) = pacer {
            pacer.admit(&request.uri).await;
        }
        stats.record_request();
        let outcome = transport.send(request).await;
        attempt += 1;
        if let (Some(pacer), Ok(response)) = (pacer, &outcome) {
            pacer.observe(&request.uri, response.status, &response.headers);
        }
        let mut limit = policy.max_attempts;
        if let Ok(response) = &outcome
            && should_retry_status(&request.method, response.status)
            && let Some(asked) = retry_after(&response.headers).filter(|asked| *asked > policy.max_retry_after)
        {
            if response.status == StatusCode::TOO_MANY_REQUESTS {
                stats.record_throttled();
            }
            tracing::warn!(
                status = response.status.as_u16(),
                retry_after_seconds = asked.as_secs(),
                longest_seconds = policy.max_retry_after.as_secs(),
                "the answer asks for a longer wait than the host honours: the request ends with it"
            );
            return outcome;
        }
        let wait = match &outcome {
            Ok(response) if response.status == StatusCode::TOO_MANY_REQUESTS && pacer.is_some() => {
                // The pacer holds every request to this origin until Retry-After has passed.
                stats.record_throttled();
                limit = policy.max_paced_attempts;
                Duration::ZERO
            }
            Ok(response) if should_retry_status(&request.method, response.status) => {
                if response.status == StatusCode::TOO_MANY_REQUESTS {
                    stats.record_throttled();
                }
                policy.delay(attempt - 1, retry_after(&response.headers))
            }
            Err(TransportError::Connect(_)) if is_idempotent(&request.method) => policy.delay(attempt - 1, None),
            _ => return outcome,
        };
        if attempt >= limit {
            return outcome;
        }
        tracing::debug!(uri = %request.uri, attempt, wait_ms = wait.as_millis() as u64, "retrying");
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_retry_after_is_honoured() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "2.128".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(2128)));
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(3, retry_after(&headers)), Duration::from_millis(2128));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            max_paced_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: LONGEST_RETRY_AFTER,
        };
        assert!(policy.delay(0, None) >= Duration::from_millis(100));
        assert!(policy.delay(2, None) >= Duration::from_millis(400));
        assert_eq!(policy.delay(12, None), Duration::from_secs(1));
    }

    #[test]
    fn a_huge_or_infinite_retry_after_saturates_instead_of_panicking() {
        for value in ["1e300", "18446744073709551616", "inf"] {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::RETRY_AFTER, value.parse().unwrap());
            assert_eq!(retry_after(&headers), Some(Duration::MAX), "{value}");
            assert_eq!(RetryPolicy::default().delay(0, retry_after(&headers)), Duration::from_secs(60), "{value}");
        }
        for value in ["-1", "NaN", "soon"] {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::RETRY_AFTER, value.parse().unwrap());
            assert_eq!(retry_after(&headers), None, "{value} falls back to backoff");
        }
    }

    #[test]
    fn writes_are_retried_only_when_throttled() {
        assert!(should_retry_status(&Method::POST, StatusCode::TOO_MANY_REQUESTS));
        assert!(!should_retry_status(&Method::POST, StatusCode::SERVICE_UNAVAILABLE));
        assert!(should_retry_status(&Method::GET, StatusCode::SERVICE_UNAVAILABLE));
    }
}
