//! The copy-on-write B+tree page file (`member/db`).
//!
//! One file of fixed-size pages holds named, ordered keyspaces (like bbolt
//! buckets): a root tree maps each keyspace name to the root page of its own
//! B+tree. A single [`WriteTxn`] edits copies of the pages it touches; commit
//! writes them to free pages, syncs, then writes the meta page that names
//! the new roots and syncs again. Any number of [`ReadTxn`]s read the
//! versions they started at, concurrently with the writer.
//!
//! # Layers
//!
//! * `page` — the page header, its xxh3 checksum, size limits;
//! * `node` — branch and leaf layout, in-place reads, owned nodes;
//! * `meta` — the two alternating meta pages;
//! * [`Disk`] — the I/O boundary: [`UringDisk`] (O_DIRECT, writes through
//!   io_uring; what [`Db::open_path`] uses where it can), [`FileDisk`]
//!   (pread/pwrite/fdatasync) and [`SimDisk`] (crash simulation);
//! * `pager` — verified reads and the page cache; `search` — the
//!   in-memory search index each cached page carries;
//! * `alloc` — provisional ids while a writer edits, the freelist, and
//!   `place`: the commit's pages given real ids in few contiguous runs;
//! * `tree` — lookup, copy-on-write insert/delete with split and merge;
//! * [`Cursor`] / [`Range`] — ordered iteration both ways;
//! * [`ReadTxn`] / [`WriteTxn`] — versions and the commit protocol;
//! * `verify` ([`Db::verify`]), `copy` ([`ReadTxn::compact_to`], a bulk
//!   loaded compact copy) and `readonly` ([`Db::open_read_only`] over
//!   [`ReadOnlyFileDisk`]) — whole-file tools built on the layers above.
//!
//! # Invariants
//!
//! * A page reachable from a committed version that a reader may hold, or
//!   from the previous committed version, is never written. A page freed by
//!   transaction `F` is reused only once no reader holds a version `< F`.
//! * Every page read is checked (checksum seeded with its id, kind,
//!   structure) before use; a mismatch is [`BtreeError::Corrupt`] naming the
//!   page, never wrong data.
//! * Transaction `t` writes meta slot `t % 2`; opening picks the valid meta
//!   with the highest txn id. The byte layout and the crash argument are in
//!   `storage/FORMAT.md` ("Page file").
//!
//! # Example
//!
//! ```
//! use cairn_storage::btree::{Db, Options, SimDisk};
//!
//! let disk = SimDisk::new();
//! let db = Db::open(disk.clone(), Options::default()).unwrap();
//! let mut w = db.begin_write().unwrap();
//! w.create_keyspace("kv").unwrap();
//! w.put("kv", b"a", b"1").unwrap();
//! w.put("kv", b"b", b"2").unwrap();
//! w.commit().unwrap();
//!
//! let r = db.begin_read().unwrap();
//! assert_eq!(r.get("kv", b"a").unwrap(), Some(b"1".to_vec()));
//! let keys: Vec<_> = r.range_rev("kv", ..).unwrap().map(|e| e.unwrap().0).collect();
//! assert_eq!(keys, vec![b"b".to_vec(), b"a".to_vec()]);
//! drop(r);
//!
//! drop(db);
//! let db = Db::open(disk, Options::default()).unwrap(); // reopen
//! assert_eq!(db.begin_read().unwrap().get("kv", b"b").unwrap(), Some(b"2".to_vec()));
//! ```

mod alloc;
mod copy;
mod cursor;
mod disk;
mod error;
mod meta;
mod node;
mod page;
mod pager;
mod place;
mod readonly;
mod search;
mod tree;
mod txn;
mod uring;
mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, TryLockError};

pub use copy::CopyStats;
pub use cursor::{Cursor, Entry, Range};
pub use disk::{Disk, FileDisk, PowerCut, SimDisk};
pub use error::{BtreeError, Result};
pub use meta::PAGE_FILE_VERSION;
pub use node::ValueGuard;
pub use page::{MAX_PAGE_SIZE_BYTES, MAX_VALUE_BYTES, MIN_PAGE_SIZE_BYTES, PAGE_HEADER_BYTES};
pub use readonly::ReadOnlyFileDisk;
pub use txn::{ReadTxn, WriteTxn};
pub use uring::UringDisk;
pub use verify::{KeyspaceReport, VerifyReport};

use alloc::Allocator;
use meta::Meta;
use page::{Limits, PageKind};
use pager::{PageCache, Shared, Versions};

/// Longest key a page file with pages of `page_size_bytes` stores.
pub fn max_key_bytes(page_size_bytes: u32) -> usize {
    Limits {
        page_size: page_size_bytes as usize,
    }
    .max_key_bytes()
}

/// Tuning of a page file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Page size of a new file (a power of two in 512..=65536; default
    /// 4096). An existing file keeps the page size it was created with.
    pub page_size_bytes: u32,
    /// Bytes of node pages the read cache holds (default 1 GiB, redb's
    /// default too). Memory is taken only as pages are cached, so a file
    /// smaller than this costs at most its own node pages. With O_DIRECT
    /// (the default) a miss here is a device read for any page written
    /// since it was last read, so a cache smaller than the working set
    /// turns random reads and inserts into device reads.
    pub cache_size_bytes: u64,
    /// The file grows by whole multiples of this, written as zeros
    /// (default 4 MiB).
    pub grow_chunk_bytes: u64,
    /// [`Db::open_path`] opens the file with O_DIRECT and writes through
    /// io_uring ([`UringDisk`]), falling back to [`FileDisk`] with one
    /// warning where that is not usable; false: always [`FileDisk`]
    /// (default true).
    pub direct_io: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            page_size_bytes: 4096,
            cache_size_bytes: 1 << 30,
            grow_chunk_bytes: 4 << 20,
            direct_io: true,
        }
    }
}

/// Counters of a page file, for status output and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Txn id of the last committed version.
    pub txn_id: u64,
    /// Page size of the file.
    pub page_size_bytes: u32,
    /// Pages ever allocated (including the two meta pages).
    pub page_count: u64,
    /// Pages reusable by the next write transaction (0 while a write
    /// transaction is open, as are the other allocator counters).
    pub free_pages: u64,
    /// Freed pages still visible to some reader (or to the last version).
    pub pending_pages: u64,
    /// Length of the file.
    pub file_len_bytes: u64,
    /// Open read transactions.
    pub open_readers: u64,
    /// Page cache hits since open.
    pub cache_hits: u64,
    /// See `cache_hits`.
    pub cache_misses: u64,
}

/// An open page file.
pub struct Db {
    shared: Arc<Shared>,
    /// Held by the write transaction: there is one writer at a time.
    alloc: Mutex<Allocator>,
    grow_chunk_bytes: u64,
    /// Opened with [`Db::open_read_only`]: `begin_write` is refused.
    read_only: bool,
}

impl Db {
    /// Opens the file at `path` (creating it if missing or empty), with
    /// O_DIRECT + io_uring if `opts.direct_io` and usable here (see
    /// [`Db::uses_direct_io`]), else with `pread`/`pwrite`.
    pub fn open_path(path: &Path, opts: Options) -> Result<Db> {
        if !path.exists() {
            create_atomically(path, &opts)?;
        }
        if opts.direct_io {
            match open_direct(path, &opts) {
                Ok(db) => return db,
                Err(reason) => tracing::warn!(
                    path = %path.display(),
                    %reason,
                    "O_DIRECT not usable; page file falls back to pread/pwrite + fdatasync"
                ),
            }
        }
        let disk = FileDisk::open(path)
            .map_err(|e| BtreeError::io("opening", path.display().to_string(), 0, e))?;
        Db::open(disk, opts)
    }

    /// Opens the page file on `disk`; an empty disk becomes a new file.
    pub fn open(disk: impl Disk, opts: Options) -> Result<Db> {
        check_options(&opts)?;
        let name = disk.name();
        let len = disk
            .len_bytes()
            .map_err(|e| BtreeError::io("stat", name.clone(), 0, e))?;
        let meta = if len == 0 {
            create(&disk, &opts)?
        } else {
            read_meta(&disk, len)?
        };
        let limits = Limits {
            page_size: meta.page_size as usize,
        };
        let cache_pages = (opts.cache_size_bytes / u64::from(meta.page_size)) as usize;
        let shared = Arc::new(Shared {
            disk: Box::new(disk),
            name,
            limits,
            cache: PageCache::new(cache_pages),
            versions: Mutex::new(Versions {
                meta,
                readers: BTreeMap::new(),
                poisoned: false,
            }),
        });
        let free = load_freelist(&shared, &meta)?;
        let grow_chunk_bytes = opts.grow_chunk_bytes.max(u64::from(meta.page_size));
        Ok(Db {
            alloc: Mutex::new(Allocator::new(free, meta.page_count)),
            shared,
            grow_chunk_bytes,
            read_only: false,
        })
    }

    /// Whether the file was opened with O_DIRECT (writes through io_uring,
    /// reads bypass the kernel's page cache: `cache_size_bytes` is then the
    /// only cache).
    pub fn uses_direct_io(&self) -> bool {
        self.shared.disk.uses_direct_io()
    }

    /// Starts a read transaction at the last committed version.
    pub fn begin_read(&self) -> Result<ReadTxn> {
        ReadTxn::begin(self.shared.clone())
    }

    /// Starts the write transaction. There is one at a time: while one is
    /// open this returns [`BtreeError::WriteInProgress`]. Readers can begin
    /// and end at any time.
    pub fn begin_write(&self) -> Result<WriteTxn<'_>> {
        if self.read_only {
            return Err(BtreeError::ReadOnly {
                file: self.shared.name.clone(),
            });
        }
        let alloc = match self.alloc.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(BtreeError::WriteInProgress),
        };
        WriteTxn::begin(self.shared.clone(), alloc, self.grow_chunk_bytes)
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let (meta, readers) = {
            let v = self.shared.versions();
            (v.meta, v.readers.values().sum::<usize>() as u64)
        };
        let (hits, misses) = self.shared.cache.counters();
        let (page_count, free_pages, pending_pages) = match self.alloc.try_lock() {
            Ok(a) => (a.page_count, a.free.len() as u64, a.pending_pages() as u64),
            Err(_) => (meta.page_count, 0, 0), // a writer is active
        };
        Stats {
            txn_id: meta.txn_id,
            page_size_bytes: meta.page_size,
            page_count,
            free_pages,
            pending_pages,
            file_len_bytes: self.shared.disk.len_bytes().unwrap_or(0),
            open_readers: readers,
            cache_hits: hits,
            cache_misses: misses,
        }
    }
}

/// The page file at `path` over a [`UringDisk`], or why that is not usable
/// (the caller falls back to [`FileDisk`]). Errors of the file itself
/// (corruption) are returned inside, not turned into a fallback.
fn open_direct(path: &Path, opts: &Options) -> std::result::Result<Result<Db>, String> {
    let disk = UringDisk::open(path).map_err(|e| e.to_string())?;
    let align = disk.offset_align_bytes();
    let not_aligned =
        |ps: u64| format!("page size {ps} is not a multiple of the O_DIRECT alignment {align}");
    let empty = disk.len_bytes().map_err(|e| e.to_string())? == 0;
    if empty && u64::from(opts.page_size_bytes) % align != 0 {
        return Err(not_aligned(opts.page_size_bytes.into()));
    }
    // Opening writes nothing to an existing file: a page size found to be
    // unaligned only now costs a reopen.
    let db = match Db::open(disk, opts.clone()) {
        Ok(db) => db,
        Err(e) => return Ok(Err(e)),
    };
    let ps = db.shared.limits.page_size as u64;
    if !ps.is_multiple_of(align) {
        return Err(not_aligned(ps));
    }
    Ok(Ok(db))
}

fn check_options(opts: &Options) -> Result<()> {
    let ps = opts.page_size_bytes;
    if !ps.is_power_of_two() || !(MIN_PAGE_SIZE_BYTES..=MAX_PAGE_SIZE_BYTES).contains(&ps) {
        return Err(BtreeError::InvalidOptions {
            reason: format!("page_size_bytes {ps} is not a power of two in 512..=65536"),
        });
    }
    if opts.grow_chunk_bytes == 0 {
        return Err(BtreeError::InvalidOptions {
            reason: "grow_chunk_bytes is 0".into(),
        });
    }
    Ok(())
}

/// Writes a new, empty file: both meta slots hold txn 0.
fn create(disk: &dyn Disk, opts: &Options) -> Result<Meta> {
    let name = disk.name();
    let ps = u64::from(opts.page_size_bytes);
    let meta = Meta {
        txn_id: 0,
        page_size: opts.page_size_bytes,
        root_page: 0,
        freelist_page: 0,
        freelist_pages: 0,
        page_count: 2,
    };
    let len = (2 * ps).div_ceil(opts.grow_chunk_bytes.max(ps)) * opts.grow_chunk_bytes.max(ps);
    let io = |op, off| {
        let name = name.clone();
        move |e| BtreeError::io(op, name, off, e)
    };
    disk.grow(len).map_err(io("growing file", 0))?;
    for slot in 0..2 {
        disk.write_at(slot * ps, &meta.encode(slot))
            .map_err(io("writing meta", slot * ps))?;
    }
    disk.sync().map_err(io("fdatasync", 0))?;
    Ok(meta)
}

/// Reads one meta slot. Slot 1's offset depends on the page size, which a
/// damaged slot 0 cannot tell: try every legal size.
fn read_slot(disk: &dyn Disk, len: u64, slot: u64, hint: Option<u32>) -> Result<Meta, String> {
    let mut sizes: Vec<u32> = hint.into_iter().collect();
    let mut ps = MIN_PAGE_SIZE_BYTES;
    while ps <= MAX_PAGE_SIZE_BYTES {
        sizes.push(ps);
        ps *= 2;
    }
    let mut last = String::from("file too short");
    for ps in sizes {
        let off = slot * u64::from(ps);
        if !ps.is_power_of_two() || off + u64::from(ps) > len {
            continue;
        }
        let mut buf = vec![0u8; ps as usize];
        if let Err(e) = disk.read_at(off, &mut buf) {
            return Err(format!("read failed: {e}"));
        }
        if slot == 0 && hint.is_none() && Meta::claimed_page_size(&buf) != Some(ps) {
            continue;
        }
        match Meta::decode(&buf, slot) {
            Ok(m) => return Ok(m),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn read_meta(disk: &dyn Disk, len: u64) -> Result<Meta> {
    let mut head = vec![0u8; MIN_PAGE_SIZE_BYTES as usize];
    let hint = match disk.read_at(0, &mut head) {
        Ok(()) => Meta::claimed_page_size(&head),
        Err(_) => None,
    };
    let m0 = read_slot(disk, len, 0, hint);
    let m1 = read_slot(disk, len, 1, m0.as_ref().ok().map(|m| m.page_size).or(hint));
    let meta = meta::choose(m0, m1).map_err(|(meta0, meta1)| BtreeError::NoValidMeta {
        file: disk.name(),
        meta0,
        meta1,
    })?;
    if meta.page_count * u64::from(meta.page_size) > len {
        return Err(BtreeError::corrupt(
            disk.name(),
            meta.slot(),
            format!(
                "meta says {} pages, file holds {len} bytes",
                meta.page_count
            ),
        ));
    }
    Ok(meta)
}

fn load_freelist(shared: &Shared, meta: &Meta) -> Result<BTreeSet<u64>> {
    if meta.freelist_page == 0 {
        return Ok(BTreeSet::new());
    }
    let id = meta.freelist_page;
    let (h, buf) = shared.run(id, PageKind::Freelist)?;
    let n = h.count.get() as usize;
    let body = buf
        .get(PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + 8 * n)
        .ok_or_else(|| BtreeError::corrupt(shared.name.clone(), id, "freelist overruns its run"))?;
    let mut free = BTreeSet::new();
    let run = id..id + u64::from(meta.freelist_pages);
    for c in body.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        let p = u64::from_le_bytes(a);
        if p < 2 || p >= meta.page_count || run.contains(&p) || !free.insert(p) {
            let why = format!("freelist holds page {p}, which cannot be free");
            return Err(BtreeError::corrupt(shared.name.clone(), id, why));
        }
    }
    Ok(free)
}

/// Creates a new page file under a temporary name, syncs it, renames it into
/// place and syncs the directory: a crash during creation leaves either no
/// file or a complete one, never a file without valid metas.
fn create_atomically(path: &Path, opts: &Options) -> Result<()> {
    let io = |op: &'static str, p: &Path, e| BtreeError::io(op, p.display().to_string(), 0, e);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing", &tmp, e)),
    }
    let disk = FileDisk::open(&tmp).map_err(|e| io("creating", &tmp, e))?;
    // Opening an empty disk writes and syncs a complete new file.
    drop(Db::open(disk, opts.clone())?);
    std::fs::rename(&tmp, path).map_err(|e| io("renaming", &tmp, e))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing directory", dir, e))
}
