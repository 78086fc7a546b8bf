//! A progress bar on stderr, drawn only when stderr is a terminal (so logs
//! and pipes get none).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::args::Stop;

const BAR_WIDTH: usize = 40;
/// How often the driver redraws the bar.
pub const REDRAW_INTERVAL: Duration = Duration::from_millis(250);

pub struct Progress {
    enabled: bool,
    stop: Stop,
    started: Instant,
}

impl Progress {
    /// A bar that draws if stderr is a terminal.
    pub fn for_stderr(stop: Stop) -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            stop,
            started: Instant::now(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn draw(&self, done: u64) {
        if self.enabled {
            let line = render(self.stop, done, self.started.elapsed());
            let _ = write!(std::io::stderr(), "\r{line}");
        }
    }

    /// Draws the final state and ends the line.
    pub fn finish(&self, done: u64) {
        if self.enabled {
            self.draw(done);
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// One line of the bar: `[#####-----] 500/1000  50%` or, for a timed run,
/// `[#####-----] 5s/10s  12345 requests`.
pub fn render(stop: Stop, done: u64, elapsed: Duration) -> String {
    let (fraction, text) = match stop {
        Stop::Total(total) => {
            let f = done as f64 / total.max(1) as f64;
            (f, format!("{done}/{total} {:3.0}%", f * 100.0))
        }
        Stop::Duration(d) => {
            let f = elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9);
            (
                f,
                format!(
                    "{:.0}s/{:.0}s {done} requests",
                    elapsed.as_secs_f64(),
                    d.as_secs_f64()
                ),
            )
        }
    };
    let filled = ((fraction.clamp(0.0, 1.0)) * BAR_WIDTH as f64) as usize;
    format!(
        "[{}{}] {text}",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_fills_with_progress() {
        let half = render(Stop::Total(1000), 500, Duration::ZERO);
        assert!(
            half.starts_with(&format!("[{}{}]", "#".repeat(20), "-".repeat(20))),
            "{half}"
        );
        assert!(half.ends_with("500/1000  50%"), "{half}");
        let over = render(
            Stop::Duration(Duration::from_secs(10)),
            7,
            Duration::from_secs(11),
        );
        assert!(over.starts_with(&format!("[{}]", "#".repeat(40))), "{over}");
        assert!(over.contains("7 requests"));
    }
}
