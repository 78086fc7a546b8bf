//! The search index a cached node page carries in front of its bytes (in
//! memory only; the page on disk is unchanged).
//!
//! A binary search over a page's entries touches a new cache line per
//! probe: the offset array, then the entry the offset names. The index
//! holds what a search needs in one dense run at the start of the page's
//! allocation, next to the reference counts a lookup touches anyway:
//!
//! ```text
//!  +----------+-----+-------+------+-------+------------------+---------------+-----------+
//!  | index    | c   | count | kind | first | shared prefix,   | slot per      | the page  |
//!  | len u32  | u32 | u32   | u8   | u8    | c bytes, padded  | entry: u32    | bytes     |
//!  +----------+-----+-------+------+-------+------------------+---------------+-----------+
//! ```
//!
//! The compared keys (every key of a leaf; keys 1.. of a branch, whose key
//! 0 stands for minus infinity) all start with the same `c` bytes, since
//! they are sorted. Slot `i` is the next four bytes of key `i` after those,
//! zero-padded, as a big-endian number: slots compare as their keys do,
//! except that equal slots say nothing. A search compares the key with the
//! shared prefix once, binary-searches the slots, and compares whole keys
//! only among the entries whose slot equals the key's (usually none or
//! one).

use std::cmp::Ordering;
use std::sync::Arc;

use super::page::PageKind;

/// Bytes of the fixed part of the index.
const HEAD_BYTES: usize = 16;

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The four bytes of `key` after its first `c`, zero-padded, big-endian.
fn slot_of(key: &[u8], c: usize) -> u32 {
    let mut s = [0u8; 4];
    let rest = key.get(c..).unwrap_or(&[]);
    let n = rest.len().min(4);
    s[..n].copy_from_slice(&rest[..n]);
    u32::from_be_bytes(s)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Builds the index of a verified node page (`key(i)` reads entry `i`'s
/// key) followed by the page's bytes, in one allocation.
pub(crate) fn indexed<'k>(
    page: &[u8],
    kind: PageKind,
    count: usize,
    key: impl Fn(usize) -> &'k [u8],
) -> Arc<[u8]> {
    let first = usize::from(kind == PageKind::Branch).min(count);
    let (c, shared) = if count > first {
        let (lo, hi) = (key(first), key(count - 1));
        let c = common_prefix(lo, hi);
        (c, &lo[..c])
    } else {
        (0, &[][..])
    };
    let slots_at = HEAD_BYTES + c.next_multiple_of(4);
    let index_len = slots_at + 4 * count;
    let mut all: Arc<[u8]> = std::iter::repeat_n(0u8, index_len + page.len()).collect();
    let b = Arc::get_mut(&mut all)
        .unwrap_or_else(|| panic!("invariant: a fresh allocation is not shared"));
    b[0..4].copy_from_slice(&(index_len as u32).to_ne_bytes());
    b[4..8].copy_from_slice(&(c as u32).to_ne_bytes());
    b[8..12].copy_from_slice(&(count as u32).to_ne_bytes());
    b[12] = kind as u8;
    b[13] = first as u8;
    b[HEAD_BYTES..HEAD_BYTES + c].copy_from_slice(shared);
    for i in first..count {
        let at = slots_at + 4 * i;
        b[at..at + 4].copy_from_slice(&slot_of(key(i), c).to_ne_bytes());
    }
    b[index_len..].copy_from_slice(page);
    all
}

/// An index as built by [`indexed`], read in place.
#[derive(Clone, Copy)]
pub(crate) struct Index<'a>(pub &'a [u8]);

impl<'a> Index<'a> {
    /// Bytes of the index: the page starts here.
    pub(crate) fn len(&self) -> usize {
        u32_at(self.0, 0) as usize
    }

    pub(crate) fn count(&self) -> usize {
        u32_at(self.0, 8) as usize
    }

    pub(crate) fn kind_byte(&self) -> u8 {
        self.0[12]
    }

    fn slot(&self, slots_at: usize, i: usize) -> u32 {
        u32_at(self.0, slots_at + 4 * i)
    }

    /// The first compared entry whose key is `> key` (`upper`) or `>= key`
    /// (else), in `first..=count`; `key(i)` reads entry `i`'s key.
    pub(crate) fn bound<'k>(
        &self,
        key: &[u8],
        upper: bool,
        entry: impl Fn(usize) -> &'k [u8],
    ) -> usize {
        let c = u32_at(self.0, 4) as usize;
        let (first, n) = (usize::from(self.0[13]), self.count());
        if first >= n {
            return first;
        }
        let shared = &self.0[HEAD_BYTES..HEAD_BYTES + c];
        let m = c.min(key.len());
        match key[..m].cmp(&shared[..m]) {
            Ordering::Less => return first,
            Ordering::Greater => return n,
            // A proper prefix of every compared key sorts before them all.
            Ordering::Equal if key.len() < c => return first,
            Ordering::Equal => {}
        }
        let slots_at = HEAD_BYTES + c.next_multiple_of(4);
        let probe = slot_of(key, c);
        // Entries [first, lo) have smaller slots (smaller keys), [hi, n)
        // larger ones (larger keys); only [lo, hi) needs whole keys.
        let (mut lo, mut hi) = (first, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.slot(slots_at, mid) < probe {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut end = lo;
        while end < n && self.slot(slots_at, end) == probe {
            end += 1;
        }
        let (mut l, mut h) = (lo, end);
        while l < h {
            let mid = (l + h) / 2;
            let k = entry(mid);
            let before = if upper { k <= key } else { k < key };
            if before {
                l = mid + 1;
            } else {
                h = mid;
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference: the first compared key `>` / `>=` `key`, by whole keys.
    fn naive(keys: &[Vec<u8>], first: usize, key: &[u8], upper: bool) -> usize {
        (first..keys.len())
            .find(|&i| {
                if upper {
                    keys[i].as_slice() > key
                } else {
                    keys[i].as_slice() >= key
                }
            })
            .unwrap_or(keys.len().max(first))
    }

    fn check(mut keys: Vec<Vec<u8>>, probes: &[Vec<u8>], kind: PageKind) {
        keys.sort();
        keys.dedup();
        if kind == PageKind::Branch && !keys.is_empty() {
            keys[0] = b"\xff\xff any key 0 is never compared".to_vec();
        }
        let page = [7u8; 64];
        let all = indexed(&page, kind, keys.len(), |i| &keys[i]);
        let ix = Index(&all);
        assert_eq!(&all[ix.len()..], &page[..]);
        assert_eq!(ix.count(), keys.len());
        let first = usize::from(kind == PageKind::Branch).min(keys.len());
        for p in probes.iter().chain(keys.iter()) {
            for upper in [false, true] {
                let got = ix.bound(p, upper, |i| &keys[i]);
                assert_eq!(got, naive(&keys, first, p, upper), "{keys:?} {p:?} {upper}");
            }
        }
    }

    #[test]
    fn shared_prefixes_short_keys_and_equal_slots() {
        let owned = |ks: &[&[u8]]| -> Vec<Vec<u8>> { ks.iter().map(|k| k.to_vec()).collect() };
        let keys = owned(&[
            &b"/registry/a"[..],
            b"/registry/a\0",
            b"/registry/a\0\0\0\0\0x",
            b"/registry/ab",
            b"/registry/abcdz",
            b"/registry/abcdzz",
            b"/registry/b",
        ]);
        let probes = owned(&[
            &b""[..],
            b"/",
            b"/registry",
            b"/registry/",
            b"/registry/a\0\0",
            b"/registry/abcd",
            b"/registry/abcdzy",
            b"/registry/c",
            b"0",
        ]);
        check(keys.clone(), &probes, PageKind::Leaf);
        check(keys, &probes, PageKind::Branch);
        check(vec![], &probes, PageKind::Leaf);
        check(vec![b"k".to_vec()], &probes, PageKind::Branch);
    }

    proptest! {
        #[test]
        fn bound_matches_a_search_by_whole_keys(
            keys in prop::collection::vec(prop::collection::vec(0u8..4, 0..9), 0..40),
            probes in prop::collection::vec(prop::collection::vec(0u8..4, 0..9), 0..20),
            branch in any::<bool>(),
        ) {
            let kind = if branch { PageKind::Branch } else { PageKind::Leaf };
            check(keys, &probes, kind);
        }
    }
}
