//! How many requests a run may still start: a fixed count (`--total`) or a
//! deadline (`--duration`). Shared by the client tasks of one thread.

use std::cell::Cell;
use std::time::Instant;

use super::args::Stop;

pub struct Budget {
    stop: Stop,
    issued: Cell<u64>,
    deadline: Cell<Option<Instant>>,
}

impl Budget {
    pub fn new(stop: Stop) -> Budget {
        Budget {
            stop,
            issued: Cell::new(0),
            deadline: Cell::new(None),
        }
    }

    /// Starts the clock of a `--duration` run; call just before the clients start.
    pub fn start(&self) {
        if let Stop::Duration(d) = self.stop {
            self.deadline.set(Some(Instant::now() + d));
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
    fn a_duration_budget_ends_at_its_deadline() {
        let b = Budget::new(Stop::Duration(Duration::from_millis(30)));
        b.start();
        assert_eq!(b.next(), Some(0));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.next(), None);
    }
}
