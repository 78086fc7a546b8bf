//! Alarms (etcd's `alarm` package) and the backend quota that raises
//! NOSPACE. Pure logic, part of the replicated state: an alarm is raised by
//! applying an entry (a write refused for space) or an `AlarmRequest`, and
//! cleared by applying an `AlarmRequest`, so every replica and every replay
//! agrees.

use std::collections::BTreeSet;

/// An alarm kind, as etcd's `AlarmType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Alarm {
    NoSpace,
    Corrupt,
}

impl Alarm {
    /// etcd's name, as `etcdctl alarm list` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Alarm::NoSpace => "NOSPACE",
            Alarm::Corrupt => "CORRUPT",
        }
    }
}

impl Alarm {
    /// The alarm's number on disk (`storage::layout` alarm list).
    pub fn code(self) -> u8 {
        match self {
            Alarm::NoSpace => 1,
            Alarm::Corrupt => 2,
        }
    }

    /// The alarm with this number on disk.
    pub fn from_code(code: u8) -> Option<Alarm> {
        match code {
            1 => Some(Alarm::NoSpace),
            2 => Some(Alarm::Corrupt),
            _ => None,
        }
    }
}

/// The raised alarms, by member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlarmSet {
    raised: BTreeSet<(u64, Alarm)>,
}

impl AlarmSet {
    /// Raises `alarm` for `member`; true if it was not raised yet.
    pub fn activate(&mut self, member: u64, alarm: Alarm) -> bool {
        self.raised.insert((member, alarm))
    }

    /// Clears the alarms matching `member` (0: any) and `alarm` (None:
    /// any); returns what was cleared.
    pub fn deactivate(&mut self, member: u64, alarm: Option<Alarm>) -> Vec<(u64, Alarm)> {
        let gone: Vec<(u64, Alarm)> = self.matching(member, alarm).collect();
        for a in &gone {
            self.raised.remove(a);
        }
        gone
    }

    /// Alarms matching `member` (0: any) and `alarm` (None: any).
    pub fn matching(
        &self,
        member: u64,
        alarm: Option<Alarm>,
    ) -> impl Iterator<Item = (u64, Alarm)> + '_ {
        self.raised
            .iter()
            .copied()
            .filter(move |(m, a)| (member == 0 || *m == member) && alarm.is_none_or(|x| x == *a))
    }

    /// Every raised alarm as `(member, code)`, for the page file.
    pub fn to_codes(&self) -> Vec<(u64, u8)> {
        self.raised.iter().map(|(m, a)| (*m, a.code())).collect()
    }

    /// The set stored as `(member, code)`; `None` if a code is unknown.
    pub fn from_codes(codes: &[(u64, u8)]) -> Option<AlarmSet> {
        let raised = codes
            .iter()
            .map(|(m, c)| Alarm::from_code(*c).map(|a| (*m, a)))
            .collect::<Option<BTreeSet<_>>>()?;
        Some(AlarmSet { raised })
    }

    /// True if any member has `alarm` raised.
    pub fn any(&self, alarm: Alarm) -> bool {
        self.raised.iter().any(|(_, a)| *a == alarm)
    }
}

/// Bytes a put of `key` = `value` adds to the store, as etcd's quota
/// counts it: the key and value plus the per-revision bookkeeping.
pub fn put_cost_bytes(key: &[u8], value: &[u8]) -> u64 {
    // etcd: kv size + 2 * revision bytes (17 each) + key index overhead.
    (key.len() + value.len() + 2 * 17 + 64) as u64
}

/// etcd's default `--quota-backend-bytes`: 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activate_is_idempotent_and_deactivate_matches() {
        let mut s = AlarmSet::default();
        assert!(s.activate(7, Alarm::NoSpace));
        assert!(!s.activate(7, Alarm::NoSpace));
        s.activate(8, Alarm::Corrupt);
        assert!(s.any(Alarm::NoSpace));
        assert_eq!(s.matching(0, None).count(), 2);
        assert_eq!(s.deactivate(7, None), vec![(7, Alarm::NoSpace)]);
        assert!(!s.any(Alarm::NoSpace));
        assert_eq!(
            s.deactivate(0, Some(Alarm::Corrupt)),
            vec![(8, Alarm::Corrupt)]
        );
        assert_eq!(s.matching(0, None).count(), 0);
    }
}
