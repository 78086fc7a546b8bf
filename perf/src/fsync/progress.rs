//! One updating line on stderr while the sweep runs (`\r`, redrawn at most
//! every 200 ms): the current case and the time spent of the budget. Drawn
//! only when enabled (the binary enables it when stderr is a terminal), so
//! pipes and logs get nothing.

use std::io::Write;
use std::time::{Duration, Instant};

const REDRAW_INTERVAL: Duration = Duration::from_millis(200);

pub struct Progress {
    enabled: bool,
    started: Instant,
    budget: Duration,
    cases: usize,
    index: usize,
    label: String,
    last_draw: Option<Instant>,
    width: usize,
}

impl Progress {
    pub fn new(enabled: bool, budget: Duration, cases: usize) -> Progress {
        Progress {
            enabled,
            started: Instant::now(),
            budget,
            cases,
            index: 0,
            label: String::new(),
            last_draw: None,
            width: 0,
        }
    }

    /// A new phase ("preallocating", or a case), numbered from 1.
    pub fn phase(&mut self, index: usize, label: &str) {
        self.index = index;
        self.label = label.to_string();
        self.last_draw = None;
        self.tick(0);
    }

    /// Redraws if the last draw is old enough.
    pub fn tick(&mut self, ops: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.last_draw.is_some_and(|t| now - t < REDRAW_INTERVAL) {
            return;
        }
        self.last_draw = Some(now);
        let line = render_line(
            self.index,
            self.cases,
            &self.label,
            ops,
            now - self.started,
            self.budget,
        );
        // Pad over a longer previous line.
        let pad = self.width.saturating_sub(line.chars().count());
        self.width = self.width.max(line.chars().count());
        let _ = write!(std::io::stderr(), "\r{line}{}", " ".repeat(pad));
    }

    /// Erases the line.
    pub fn finish(&mut self) {
        if self.enabled && self.width > 0 {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(self.width));
            self.width = 0;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `cairn-fsync [3/12] direct 64K qd1: 120 ops, 2.1 s of 10.0 s` (no ops
/// while there are none, as while preallocating).
pub fn render_line(
    index: usize,
    cases: usize,
    label: &str,
    ops: u64,
    elapsed: Duration,
    budget: Duration,
) -> String {
    let ops = if ops > 0 {
        format!("{ops} ops, ")
    } else {
        String::new()
    };
    format!(
        "cairn-fsync [{index}/{cases}] {label}: {ops}{:.1} s of {:.1} s",
        elapsed.as_secs_f64(),
        budget.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_case_and_the_time_spent() {
        let l = render_line(
            3,
            12,
            "direct 64K qd1",
            120,
            Duration::from_millis(2100),
            Duration::from_secs(10),
        );
        assert_eq!(
            l,
            "cairn-fsync [3/12] direct 64K qd1: 120 ops, 2.1 s of 10.0 s"
        );
        let prep = render_line(
            0,
            12,
            "preallocating",
            0,
            Duration::ZERO,
            Duration::from_secs(10),
        );
        assert_eq!(prep, "cairn-fsync [0/12] preallocating: 0.0 s of 10.0 s");
    }
}
