//! The watchers that take live events (etcd's synced `watcherGroup`),
//! indexed for matching: single-key watchers by key in a hash map, range
//! watchers in an [`IntervalTree`]. Matching one event costs a hash lookup
//! plus a stabbing query, whatever the number of watchers.

use std::collections::HashMap;

use super::interval::{End, IntervalTree};

/// What keys a watcher watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// One key (`range_end` empty).
    Key(Box<[u8]>),
    /// `[start, end)`, or every key from `start` on (`range_end` `\0`).
    Range(Box<[u8]>, End),
}

impl KeyRange {
    /// etcd's conventions: an empty `range_end` is the key alone, `\0` is
    /// every key from `key` on. `None` for an empty range (`range_end`
    /// at or before `key`: etcd's "mvcc: watcher range is empty").
    pub fn new(key: &[u8], range_end: &[u8]) -> Option<KeyRange> {
        match range_end {
            [] => Some(KeyRange::Key(key.into())),
            [0] => Some(KeyRange::Range(key.into(), End::Unbounded)),
            end if end > key => Some(KeyRange::Range(key.into(), End::Key(end.into()))),
            _ => None,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Key(k) => &k[..] == key,
            KeyRange::Range(start, end) => &start[..] <= key && end.is_after(key),
        }
    }

    /// The range as a store read takes it (`key`, `range_end`).
    pub fn as_request(&self) -> (&[u8], &[u8]) {
        match self {
            KeyRange::Key(k) => (k, &[]),
            KeyRange::Range(start, End::Unbounded) => (start, &[0]),
            KeyRange::Range(start, End::Key(end)) => (start, end),
        }
    }

    /// Bytes the range holds (for memory accounting).
    pub fn size_bytes(&self) -> usize {
        match self {
            KeyRange::Key(k) => k.len(),
            KeyRange::Range(s, End::Key(e)) => s.len() + e.len(),
            KeyRange::Range(s, End::Unbounded) => s.len(),
        }
    }
}

/// Watchers by what they watch; ids are watcher slots.
#[derive(Debug, Default)]
pub struct Group {
    keys: HashMap<Box<[u8]>, Vec<u32>>,
    ranges: IntervalTree,
    len: usize,
}

impl Group {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn add(&mut self, id: u32, range: &KeyRange) {
        match range {
            KeyRange::Key(k) => self.keys.entry(k.clone()).or_default().push(id),
            KeyRange::Range(start, end) => self.ranges.insert(start.clone(), end.clone(), id),
        }
        self.len += 1;
    }

    /// Removes watcher `id` of `range`; false if it was not here.
    pub fn remove(&mut self, id: u32, range: &KeyRange) -> bool {
        let removed = match range {
            KeyRange::Key(k) => match self.keys.get_mut(k) {
                Some(ids) => {
                    let before = ids.len();
                    ids.retain(|&i| i != id);
                    let removed = ids.len() < before;
                    if ids.is_empty() {
                        self.keys.remove(k);
                    }
                    removed
                }
                None => false,
            },
            KeyRange::Range(start, _) => self.ranges.remove(start, id),
        };
        self.len -= usize::from(removed);
        removed
    }

    /// Calls `f(id)` for every watcher whose range holds `key`.
    pub fn matching(&self, key: &[u8], f: &mut impl FnMut(u32)) {
        if let Some(ids) = self.keys.get(key) {
            ids.iter().for_each(|&id| f(id));
        }
        if !self.ranges.is_empty() {
            self.ranges.stab(key, f);
        }
    }
}
