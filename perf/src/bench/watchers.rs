//! The watch side of the `watch` workload, shared by the drivers: what
//! each watch event records. A put's value starts with its send time (ns
//! since the run's epoch, u64 LE), so an event's latency is the time from
//! the put being sent to the event being read.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use super::recorder::Recorder;
use super::BenchError;

/// Counters of every watch of a run (all on the driver's one thread).
pub(crate) struct WatchStats {
    pub recorder: RefCell<Recorder>,
    /// Watches the server created.
    pub created: Cell<u64>,
    /// Watches the server canceled (none should be).
    pub canceled: Cell<u64>,
    /// Events received.
    pub events: Cell<u64>,
    epoch: Instant,
}

impl WatchStats {
    pub fn new(epoch: Instant) -> WatchStats {
        WatchStats {
            recorder: RefCell::new(Recorder::new()),
            created: Cell::new(0),
            canceled: Cell::new(0),
            events: Cell::new(0),
            epoch,
        }
    }

    /// One event whose value is `value`.
    pub fn event(&self, value: &[u8]) {
        self.events.set(self.events.get() + 1);
        let mut rec = self.recorder.borrow_mut();
        match value.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => {
                let sent = Duration::from_nanos(u64::from_le_bytes(b));
                rec.record_ok(self.epoch.elapsed().saturating_sub(sent));
            }
            None => rec.record_error("event without a timestamp"),
        }
    }

    /// `Ok(true)` once the server created all `watchers` watches, `Ok(false)`
    /// while it is still at it; an error once it refused one or
    /// [`CREATE_TIMEOUT`] passed since `since`.
    pub fn all_created(&self, watchers: u64, since: Instant) -> Result<bool, BenchError> {
        if self.canceled.get() > 0 {
            return Err(BenchError::Setup(format!(
                "the server refused {} watches",
                self.canceled.get()
            )));
        }
        if self.created.get() >= watchers {
            return Ok(true);
        }
        if since.elapsed() > CREATE_TIMEOUT {
            return Err(BenchError::Setup(format!(
                "only {} of {watchers} watches created after {CREATE_TIMEOUT:?}",
                self.created.get()
            )));
        }
        Ok(false)
    }

    /// True once the `expected` events arrived or [`DRAIN_TIMEOUT`] passed
    /// since `since`.
    pub fn drained(&self, expected: u64, since: Instant) -> bool {
        self.events.get() >= expected || since.elapsed() >= DRAIN_TIMEOUT
    }

    /// After the writers stopped: counts the events still owed as errors.
    pub fn settle(&self, expected: u64) {
        let got = self.events.get();
        let mut rec = self.recorder.borrow_mut();
        for _ in got..expected {
            rec.record_error("event not received");
        }
        for _ in 0..self.canceled.get() {
            rec.record_error("watch canceled by the server");
        }
    }
}

/// How long the drivers wait for the watches to be created, and for the
/// events owed once the writers stop.
pub(crate) const CREATE_TIMEOUT: Duration = Duration::from_secs(120);
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
