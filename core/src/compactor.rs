//! Auto-compaction policies, as etcd 3.4's `--auto-compaction-mode` and
//! `--auto-compaction-retention`. Pure logic: the node calls [`Compactor::tick`]
//! with the time and the current revision; it answers with a revision to
//! compact to, which the node proposes through the log like a client's
//! `Compact`.
//!
//! - **periodic** (etcd's `Periodic`): every `retention/10` (capped at 6 min)
//!   the current revision is sampled; once `retention` has passed since the
//!   start (then every `min(retention, 1h)`), compact to the revision
//!   sampled `retention` ago.
//! - **revision** (etcd's `Revision`): every 5 minutes, compact to
//!   `current - retention` when that moved.
//!
//! ```
//! use std::time::Duration;
//! use cairn_core::compactor::{Compactor, Policy};
//! let mut c = Compactor::new(Policy::Revision { retention: 100 }, Duration::ZERO);
//! assert_eq!(c.tick(Duration::from_secs(301), 1000), Some(900));
//! ```

use std::collections::VecDeque;
use std::time::Duration;

/// What to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Keep the history of the last `retention` of time.
    Periodic { retention: Duration },
    /// Keep the last `retention` revisions.
    Revision { retention: i64 },
}

/// How often the revision policy checks (etcd's `revInterval`).
pub const REVISION_CHECK_INTERVAL: Duration = Duration::from_secs(300);
/// Samples per period in periodic mode (etcd's `retryDivisor`).
const RETRY_DIVISOR: u32 = 10;

impl Policy {
    /// Parses etcd's flags: mode `periodic` with a duration (`1h`, `30m`,
    /// `90s`) or a bare number of hours; mode `revision` with a count.
    /// Returns None when the retention is zero (auto-compaction off).
    pub fn parse(mode: &str, retention: &str) -> Result<Option<Policy>, String> {
        match mode {
            "periodic" => {
                let d = parse_retention_duration(retention)?;
                Ok((!d.is_zero()).then_some(Policy::Periodic { retention: d }))
            }
            "revision" => {
                let n: i64 = retention
                    .parse()
                    .map_err(|_| format!("--auto-compaction-retention {retention:?}: revision mode wants a number of revisions"))?;
                if n < 0 {
                    return Err("--auto-compaction-retention must not be negative".into());
                }
                Ok((n > 0).then_some(Policy::Revision { retention: n }))
            }
            other => Err(format!(
                "--auto-compaction-mode {other:?}: want periodic or revision"
            )),
        }
    }

    /// How often the node should call `tick`.
    pub fn tick_interval(&self) -> Duration {
        match self {
            Policy::Periodic { retention } => {
                (*retention).min(Duration::from_secs(3600)) / RETRY_DIVISOR
            }
            Policy::Revision { .. } => REVISION_CHECK_INTERVAL,
        }
    }
}

/// etcd accepts a Go duration or a bare integer meaning hours.
fn parse_retention_duration(s: &str) -> Result<Duration, String> {
    if let Ok(hours) = s.parse::<u64>() {
        return Ok(Duration::from_secs(hours * 3600));
    }
    crate::config::parse_go_duration(s).ok_or_else(|| {
        format!("--auto-compaction-retention {s:?}: want a duration like 1h, 30m, 90s or a number of hours")
    })
}

/// The compactor's state between ticks.
#[derive(Debug)]
pub struct Compactor {
    policy: Policy,
    /// Periodic: revisions sampled once per tick, oldest first.
    samples: VecDeque<i64>,
    /// When the last compaction was decided (or the start).
    last_at: Duration,
    /// Periodic: the wait before the next compaction (first the whole
    /// retention, then min(retention, 1h)).
    wait: Duration,
    last_revision: i64,
}

impl Compactor {
    /// `now` is any monotonic clock reading (time is an input).
    pub fn new(policy: Policy, now: Duration) -> Compactor {
        let wait = match policy {
            Policy::Periodic { retention } => retention,
            Policy::Revision { .. } => REVISION_CHECK_INTERVAL,
        };
        Compactor {
            policy,
            samples: VecDeque::new(),
            last_at: now,
            wait,
            last_revision: 0,
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Called every `policy.tick_interval()`; returns a revision to compact
    /// to, if it is time.
    pub fn tick(&mut self, now: Duration, current_revision: i64) -> Option<i64> {
        match self.policy {
            Policy::Periodic { retention } => {
                self.samples.push_back(current_revision);
                let keep = (retention.as_nanos() / self.policy.tick_interval().as_nanos().max(1))
                    as usize
                    + 1;
                while self.samples.len() > keep {
                    self.samples.pop_front();
                }
                if now.saturating_sub(self.last_at) < self.wait {
                    return None;
                }
                self.wait = retention.min(Duration::from_secs(3600));
                self.last_at = now;
                let rev = *self.samples.front()?;
                self.decide(rev)
            }
            Policy::Revision { retention } => {
                if now.saturating_sub(self.last_at) < self.wait {
                    return None;
                }
                self.last_at = now;
                self.decide(current_revision - retention)
            }
        }
    }

    fn decide(&mut self, rev: i64) -> Option<i64> {
        if rev <= 0 || rev == self.last_revision {
            return None;
        }
        self.last_revision = rev;
        Some(rev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn retention_parses_like_etcd() {
        assert_eq!(Policy::parse("periodic", "0").unwrap(), None);
        assert_eq!(
            Policy::parse("periodic", "1").unwrap(),
            Some(Policy::Periodic {
                retention: secs(3600)
            })
        );
        assert_eq!(
            Policy::parse("periodic", "30m").unwrap(),
            Some(Policy::Periodic {
                retention: secs(1800)
            })
        );
        assert_eq!(
            Policy::parse("periodic", "1h30m").unwrap(),
            Some(Policy::Periodic {
                retention: secs(5400)
            })
        );
        assert_eq!(
            Policy::parse("revision", "1000").unwrap(),
            Some(Policy::Revision { retention: 1000 })
        );
        assert!(Policy::parse("revision", "1h").is_err());
        assert!(Policy::parse("periodic", "soon").is_err());
        assert!(Policy::parse("weekly", "1").is_err());
    }

    #[test]
    fn periodic_compacts_to_the_revision_seen_one_retention_ago() {
        let p = Policy::Periodic {
            retention: secs(100),
        };
        assert_eq!(p.tick_interval(), secs(10));
        let mut c = Compactor::new(p, Duration::ZERO);
        let mut got = Vec::new();
        // The revision grows by 10 per second.
        for t in (10..=300).step_by(10) {
            if let Some(r) = c.tick(secs(t), t as i64 * 10) {
                got.push((t, r));
            }
        }
        // First after one retention, compacting to what was current then
        // (the oldest of the last 11 samples); then every retention.
        assert_eq!(got, vec![(100, 100), (200, 1000), (300, 2000)]);
    }

    #[test]
    fn periodic_over_an_hour_compacts_hourly() {
        let p = Policy::Periodic {
            retention: secs(5 * 3600),
        };
        assert_eq!(p.tick_interval(), secs(360));
        let mut c = Compactor::new(p, Duration::ZERO);
        let mut at = Vec::new();
        for t in (360..=8 * 3600).step_by(360) {
            if c.tick(secs(t), t as i64).is_some() {
                at.push(t / 3600);
            }
        }
        assert_eq!(at, vec![5, 6, 7, 8]);
    }

    #[test]
    fn revision_mode_keeps_the_last_n_revisions_every_five_minutes() {
        let mut c = Compactor::new(Policy::Revision { retention: 100 }, Duration::ZERO);
        assert_eq!(c.tick(secs(60), 1000), None, "not before five minutes");
        assert_eq!(c.tick(secs(300), 1000), Some(900));
        assert_eq!(c.tick(secs(600), 1000), None, "nothing moved");
        assert_eq!(c.tick(secs(900), 1500), Some(1400));
        let mut young = Compactor::new(Policy::Revision { retention: 100 }, Duration::ZERO);
        assert_eq!(
            young.tick(secs(300), 50),
            None,
            "fewer revisions than the retention"
        );
    }
}
