//! `etcd_network_peer_round_trip_time_seconds{To}`: measured by the
//! leader from its Raft heartbeats (etcd sends probes of its own; Cairn's
//! heartbeats already are one small message each way per interval, on the
//! same connections as the log). Followers send no heartbeats, so only the
//! leader reports the figure.
//!
//! One heartbeat per peer is timed at a time; one unanswered for longer
//! than [`LOST_AFTER`] (its connection broke) gives way to the next.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramVec};

/// An unanswered heartbeat older than this is taken as lost.
pub const LOST_AFTER: Duration = Duration::from_secs(1);

struct Probe {
    sent: Option<Instant>,
    seconds: Histogram,
}

/// The leader's heartbeat timings, per peer (lives on the main executor).
pub struct PeerRtt {
    vec: HistogramVec,
    probes: HashMap<u64, Probe>,
}

impl PeerRtt {
    pub fn new(vec: HistogramVec) -> PeerRtt {
        PeerRtt {
            vec,
            probes: HashMap::new(),
        }
    }

    /// A heartbeat to `to` goes out at `now`.
    pub fn heartbeat_sent(&mut self, to: u64, now: Instant) {
        let vec = &self.vec;
        let p = self.probes.entry(to).or_insert_with(|| Probe {
            sent: None,
            seconds: vec.with_label_values(&[&format!("{to:x}")]),
        });
        match p.sent {
            Some(t) if now.saturating_duration_since(t) < LOST_AFTER => {}
            _ => p.sent = Some(now),
        }
    }

    /// `from` answered a heartbeat at `now`.
    pub fn heartbeat_answered(&mut self, from: u64, now: Instant) {
        if let Some(p) = self.probes.get_mut(&from) {
            if let Some(t) = p.sent.take() {
                p.seconds
                    .observe(now.saturating_duration_since(t).as_secs_f64());
            }
        }
    }

    /// Drops the series of peers no longer in `members`.
    pub fn retain(&mut self, members: impl Fn(u64) -> bool) {
        let gone: Vec<u64> = self
            .probes
            .keys()
            .copied()
            .filter(|&id| !members(id))
            .collect();
        for id in gone {
            self.probes.remove(&id);
            // The series may already be gone; either way it is not served.
            let _ = self.vec.remove_label_values(&[&format!("{id:x}")]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::HistogramOpts;

    fn rtt() -> PeerRtt {
        let opts = HistogramOpts::new("rtt", "rtt").buckets(vec![0.001, 0.01, 0.1]);
        PeerRtt::new(HistogramVec::new(opts, &["To"]).unwrap())
    }

    fn count(r: &PeerRtt, id: u64) -> u64 {
        r.vec
            .with_label_values(&[&format!("{id:x}")])
            .get_sample_count()
    }

    #[test]
    fn an_answer_times_the_oldest_unanswered_heartbeat() {
        let mut r = rtt();
        let t0 = Instant::now();
        r.heartbeat_sent(0xab, t0);
        r.heartbeat_sent(0xab, t0 + Duration::from_millis(100));
        r.heartbeat_answered(0xab, t0 + Duration::from_millis(105));
        let h = r.vec.with_label_values(&["ab"]);
        assert_eq!(h.get_sample_count(), 1);
        assert!((h.get_sample_sum() - 0.105).abs() < 1e-9);
        // A second answer with nothing outstanding is not a sample.
        r.heartbeat_answered(0xab, t0 + Duration::from_millis(106));
        assert_eq!(count(&r, 0xab), 1);
    }

    #[test]
    fn a_lost_heartbeat_gives_way_to_the_next() {
        let mut r = rtt();
        let t0 = Instant::now();
        r.heartbeat_sent(7, t0);
        let later = t0 + LOST_AFTER + Duration::from_millis(1);
        r.heartbeat_sent(7, later);
        r.heartbeat_answered(7, later + Duration::from_millis(2));
        let h = r.vec.with_label_values(&["7"]);
        assert!((h.get_sample_sum() - 0.002).abs() < 1e-9);
    }

    #[test]
    fn removed_peers_lose_their_series() {
        let mut r = rtt();
        r.heartbeat_sent(1, Instant::now());
        r.heartbeat_sent(2, Instant::now());
        r.retain(|id| id == 2);
        assert_eq!(r.probes.len(), 1);
        let names: Vec<String> = prometheus::core::Collector::collect(&r.vec)
            .iter()
            .flat_map(|f| {
                f.get_metric()
                    .iter()
                    .map(|m| m.get_label()[0].value().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(names, ["2"]);
    }
}
