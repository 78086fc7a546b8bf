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

/// Records in (key, revision) order, and for each whether its key is the
/// previous record's (known from the sort, so that building the index
/// need not compare keys again).
pub(super) struct Sorted {
    pub records: Vec<LoadedRecord>,
    pub same_key: Vec<bool>,
}

/// `records` sorted by (key, revision).
pub(super) fn sort_records(records: Vec<LoadedRecord>) -> Sorted {
    let n = records.len();
    // Positions fit in u32: a store holds far fewer records than 2^32
    // (each costs the index ~100 B of memory); the fallback keeps a larger
    // input correct.
    let Ok(_) = u32::try_from(n) else {
        let mut records = records;
        records.sort_unstable_by(|a, b| a.key.cmp(&b.key).then(a.revision.cmp(&b.revision)));
        let same_key = (0..n)
            .map(|i| i > 0 && records[i - 1].key == records[i].key)
            .collect();
        return Sorted { records, same_key };
    };
    let mut same_key = vec![false; n];
    let mut items: Vec<Item> = records
        .iter()
        .enumerate()
        .map(|(i, r)| item(&r.key, 0, i as u32))
        .collect();
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
                        *it = item(&records[it.index as usize].key, next, it.index);
                    }
                    todo.push((start + i, start + j, next));
                } else {
                    // The same key: its records by revision.
                    run[i..j].sort_unstable_by_key(|it| records[it.index as usize].revision);
                    same_key[start + i + 1..start + j].fill(true);
                }
            }
            i = j;
        }
    }
    let mut slots: Vec<Option<LoadedRecord>> = records.into_iter().map(Some).collect();
    let records = items
        .iter()
        .map(|it| {
            slots[it.index as usize]
                .take()
                .unwrap_or_else(|| panic!("invariant: each position is sorted once"))
        })
        .collect();
    Sorted { records, same_key }
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
        let records = input.iter().map(|(k, r)| record(k, *r)).collect();
        let sorted = sort_records(records);
        let got: Vec<(Vec<u8>, i64)> = sorted
            .records
            .iter()
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
