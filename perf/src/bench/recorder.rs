//! What a run measured: a latency histogram of the successful requests
//! (microseconds) and a count of the failed ones by error message.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Distinct error messages kept; later new messages count under
/// [`OTHER_ERRORS`] so that a run failing in many ways stays bounded.
pub const ERROR_KINDS_MAX: usize = 32;
pub const OTHER_ERRORS: &str = "(other errors)";
/// Error messages are cut to this many bytes before they are kept.
pub const ERROR_MESSAGE_BYTES_MAX: usize = 200;
/// Highest latency the histogram tracks exactly (1 hour); a slower request
/// is recorded as this.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

pub struct Recorder {
    latency_us: Histogram<u64>,
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
    /// Txn attempts that failed their compare and were retried.
    pub cas_retries: u64,
    /// Requests completed in each second since the recorder was made
    /// (TPS over time); at most [`TPS_SECONDS_MAX`] seconds.
    per_second: Vec<u64>,
    started: Instant,
}

/// Longest TPS series a recorder keeps (a day).
pub const TPS_SECONDS_MAX: usize = 24 * 3600;

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        // 3 significant figures: percentiles are within 0.1 %.
        let latency_us = Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
            .expect("invariant: valid histogram bounds");
        Recorder {
            latency_us,
            errors: 0,
            error_kinds: BTreeMap::new(),
            cas_retries: 0,
            per_second: Vec::new(),
            started: Instant::now(),
        }
    }

    fn tick(&mut self) {
        let sec = self.started.elapsed().as_secs() as usize;
        if sec >= TPS_SECONDS_MAX {
            return;
        }
        if sec >= self.per_second.len() {
            self.per_second.resize(sec + 1, 0);
        }
        self.per_second[sec] += 1;
    }

    /// Requests completed per second, from the recorder's creation.
    pub fn per_second(&self) -> &[u64] {
        &self.per_second
    }

    pub fn record_ok(&mut self, latency: Duration) {
        self.tick();
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_US_MAX);
        self.latency_us
            .record(us)
            .expect("invariant: latency clamped into the histogram's range");
    }

    /// Counts one failed request under its message; allocates only for a
    /// message not seen before.
    pub fn record_error(&mut self, message: &str) {
        self.tick();
        self.errors += 1;
        let message = truncate(message, ERROR_MESSAGE_BYTES_MAX);
        if let Some(n) = self.error_kinds.get_mut(message) {
            *n += 1;
        } else if self.error_kinds.len() < ERROR_KINDS_MAX {
            self.error_kinds.insert(message.to_string(), 1);
        } else {
            *self
                .error_kinds
                .entry(OTHER_ERRORS.to_string())
                .or_insert(0) += 1;
        }
    }

    pub fn ok(&self) -> u64 {
        self.latency_us.len()
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Requests that completed, successfully or not.
    pub fn completed(&self) -> u64 {
        self.ok() + self.errors
    }

    pub fn latency_us(&self) -> &Histogram<u64> {
        &self.latency_us
    }

    pub fn error_kinds(&self) -> &BTreeMap<String, u64> {
        &self.error_kinds
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_and_errors_are_counted_apart() {
        let mut r = Recorder::new();
        r.record_ok(Duration::from_micros(100));
        r.record_ok(Duration::from_micros(300));
        r.record_error("etcdserver: request timed out");
        r.record_error("etcdserver: request timed out");
        r.record_error("connection closed");
        assert_eq!((r.ok(), r.errors(), r.completed()), (2, 3, 5));
        assert_eq!(r.error_kinds()["etcdserver: request timed out"], 2);
        assert_eq!(r.error_kinds()["connection closed"], 1);
    }

    #[test]
    fn sub_microsecond_and_huge_latencies_are_clamped() {
        let mut r = Recorder::new();
        r.record_ok(Duration::from_nanos(10));
        r.record_ok(Duration::from_secs(10 * 3600));
        assert_eq!(r.latency_us().min(), 1);
        assert!(r.latency_us().max() >= LATENCY_US_MAX);
    }

    #[test]
    fn error_kinds_are_bounded() {
        let mut r = Recorder::new();
        for i in 0..100 {
            r.record_error(&format!("error {i}"));
        }
        assert_eq!(r.errors(), 100);
        assert_eq!(r.error_kinds().len(), ERROR_KINDS_MAX + 1);
        assert_eq!(r.error_kinds()[OTHER_ERRORS], 100 - ERROR_KINDS_MAX as u64);
        assert_eq!(r.error_kinds().values().sum::<u64>(), 100);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let mut r = Recorder::new();
        r.record_error(&"é".repeat(300));
        let kept = r.error_kinds().keys().next().unwrap();
        assert!(kept.len() <= ERROR_MESSAGE_BYTES_MAX);
    }
}
