//! The page header every page (or page run) starts with, its checksum, and
//! the size limits that follow from the page size. No I/O here.
//!
//! ```text
//!  0               8               16              24   25  28      32      36      40
//!  +---------------+---------------+---------------+----+---+-------+-------+-------+
//!  | checksum      | page_id       | txn_id        |kind|res|run_   |count  |res    |
//!  | xxh3(8..end,  | u64           | u64           | u8 |3x0|pages  |u32    |4 x 0  |
//!  |  seed=page_id)|               |               |    |   |u32    |       |       |
//!  +---------------+---------------+---------------+----+---+-------+-------+-------+
//! ```
//!
//! The checksum covers every byte of the page (or of the whole run for
//! overflow and freelist runs) after itself, header included, and is seeded
//! with the page id, so a page written at the wrong place never validates.

use xxhash_rust::xxh3::xxh3_64_with_seed;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Size of the header at the start of every page or run.
pub const PAGE_HEADER_BYTES: usize = 40;
/// Smallest page size accepted at create.
pub const MIN_PAGE_SIZE_BYTES: u32 = 512;
/// Largest page size accepted at create (offsets inside a page are u32, but
/// larger pages buy nothing for a B+tree with overflow pages).
pub const MAX_PAGE_SIZE_BYTES: u32 = 64 << 10;
/// Largest value a leaf entry can point at (values past half a page live
/// in overflow runs).
pub const MAX_VALUE_BYTES: usize = 64 << 20;

/// What a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PageKind {
    Meta = 1,
    Branch = 2,
    Leaf = 3,
    Overflow = 4,
    Freelist = 5,
}

impl PageKind {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(PageKind::Meta),
            2 => Some(PageKind::Branch),
            3 => Some(PageKind::Leaf),
            4 => Some(PageKind::Overflow),
            5 => Some(PageKind::Freelist),
            _ => None,
        }
    }
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct PageHeader {
    pub checksum: U64,
    pub page_id: U64,
    /// The write transaction that wrote this page (diagnostics only).
    pub txn_id: U64,
    pub kind: u8,
    pub reserved: [u8; 3],
    /// Pages in this run: 1 for meta, branch and leaf pages.
    pub run_pages: U32,
    /// Entries (nodes), ids (freelist) or value bytes (overflow).
    pub count: U32,
    pub reserved2: [u8; 4],
}

const _: () = assert!(std::mem::size_of::<PageHeader>() == PAGE_HEADER_BYTES);

/// Where the header's `kind` byte sits (read in place by cached pages).
pub(crate) const KIND_OFFSET: usize = std::mem::offset_of!(PageHeader, kind);
/// Where the header's `count` (u32, little endian) sits.
pub(crate) const COUNT_OFFSET: usize = std::mem::offset_of!(PageHeader, count);

/// The header fields a page is sealed with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seal {
    pub page_id: u64,
    pub txn_id: u64,
    pub kind: PageKind,
    pub run_pages: u32,
    pub count: u32,
}

/// Writes the header into `buf[..40]` and the checksum over the whole of
/// `buf` (one page, or a run of pages).
pub(crate) fn seal(buf: &mut [u8], s: Seal) {
    let h = PageHeader {
        checksum: 0.into(),
        page_id: s.page_id.into(),
        txn_id: s.txn_id.into(),
        kind: s.kind as u8,
        reserved: [0; 3],
        run_pages: s.run_pages.into(),
        count: s.count.into(),
        reserved2: [0; 4],
    };
    buf[..PAGE_HEADER_BYTES].copy_from_slice(h.as_bytes());
    let sum = xxh3_64_with_seed(&buf[8..], s.page_id);
    buf[..8].copy_from_slice(&sum.to_le_bytes());
}

/// Reads the header without checking anything (to learn a run's length
/// before reading the rest of it).
pub(crate) fn header(buf: &[u8]) -> Option<PageHeader> {
    PageHeader::read_from_prefix(buf).ok().map(|(h, _)| h)
}

/// Checks checksum, page id and kind of a page or run held whole in `buf`.
/// The error is the reason, for `BtreeError::Corrupt`.
pub(crate) fn verify(buf: &[u8], page_id: u64, kind: PageKind) -> Result<PageHeader, String> {
    let h = header(buf).ok_or_else(|| "page shorter than its header".to_string())?;
    let sum = xxh3_64_with_seed(&buf[8..], page_id);
    if sum != h.checksum.get() {
        return Err(format!(
            "checksum mismatch: stored {:#018x}, computed {sum:#018x}",
            h.checksum.get()
        ));
    }
    if h.page_id.get() != page_id {
        return Err(format!("page claims id {}", h.page_id.get()));
    }
    if h.kind != kind as u8 {
        return Err(format!("page kind {} where {kind:?} was expected", h.kind));
    }
    Ok(h)
}

/// Size limits that follow from a page size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub page_size: usize,
}

impl Limits {
    /// Bytes a node body may use.
    pub(crate) fn usable_bytes(&self) -> usize {
        self.page_size - PAGE_HEADER_BYTES
    }

    /// Any single node entry stays within half of the usable bytes, so
    /// splitting at byte midpoints until pieces fit always ends (a piece
    /// of one entry fits), and a 1 KiB value (a common configuration
    /// blob) stays inline in a 4 KiB page rather than taking an overflow
    /// page of its own.
    pub(crate) fn max_entry_bytes(&self) -> usize {
        self.usable_bytes() / 2
    }

    /// Largest key: a leaf entry with an overflow pointer (4 + 7 + key + 8)
    /// and a branch entry (4 + 10 + key) both fit in `max_entry_bytes`.
    pub(crate) fn max_key_bytes(&self) -> usize {
        self.max_entry_bytes() - 19
    }

    /// A node smaller than this after a delete is merged with a sibling.
    pub(crate) fn underflow_bytes(&self) -> usize {
        self.usable_bytes() / 4
    }

    /// Pages an overflow run needs for a value of `len` bytes.
    pub(crate) fn overflow_pages(&self, len: usize) -> u32 {
        (PAGE_HEADER_BYTES + len).div_ceil(self.page_size) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_page_verifies_and_any_flipped_byte_does_not() {
        let mut buf = vec![0u8; 512];
        buf[100] = 7;
        let s = Seal {
            page_id: 9,
            txn_id: 3,
            kind: PageKind::Leaf,
            run_pages: 1,
            count: 0,
        };
        seal(&mut buf, s);
        assert!(verify(&buf, 9, PageKind::Leaf).is_ok());
        assert!(verify(&buf, 8, PageKind::Leaf).is_err(), "wrong place");
        assert!(verify(&buf, 9, PageKind::Branch).is_err(), "wrong kind");
        for i in [0, 8, 24, 39, 40, 100, 511] {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert!(verify(&b, 9, PageKind::Leaf).is_err(), "byte {i}");
        }
    }
}
