//! Splitting one watch response into fragments (etcd's `sendFragments`,
//! for watchers created with `fragment`): when a response would reach
//! `--max-request-bytes` and holds at least two events, its events go out
//! in several responses, each as large as fits (at least one event), all
//! but the last with `fragment` set.

use std::ops::Range;

/// The event ranges of each response for events of `sizes` bytes (their
/// encoded size) in a response of `overhead_bytes` plus those. One range
/// (everything) when no split is needed.
pub fn fragments(sizes: &[usize], overhead_bytes: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let total: usize = overhead_bytes + sizes.iter().sum::<usize>();
    if total < max_bytes || sizes.len() < 2 {
        return std::iter::once(0..sizes.len()).collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let mut bytes = overhead_bytes + sizes[start];
        let mut end = start + 1;
        // etcd adds events while the fragment stays under the limit (a
        // fragment's first event goes in whatever its size).
        while end < sizes.len() && bytes + sizes[end] < max_bytes {
            bytes += sizes[end];
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_or_single_responses_are_whole() {
        assert_eq!(fragments(&[10, 10], 5, 100), vec![0..2]);
        assert_eq!(fragments(&[1000], 5, 100), vec![0..1]);
        assert_eq!(fragments(&[], 5, 100), vec![0..0]);
    }

    #[test]
    fn large_responses_split_under_the_limit() {
        assert_eq!(
            fragments(&[40, 40, 40, 200, 10], 10, 100),
            vec![0..2, 2..3, 3..4, 4..5]
        );
    }

    proptest! {
        /// Fragments cover every event once, in order; each is under the
        /// limit unless it holds a single event.
        #[test]
        fn fragments_partition_the_events(
            sizes in proptest::collection::vec(1usize..300, 0..50),
            max in 50usize..1000,
        ) {
            let parts = fragments(&sizes, 16, max);
            let mut next = 0;
            for p in &parts {
                prop_assert_eq!(p.start, next);
                next = p.end;
                if parts.len() > 1 {
                    prop_assert!(!p.is_empty());
                    let bytes: usize = 16 + sizes[p.clone()].iter().sum::<usize>();
                    prop_assert!(p.len() == 1 || bytes < max);
                }
            }
            prop_assert_eq!(next, sizes.len());
        }
    }
}
