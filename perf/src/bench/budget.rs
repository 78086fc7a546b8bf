//! How many requests a run may still start: a fixed count (`--total`) or a
//! deadline (`--duration`). Shared by the client tasks of one thread.

use std::cell::Cell;
use std::time::Instant;

use super::args::Stop;

pub struct Budget {
    stop: Stop,
    issued: Cell<u64>,
    deadline: Cell<Option<Instant>>,
    started: Cell<Option<Instant>>,
}

impl Budget {
    pub fn new(stop: Stop) -> Budget {
        Budget {
            stop,
            issued: Cell::new(0),
            deadline: Cell::new(None),
            started: Cell::new(None),
        }
    }

    /// Starts the clock of a `--duration` run; call just before the clients start.
    pub fn start(&self) {
        let now = Instant::now();
        self.started.set(Some(now));
        if let Stop::Duration(d) = self.stop {
            self.deadline.set(Some(now + d));
        }
    }

    /// Open loop at `rate` requests per second: when ticket `n` is meant
    /// to be sent (`None` if that is past a `--duration` run's end).
    pub fn intended(&self, n: u64, rate: f64) -> Option<Instant> {
        let start = self.started.get()?;
        let at = start + std::time::Duration::from_secs_f64(n as f64 / rate);
        match self.deadline.get() {
            Some(d) if at >= d => None,
            _ => Some(at),
        }
    }

    /// Takes one request from the budget: its ticket number (0, 1, 2, ...),
    /// or `None` when the run is over.
    pub fn next(&self) -> Option<u64> {
        let n = self.issued.get();
        let more = match self.stop {
            Stop::Total(total) => n < total,
            Stop::Duration(_) => self.deadline.get().is_none_or(|d| Instant::now() < d),
        };
        if !more {
            return None;
        }
        self.issued.set(n + 1);
        Some(n)
    }

    pub fn stop(&self) -> Stop {
        self.stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_total_budget_hands_out_exactly_total_tickets() {
        let b = Budget::new(Stop::Total(3));
        b.start();
        assert_eq!(
            [b.next(), b.next(), b.next(), b.next(), b.next()],
            [Some(0), Some(1), Some(2), None, None]
        );
    }

    #[test]
    fn an_open_loop_spaces_tickets_evenly_and_stops_at_the_deadline() {
        let b = Budget::new(Stop::Duration(Duration::from_secs(1)));
        b.start();
        let t0 = b.intended(0, 100.0).unwrap();
        assert_eq!(
            b.intended(50, 100.0).unwrap() - t0,
            Duration::from_millis(500)
        );
        assert_eq!(b.intended(100, 100.0), None, "past the end of the run");
        assert_eq!(
            Budget::new(Stop::Total(1)).intended(0, 1.0),
            None,
            "not started"
        );
    }

    #[test]
    fn a_duration_budget_ends_at_its_deadline() {
        let b = Budget::new(Stop::Duration(Duration::from_millis(30)));
        b.start();
        assert_eq!(b.next(), Some(0));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.next(), None);
    }
}
