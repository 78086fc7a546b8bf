//! The two meta pages (page 0 and page 1): which root and freelist make up
//! a committed version. Transaction `t` writes meta slot `t % 2`, so the
//! previous version's meta is never touched by a commit.
//!
//! ```text
//!  40              48      52      56              64              72      76      80              88
//!  +---------------+-------+-------+---------------+---------------+-------+-------+---------------+
//!  | magic         |version|page_  | root_page     | freelist_page |free-  |res    | page_count    |
//!  | "CAIRNPGF"    |  u32  |size   | u64           | u64 (0: none) |list_  |4 x 0  | u64           |
//!  |               |       |u32    |               |               |pages  |       |               |
//!  +---------------+-------+-------+---------------+---------------+-------+-------+---------------+
//! ```
//!
//! The rest of the page is zero; the page header (kind Meta, `txn_id` =
//! the version) and its checksum cover all of it.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::page::{self, PageKind, Seal, PAGE_HEADER_BYTES};

const MAGIC: [u8; 8] = *b"CAIRNPGF";
/// Format version written in every meta page.
pub const PAGE_FILE_VERSION: u32 = 1;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug)]
#[repr(C)]
struct MetaBody {
    magic: [u8; 8],
    version: U32,
    page_size: U32,
    root_page: U64,
    freelist_page: U64,
    freelist_pages: U32,
    reserved: [u8; 4],
    page_count: U64,
}

const META_BODY_BYTES: usize = 48;
const _: () = assert!(std::mem::size_of::<MetaBody>() == META_BODY_BYTES);

/// A committed version of the page file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub txn_id: u64,
    pub page_size: u32,
    /// Root of the root tree (keyspace name -> keyspace root); 0 = empty.
    pub root_page: u64,
    /// First page of the freelist run; 0 = no freelist.
    pub freelist_page: u64,
    pub freelist_pages: u32,
    /// Pages ever allocated (the high-water mark); pages `>= page_count`
    /// are preallocated zeros.
    pub page_count: u64,
}

impl Meta {
    pub(crate) fn slot(&self) -> u64 {
        self.txn_id % 2
    }

    /// Encodes this meta for `slot` (always `slot()`, except the initial
    /// txn 0, which is written to both slots).
    pub(crate) fn encode(&self, slot: u64) -> Vec<u8> {
        let mut buf = vec![0u8; self.page_size as usize];
        let body = MetaBody {
            magic: MAGIC,
            version: PAGE_FILE_VERSION.into(),
            page_size: self.page_size.into(),
            root_page: self.root_page.into(),
            freelist_page: self.freelist_page.into(),
            freelist_pages: self.freelist_pages.into(),
            reserved: [0; 4],
            page_count: self.page_count.into(),
        };
        buf[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + META_BODY_BYTES]
            .copy_from_slice(body.as_bytes());
        page::seal(
            &mut buf,
            Seal {
                page_id: slot,
                txn_id: self.txn_id,
                kind: PageKind::Meta,
                run_pages: 1,
                count: 0,
            },
        );
        buf
    }

    /// The page size a meta page claims, unchecked (to know how much to
    /// read before the checksum can be verified).
    pub(crate) fn claimed_page_size(prefix: &[u8]) -> Option<u32> {
        let b = prefix.get(PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + META_BODY_BYTES)?;
        MetaBody::read_from_bytes(b).ok().map(|m| m.page_size.get())
    }

    /// Decodes and checks meta page `slot`; the error is the reason.
    pub(crate) fn decode(buf: &[u8], slot: u64) -> Result<Meta, String> {
        let h = page::verify(buf, slot, PageKind::Meta)?;
        let b = &buf[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + META_BODY_BYTES];
        let m = MetaBody::read_from_bytes(b).map_err(|_| "short meta page".to_string())?;
        if m.magic != MAGIC {
            return Err("bad magic (not a Cairn page file)".into());
        }
        if m.version.get() != PAGE_FILE_VERSION {
            return Err(format!("unsupported format version {}", m.version.get()));
        }
        if m.page_size.get() as usize != buf.len() {
            return Err(format!("page size {} does not match", m.page_size.get()));
        }
        let meta = Meta {
            txn_id: h.txn_id.get(),
            page_size: m.page_size.get(),
            root_page: m.root_page.get(),
            freelist_page: m.freelist_page.get(),
            freelist_pages: m.freelist_pages.get(),
            page_count: m.page_count.get(),
        };
        if meta.slot() != slot && meta.txn_id != 0 {
            return Err(format!(
                "txn {} does not belong in slot {slot}",
                meta.txn_id
            ));
        }
        let refs_ok = meta.page_count >= 2
            && meta.root_page < meta.page_count
            && meta.root_page != 1
            && meta.freelist_page + u64::from(meta.freelist_pages) <= meta.page_count;
        if !refs_ok {
            return Err(format!("references outside the file: {meta:?}"));
        }
        Ok(meta)
    }
}

/// Picks the committed version: the valid meta with the highest txn id
/// (slot 0 on a tie, which only happens for a freshly created file).
pub(crate) fn choose(
    m0: Result<Meta, String>,
    m1: Result<Meta, String>,
) -> Result<Meta, (String, String)> {
    match (m0, m1) {
        (Ok(a), Ok(b)) => Ok(if b.txn_id > a.txn_id { b } else { a }),
        (Ok(a), Err(_)) => Ok(a),
        (Err(_), Ok(b)) => Ok(b),
        (Err(e0), Err(e1)) => Err((e0, e1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(txn_id: u64) -> Meta {
        Meta {
            txn_id,
            page_size: 512,
            root_page: 0,
            freelist_page: 0,
            freelist_pages: 0,
            page_count: 2,
        }
    }

    #[test]
    fn highest_valid_meta_wins_and_a_bad_one_is_skipped() {
        let a = Meta::decode(&meta(4).encode(0), 0);
        let b = Meta::decode(&meta(5).encode(1), 1);
        assert_eq!(choose(a.clone(), b).unwrap().txn_id, 5);
        let mut bad = meta(5).encode(1);
        bad[60] ^= 1;
        let b = Meta::decode(&bad, 1);
        assert!(b.is_err());
        assert_eq!(choose(a, b).unwrap().txn_id, 4);
    }

    #[test]
    fn meta_in_the_wrong_slot_is_refused() {
        let mut m = meta(5).encode(1);
        assert!(Meta::decode(&m, 0).is_err());
        m = meta(5).encode(0);
        assert!(Meta::decode(&m, 0).is_err(), "txn 5 belongs in slot 1");
    }
}
