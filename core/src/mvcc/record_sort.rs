//! The order a restart rebuilds the key index in: history records sorted
//! by key, each key's records by revision.
//!
//! Keys often share long prefixes (`/registry/pods/default/...`, or
//! zero-padded numbers), so a comparison sort spends its time in `memcmp`
//! over those prefixes, following two pointers to keys scattered in the
//! heap on every comparison. This is a most-significant-digit radix sort
//! with 8-byte digits instead: records are sorted by an inline item (the
//! key's next eight bytes as a big-endian number, how many bytes are left,
//! the record's position), and only the runs that tie on a whole digit are
//! sorted again by the next eight bytes. Each record's key is read once
//! per digit it needs; comparisons never leave the item array.

use super::changes::LoadedRecord;

/// Bytes of key per digit.
const DIGIT_BYTES: usize = 8;

/// A record's sort item at some key offset. Field order is the order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    /// Key bytes `[offset, offset + 8)`, zero-padded, big-endian.
    digit: u64,
    /// Key bytes left from `offset`, capped at 9: a key that ends inside
    /// this digit sorts before a longer one with the same padded digit
    /// (the longer one continues with bytes, even zero bytes).
    left: u8,
    /// The record's position in the input.
    index: u32,
}

/// Only keys with more than a digit left continue past it.
const CONTINUES: u8 = DIGIT_BYTES as u8 + 1;

fn item(key: &[u8], offset: usize, index: u32) -> Item {
    let rest = key.get(offset..).unwrap_or(&[]);
    let n = rest.len().min(DIGIT_BYTES);
    let mut d = [0u8; DIGIT_BYTES];
    d[..n].copy_from_slice(&rest[..n]);
    Item {
        digit: u64::from_be_bytes(d),
        left: rest.len().min(usize::from(CONTINUES)) as u8,
        index,
    }
}

/// Records read in parts (one per scanning thread), addressed by one
/// position across all parts.
pub(super) struct Parts {
    parts: Vec<Vec<LoadedRecord>>,
    /// Position of each part's first record.
    starts: Vec<usize>,
}

impl Parts {
    pub(super) fn new(parts: Vec<Vec<LoadedRecord>>) -> Parts {
        let starts = parts
            .iter()
            .scan(0, |at, p| {
                let s = *at;
                *at += p.len();
                Some(s)
            })
            .collect();
        Parts { parts, starts }
    }

    pub(super) fn len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    /// (part, index in it) of `position` (< `len()`).
    fn locate(&self, position: usize) -> (usize, usize) {
        // Few parts (one per thread): the last that starts at or before.
        let p = self.starts.partition_point(|&s| s <= position) - 1;
        (p, position - self.starts[p])
    }

    /// The record at `position`.
    pub(super) fn get(&self, position: usize) -> &LoadedRecord {
        let (p, i) = self.locate(position);
        &self.parts[p][i]
    }

    /// The records in `order` (each position once), moved out.
    pub(super) fn take_in(mut self, order: &[u32]) -> Vec<LoadedRecord> {
        order
            .iter()
            .map(|&position| {
                let (p, i) = self.locate(position as usize);
                let r = &mut self.parts[p][i];
                LoadedRecord {
                    key: std::mem::take(&mut r.key),
                    revision: r.revision,
                    put: r.put.take(),
                }
            })
            .collect()
    }
}

/// The (key, revision) order of some records: positions in [`Parts`],
/// and for each whether its key is the previous record's (known from the
/// sort, so that building the index need not compare keys again).
pub(super) struct Sorted {
    pub order: Vec<u32>,
    pub same_key: Vec<bool>,
}

/// The order of `records` by (key, revision).
pub(super) fn sort_records(records: &Parts) -> Sorted {
    let n = records.len();
    let key = |i: u32| &*records.get(i as usize).key;
    let revision = |i: u32| records.get(i as usize).revision;
    // Positions fit in u32: a store holds far fewer records than 2^32
    // (each costs the index ~100 B of memory).
    assert!(
        u32::try_from(n).is_ok(),
        "invariant: fewer than 2^32 history records"
    );
    let mut items: Vec<Item> = (0..n as u32).map(|i| item(key(i), 0, i)).collect();
    let mut same_key = vec![false; n];
    // Ranges of `items` still to sort, with their key offset (a stack, not
    // recursion: a key may be many digits long).
    let mut todo = vec![(0, n, 0)];
    while let Some((start, end, offset)) = todo.pop() {
        let run = &mut items[start..end];
        run.sort_unstable();
        let mut i = 0;
        while i < run.len() {
            let (d, left) = (run[i].digit, run[i].left);
            let mut j = i + 1;
            while j < run.len() && run[j].digit == d && run[j].left == left {
                j += 1;
            }
            if j - i > 1 {
                if left == CONTINUES {
                    let next = offset + DIGIT_BYTES;
                    for it in &mut run[i..j] {
                        *it = item(key(it.index), next, it.index);
                    }
                    todo.push((start + i, start + j, next));
                } else {
                    // The same key: its records by revision.
                    run[i..j].sort_unstable_by_key(|it| revision(it.index));
                    same_key[start + i + 1..start + j].fill(true);
                }
            }
            i = j;
        }
    }
    Sorted {
        order: items.iter().map(|it| it.index).collect(),
        same_key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(key: &[u8], revision: i64) -> LoadedRecord {
        LoadedRecord {
            key: key.into(),
            revision,
            put: None,
        }
    }

    fn check(input: Vec<(Vec<u8>, i64)>) {
        // (key, revision) pairs are unique; the input keeps its order.
        let mut seen = std::collections::HashSet::new();
        let input: Vec<_> = input
            .into_iter()
            .filter(|p| seen.insert(p.clone()))
            .collect();
        let mut want = input.clone();
        want.sort();
        // In parts of 1, 2, 3, ... records.
        let mut parts = vec![];
        let mut rest = &input[..];
        while !rest.is_empty() {
            let (part, r) = rest.split_at((parts.len() + 1).min(rest.len()));
            parts.push(part.iter().map(|(k, r)| record(k, *r)).collect::<Vec<_>>());
            rest = r;
        }
        let records = Parts::new(parts);
        assert_eq!(records.len(), input.len());
        let sorted = sort_records(&records);
        let got: Vec<(Vec<u8>, i64)> = records
            .take_in(&sorted.order)
            .into_iter()
            .map(|r| (r.key.to_vec(), r.revision))
            .collect();
        assert_eq!(got, want);
        let same: Vec<bool> = (0..want.len())
            .map(|i| i > 0 && want[i - 1].0 == want[i].0)
            .collect();
        assert_eq!(sorted.same_key, same);
    }

    #[test]
    fn prefixes_zero_bytes_and_long_shared_prefixes() {
        let long = |tail: &[u8]| [&[b'0'; 40][..], tail].concat();
        check(vec![
            (b"".to_vec(), 3),
            (b"a".to_vec(), 2),
            (b"a\0".to_vec(), 1),
            (b"a\0\0\0\0\0\0\0".to_vec(), 4),
            (b"a\0\0\0\0\0\0\0\0".to_vec(), 5),
            (b"a".to_vec(), 1),
            (b"abcdefgh".to_vec(), 9),
            (b"abcdefgh".to_vec(), 7),
            (b"abcdefghi".to_vec(), 6),
            (long(b"2"), 1),
            (long(b"10"), 2),
            (long(b"1"), 8),
            (long(b""), 5),
            (long(b"1"), 3),
        ]);
        check(vec![]);
    }

    proptest! {
        #[test]
        fn sorts_as_key_then_revision(
            input in prop::collection::vec(
                (prop::collection::vec(prop::sample::select(vec![0u8, 1, b'0', 255]), 0..20), 0i64..4),
                0..200,
            ),
        ) {
            check(input);
        }
    }
}
