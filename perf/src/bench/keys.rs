//! Keys: the key with index `i` is `i` in decimal, zero-padded on the left
//! to exactly `key_size` bytes (`00000042`), so every key of a run has the
//! same size and keys sort in index order.

/// Decimal digits needed to write the largest index of a key space of
/// `key_space` keys (indexes `0..key_space`); at least 1.
pub fn key_digits(key_space: u64) -> usize {
    let mut largest = key_space.saturating_sub(1);
    let mut digits = 1;
    while largest >= 10 {
        largest /= 10;
        digits += 1;
    }
    digits
}

/// Writes the key with `index` into `buf` (its whole length), without
/// allocating.
///
/// Panics if `buf` is too short for `index`: the caller sized it from the
/// key space ([`key_digits`]), so that would be a bug of this tool.
pub fn write_key(buf: &mut [u8], index: u64) {
    let mut rest = index;
    for byte in buf.iter_mut().rev() {
        *byte = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    assert!(
        rest == 0,
        "invariant: key buffer of {} bytes holds index {index}",
        buf.len()
    );
}

/// A reusable key buffer of one client.
pub struct KeyBuf {
    buf: Vec<u8>,
}

impl KeyBuf {
    pub fn new(key_size: usize) -> KeyBuf {
        KeyBuf {
            buf: vec![b'0'; key_size],
        }
    }

    /// The key with `index`, valid until the next call.
    pub fn key(&mut self, index: u64) -> &[u8] {
        write_key(&mut self.buf, index);
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_cover_the_largest_index() {
        assert_eq!(key_digits(1), 1);
        assert_eq!(key_digits(10), 1);
        assert_eq!(key_digits(11), 2);
        assert_eq!(key_digits(1000), 3);
        assert_eq!(key_digits(1001), 4);
        assert_eq!(key_digits(u64::MAX), 20);
    }

    #[test]
    fn keys_are_zero_padded_decimals_of_fixed_size() {
        let mut k = KeyBuf::new(8);
        assert_eq!(k.key(0), b"00000000");
        assert_eq!(k.key(42), b"00000042");
        assert_eq!(k.key(99_999_999), b"99999999");
        let mut k = KeyBuf::new(32);
        assert_eq!(k.key(7).len(), 32);
        assert!(k.key(7).starts_with(b"0000"));
    }

    #[test]
    fn keys_sort_in_index_order() {
        let mut k = KeyBuf::new(6);
        let mut prev = k.key(0).to_vec();
        for i in [1u64, 9, 10, 99, 100, 12345, 999_999] {
            let cur = k.key(i).to_vec();
            assert!(prev < cur, "{prev:?} < {cur:?}");
            prev = cur;
        }
    }

    #[test]
    #[should_panic(expected = "invariant")]
    fn an_index_too_large_for_the_buffer_is_a_bug() {
        KeyBuf::new(2).key(100);
    }
}
