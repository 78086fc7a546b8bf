//! The snapshot file: a compact page-file image (`member/db` as
//! `ReadTxn::compact_to` writes it) followed by a fixed 40-byte trailer
//! that says how long the image is and what its xxh3-64 is. A snapshot is
//! what `cairnctl snapshot save` writes and `cairnctl snapshot restore`
//! reads; `cairn-dump verify` checks one offline.
//!
//! ```text
//!  0                      image_len                              +40
//!  +----------------------+-------+-----+-----+---------+--------+----------+
//!  | page file image      | magic | ver | res | image_  | image_ | trailer_ |
//!  | (meta 0, meta 1,     | "CAIRN| u32 | u32 | len u64 | hash   | checksum |
//!  |  pages...)           |  SNP" |     | = 0 |         | u64    | u64      |
//!  +----------------------+-------+-----+-----+---------+--------+----------+
//! ```
//!
//! All integers are little-endian. `image_hash` is xxh3-64 of the image
//! bytes; `trailer_checksum` is xxh3-64 of the 32 trailer bytes before it,
//! so a damaged trailer is told apart from a damaged image. The layout is
//! also in `storage/FORMAT.md` ("Snapshot file").
//!
//! # Invariants
//!
//! * The image is a page file as it is: opening the first `image_len`
//!   bytes (`Db::open_read_only(path, Some(image_len), ..)`) reads the
//!   snapshot in place, and [`extract_image`] yields a `member/db`.
//! * [`check`] reads the whole file once with a bounded buffer
//!   ([`READ_CHUNK_BYTES`]); nothing is trusted before the trailer checksum
//!   and the length check pass, and the image only once its hash matches.
//! * Files are replaced atomically: [`extract_image`] writes `<dest>.tmp`,
//!   fdatasyncs, renames and syncs the directory; [`seal`] appends the
//!   trailer with one write and one fdatasync.
//!
//! # Example
//!
//! ```
//! use cairn_storage::snapshot;
//!
//! let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
//! let path = dir.path().join("backup.snap");
//! std::fs::write(&path, b"a page file image").unwrap();
//! assert!(!snapshot::looks_like_snapshot(&path));
//! let sealed = snapshot::seal(&path).unwrap();
//! assert!(snapshot::looks_like_snapshot(&path));
//! assert_eq!(snapshot::check(&path).unwrap(), sealed);
//! assert_eq!(sealed.file_len_bytes, sealed.image_len_bytes + snapshot::TRAILER_BYTES);
//!
//! let db = dir.path().join("db");
//! snapshot::extract_image(&path, &db).unwrap();
//! assert_eq!(std::fs::read(&db).unwrap(), b"a page file image");
//! ```

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// Magic at the start of the trailer.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"CAIRNSNP";
/// Version of the trailer layout written here.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;
/// Bytes of the trailer.
pub const TRAILER_BYTES: u64 = 40;
/// Bytes read at a time while hashing or copying an image.
pub const READ_CHUNK_BYTES: usize = 1 << 20;

/// Offset in the trailer of its checksum (which covers the bytes before).
const TRAILER_CHECKSUM_AT: usize = 32;
/// Magic of a page file's meta page, at byte 40 of the page (see
/// `FORMAT.md`, "Meta pages"); only used to explain a missing trailer.
const PAGE_FILE_MAGIC: &[u8; 8] = b"CAIRNPGF";

/// What a snapshot's trailer says, once checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Bytes of the page-file image (the file minus the trailer).
    pub image_len_bytes: u64,
    /// xxh3-64 of the image.
    pub hash: u64,
    /// Bytes of the whole file.
    pub file_len_bytes: u64,
}

/// Why a snapshot file was refused. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A system call failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// What we were doing ("reading", "fdatasync", ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file does not end with a snapshot trailer.
    #[error("{}: not a Cairn snapshot (no trailer){hint}", path.display())]
    NoTrailer {
        /// The file.
        path: PathBuf,
        /// Empty, or `: ...` explaining what the file looks like instead
        /// (e.g. a page file that is shorter than its meta page says).
        hint: String,
    },

    /// The trailer's magic is there but its checksum does not match.
    #[error("{}: corrupt: snapshot trailer checksum mismatch (at offset {offset})", path.display())]
    TrailerCorrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the trailer.
        offset: u64,
    },

    /// A trailer from a newer format.
    #[error(
        "{}: snapshot format version {version} is not supported (this build reads version {SNAPSHOT_FORMAT_VERSION})",
        path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version the trailer names.
        version: u32,
    },

    /// The trailer names an image length the file does not hold.
    #[error(
        "{}: {}: trailer says image of {image_len_bytes} bytes, file holds {held_bytes}",
        path.display(),
        if held_bytes < image_len_bytes { "truncated" } else { "corrupt" }
    )]
    LengthMismatch {
        /// The file.
        path: PathBuf,
        /// The image length the trailer names.
        image_len_bytes: u64,
        /// The image bytes the file holds (its length minus the trailer).
        held_bytes: u64,
    },

    /// The image does not hash to what the trailer says.
    #[error(
        "{}: corrupt: image hash mismatch (trailer says {expected:016x}, image of {image_len_bytes} bytes hashes to {actual:016x})",
        path.display()
    )]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// Bytes hashed.
        image_len_bytes: u64,
        /// The hash in the trailer.
        expected: u64,
        /// The hash of the bytes read.
        actual: u64,
    },

    /// [`seal`] of a file that already ends with a valid trailer.
    #[error("{}: already a sealed snapshot (it ends with a valid trailer)", path.display())]
    AlreadySealed {
        /// The file.
        path: PathBuf,
    },
}

/// Result alias of this module.
pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The trailer as decoded (not yet checked against the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Trailer {
    version: u32,
    image_len_bytes: u64,
    image_hash: u64,
}

impl Trailer {
    fn encode(&self) -> [u8; TRAILER_BYTES as usize] {
        let mut b = [0u8; TRAILER_BYTES as usize];
        b[0..8].copy_from_slice(SNAPSHOT_MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        // 12..16 reserved, zero.
        b[16..24].copy_from_slice(&self.image_len_bytes.to_le_bytes());
        b[24..32].copy_from_slice(&self.image_hash.to_le_bytes());
        let sum = xxh3_64(&b[..TRAILER_CHECKSUM_AT]);
        b[32..40].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// `None` without the magic; `Some(Err(()))` with the magic but a
    /// checksum mismatch.
    fn decode(b: &[u8; TRAILER_BYTES as usize]) -> Option<Result<Trailer, ()>> {
        if &b[0..8] != SNAPSHOT_MAGIC {
            return None;
        }
        let sum = xxh3_64(&b[..TRAILER_CHECKSUM_AT]);
        if le_u64(b, 32) != sum {
            return Some(Err(()));
        }
        Some(Ok(Trailer {
            version: le_u32(b, 8),
            image_len_bytes: le_u64(b, 16),
            image_hash: le_u64(b, 24),
        }))
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn file_len(f: &File, path: &Path) -> Result<u64> {
    Ok(f.metadata().map_err(io_err("stat", path))?.len())
}

/// The last [`TRAILER_BYTES`] of the file, if it is that long.
fn read_tail(f: &File, path: &Path, len: u64) -> Result<Option<[u8; TRAILER_BYTES as usize]>> {
    if len < TRAILER_BYTES {
        return Ok(None);
    }
    let mut b = [0u8; TRAILER_BYTES as usize];
    f.read_exact_at(&mut b, len - TRAILER_BYTES)
        .map_err(io_err("reading the trailer", path))?;
    Ok(Some(b))
}

/// Checks the trailer of an open file against its length; the image is
/// not read.
fn trailer_of(f: &File, path: &Path) -> Result<SnapshotInfo> {
    let len = file_len(f, path)?;
    let Some(tail) = read_tail(f, path, len)? else {
        return Err(no_trailer(f, path, len));
    };
    let trailer = match Trailer::decode(&tail) {
        None => return Err(no_trailer(f, path, len)),
        Some(Err(())) => {
            return Err(SnapshotError::TrailerCorrupt {
                path: path.to_path_buf(),
                offset: len - TRAILER_BYTES,
            })
        }
        Some(Ok(t)) => t,
    };
    if trailer.version != SNAPSHOT_FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion {
            path: path.to_path_buf(),
            version: trailer.version,
        });
    }
    let held_bytes = len - TRAILER_BYTES;
    if held_bytes != trailer.image_len_bytes {
        return Err(SnapshotError::LengthMismatch {
            path: path.to_path_buf(),
            image_len_bytes: trailer.image_len_bytes,
            held_bytes,
        });
    }
    Ok(SnapshotInfo {
        image_len_bytes: trailer.image_len_bytes,
        hash: trailer.image_hash,
        file_len_bytes: len,
    })
}

/// [`SnapshotError::NoTrailer`], with a hint when the file starts like a
/// page file: a snapshot cut short (its trailer lost) or a page file that
/// was never sealed.
fn no_trailer(f: &File, path: &Path, len: u64) -> SnapshotError {
    let hint = match page_file_head(f) {
        Some((page_size, page_count)) => {
            let need = u64::from(page_size).saturating_mul(page_count);
            if need > len {
                format!(
                    ": truncated? it starts like a page file whose meta page names {page_count} \
                     pages of {page_size} bytes ({need} bytes), but the file holds {len}"
                )
            } else {
                ": it is a page file (like member/db), not a sealed snapshot".to_string()
            }
        }
        None if len < TRAILER_BYTES => format!(": the file holds only {len} bytes"),
        None => String::new(),
    };
    SnapshotError::NoTrailer {
        path: path.to_path_buf(),
        hint,
    }
}

/// `(page_size, page_count)` from meta slot 0 if the file starts with a
/// page file's meta page (unverified: used for a hint only).
fn page_file_head(f: &File) -> Option<(u32, u64)> {
    let mut b = [0u8; 88];
    f.read_exact_at(&mut b, 0).ok()?;
    if &b[40..48] != PAGE_FILE_MAGIC {
        return None;
    }
    Some((le_u32(&b, 52), le_u64(&b, 80)))
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(io_err("opening", path))
}

/// Feeds the first `len_bytes` of `f` to `sink`, [`READ_CHUNK_BYTES`] at a
/// time, and returns their xxh3-64.
fn stream_prefix(
    f: &mut File,
    path: &Path,
    len_bytes: u64,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut left = len_bytes;
    // Bounded: each round consumes at least one byte or fails.
    while left > 0 {
        let want = left.min(READ_CHUNK_BYTES as u64) as usize;
        let got = match f.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(SnapshotError::LengthMismatch {
                    path: path.to_path_buf(),
                    image_len_bytes: len_bytes,
                    held_bytes: len_bytes - left,
                })
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("reading", path)(e)),
        };
        hasher.update(&buf[..got]);
        sink(&buf[..got])?;
        left -= got as u64;
    }
    Ok(hasher.digest())
}

/// Whether the file ends with the trailer magic (nothing else is checked;
/// see [`check`]). False for anything unreadable.
pub fn looks_like_snapshot(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return false;
    };
    matches!(read_tail(&f, path, len), Ok(Some(t)) if &t[0..8] == SNAPSHOT_MAGIC)
}

/// Checks the trailer and the file length, without reading the image
/// (cheap: for tools that open the image next, which checks every page it
/// reads). [`check`] also verifies the image hash.
pub fn read_trailer(path: &Path) -> Result<SnapshotInfo> {
    trailer_of(&open(path)?, path)
}

/// Checks a snapshot file completely: the trailer (magic, checksum,
/// version), the length, and the image's hash, reading the file once.
pub fn check(path: &Path) -> Result<SnapshotInfo> {
    let mut f = open(path)?;
    let info = trailer_of(&f, path)?;
    let actual = stream_prefix(&mut f, path, info.image_len_bytes, |_| Ok(()))?;
    if actual != info.hash {
        return Err(SnapshotError::HashMismatch {
            path: path.to_path_buf(),
            image_len_bytes: info.image_len_bytes,
            expected: info.hash,
            actual,
        });
    }
    Ok(info)
}

/// Makes the page-file image at `path` a snapshot: hashes it as it is,
/// appends the trailer (one write) and fdatasyncs. Refuses a file that is
/// already sealed.
pub fn seal(path: &Path) -> Result<SnapshotInfo> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("opening", path))?;
    if trailer_of(&f, path).is_ok() {
        return Err(SnapshotError::AlreadySealed {
            path: path.to_path_buf(),
        });
    }
    let image_len_bytes = file_len(&f, path)?;
    let hash = stream_prefix(&mut f, path, image_len_bytes, |_| Ok(()))?;
    let trailer = Trailer {
        version: SNAPSHOT_FORMAT_VERSION,
        image_len_bytes,
        image_hash: hash,
    };
    f.write_all_at(&trailer.encode(), image_len_bytes)
        .map_err(io_err("writing the trailer", path))?;
    f.sync_data().map_err(io_err("fdatasync", path))?;
    Ok(SnapshotInfo {
        image_len_bytes,
        hash,
        file_len_bytes: image_len_bytes + TRAILER_BYTES,
    })
}

/// Whether [`extract_image_with`] compares the image with its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashCheck {
    /// Refuse an image whose hash does not match the trailer.
    Verify,
    /// Copy the image whatever its hash (`--skip-hash-check`).
    Skip,
}

/// Copies the image of the snapshot at `snapshot` to `dest` (a page file
/// ready to open), verifying its hash as it is copied: written to
/// `<dest>.tmp`, fdatasynced, renamed to `dest`, directory synced. On any
/// error `dest` is untouched and the temporary file removed.
pub fn extract_image(snapshot: &Path, dest: &Path) -> Result<SnapshotInfo> {
    extract_image_with(snapshot, dest, HashCheck::Verify)
}

/// [`extract_image`], optionally without the hash check.
pub fn extract_image_with(snapshot: &Path, dest: &Path, hash: HashCheck) -> Result<SnapshotInfo> {
    let info = read_trailer(snapshot)?;
    let actual = copy_prefix(snapshot, dest, info.image_len_bytes, |actual| {
        if hash == HashCheck::Verify && actual != info.hash {
            return Err(SnapshotError::HashMismatch {
                path: snapshot.to_path_buf(),
                image_len_bytes: info.image_len_bytes,
                expected: info.hash,
                actual,
            });
        }
        Ok(())
    })?;
    Ok(SnapshotInfo {
        hash: actual,
        ..info
    })
}

/// Copies the first `len_bytes` of `src` to `dest` atomically (as
/// [`extract_image`]), e.g. a page file that is not a snapshot; returns the
/// xxh3-64 of the bytes copied.
pub fn copy_prefix_atomically(src: &Path, dest: &Path, len_bytes: u64) -> Result<u64> {
    copy_prefix(src, dest, len_bytes, |_| Ok(()))
}

/// Copies, then asks `accept` (given the hash of the bytes copied) before
/// the rename makes `dest` visible.
fn copy_prefix(
    src: &Path,
    dest: &Path,
    len_bytes: u64,
    accept: impl FnOnce(u64) -> Result<()>,
) -> Result<u64> {
    let tmp = tmp_path(dest);
    let result = (|| {
        let mut from = open(src)?;
        // Private to the owner, as the node's own files (etcd: 0600).
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("creating", &tmp))?;
        let hash = stream_prefix(&mut from, src, len_bytes, |chunk| {
            to.write_all(chunk).map_err(io_err("writing", &tmp))
        })?;
        accept(hash)?;
        to.sync_data().map_err(io_err("fdatasync", &tmp))?;
        drop(to);
        std::fs::rename(&tmp, dest).map_err(io_err("renaming into place", &tmp))?;
        Ok(hash)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    sync_parent(dest)?;
    result
}

/// `<path>.tmp`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// fsyncs the directory holding `path`, so that a rename into it is durable.
fn sync_parent(path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(len: usize) -> Vec<u8> {
        // Not all zeros, so that a flipped byte changes the hash.
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn sealed(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
        let p = dir.join("s.snap");
        let img = image(len);
        std::fs::write(&p, &img).unwrap();
        seal(&p).unwrap();
        (p, img)
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir_in(std::env::temp_dir()).unwrap()
    }

    #[test]
    fn seal_appends_a_trailer_that_check_accepts() {
        let dir = tempdir();
        // Larger than one read chunk, not a multiple of it.
        let len = READ_CHUNK_BYTES * 2 + 1234;
        let (p, img) = sealed(dir.path(), len);
        let info = check(&p).unwrap();
        assert_eq!(info.image_len_bytes, len as u64);
        assert_eq!(info.file_len_bytes, len as u64 + TRAILER_BYTES);
        assert_eq!(info.hash, xxh3_64(&img));
        assert_eq!(read_trailer(&p).unwrap(), info);
        assert!(looks_like_snapshot(&p));
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..len], &img[..]);
        assert_eq!(&bytes[len..len + 8], SNAPSHOT_MAGIC);
    }

    #[test]
    fn an_empty_image_is_a_valid_snapshot() {
        let dir = tempdir();
        let (p, _) = sealed(dir.path(), 0);
        assert_eq!(check(&p).unwrap().file_len_bytes, TRAILER_BYTES);
    }

    #[test]
    fn sealing_twice_is_refused() {
        let dir = tempdir();
        let (p, _) = sealed(dir.path(), 100);
        let e = seal(&p).unwrap_err();
        assert!(matches!(e, SnapshotError::AlreadySealed { .. }), "{e}");
        assert!(check(&p).is_ok());
    }

    #[test]
    fn a_file_without_trailer_is_not_a_snapshot() {
        let dir = tempdir();
        let p = dir.path().join("plain");
        std::fs::write(&p, image(1000)).unwrap();
        assert!(!looks_like_snapshot(&p));
        let e = check(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: not a Cairn snapshot (no trailer)", p.display())
        );
        std::fs::write(&p, b"tiny").unwrap();
        let e = check(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("no trailer): the file holds only 4 bytes"),
            "{e}"
        );
        assert!(!looks_like_snapshot(&dir.path().join("missing")));
    }

    #[test]
    fn a_cut_off_snapshot_of_a_page_file_is_called_truncated() {
        let dir = tempdir();
        let p = dir.path().join("cut.snap");
        let mut img = vec![0u8; 4 * 512];
        img[40..48].copy_from_slice(PAGE_FILE_MAGIC);
        img[52..56].copy_from_slice(&512u32.to_le_bytes());
        img[80..88].copy_from_slice(&4u64.to_le_bytes());
        std::fs::write(&p, &img).unwrap();
        seal(&p).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(1500).unwrap();
        let e = check(&p).unwrap_err().to_string();
        assert!(
            e.contains("not a Cairn snapshot (no trailer): truncated? it starts like a page file")
                && e.contains("(2048 bytes), but the file holds 1500"),
            "{e}"
        );
        // The whole image without its trailer: a page file, not a snapshot.
        f.set_len(2048).unwrap();
        let e = check(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("it is a page file (like member/db), not a sealed snapshot"),
            "{e}"
        );
    }

    #[test]
    fn missing_image_bytes_are_a_length_mismatch() {
        let dir = tempdir();
        let (p, _) = sealed(dir.path(), 5000);
        // Cut 1000 bytes out of the middle: the trailer survives.
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.drain(2000..3000);
        std::fs::write(&p, &bytes).unwrap();
        assert!(looks_like_snapshot(&p));
        let e = check(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: truncated: trailer says image of 5000 bytes, file holds 4000",
                p.display()
            )
        );
        bytes.splice(100..100, vec![9u8; 2000]);
        std::fs::write(&p, &bytes).unwrap();
        let e = check(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("corrupt: trailer says image of 5000 bytes, file holds 6000"),
            "{e}"
        );
    }

    #[test]
    fn a_flipped_image_byte_is_a_hash_mismatch() {
        let dir = tempdir();
        let (p, _) = sealed(dir.path(), 3000);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[1234] ^= 0x40;
        std::fs::write(&p, &bytes).unwrap();
        assert!(
            read_trailer(&p).is_ok(),
            "the trailer alone still checks out"
        );
        let e = check(&p).unwrap_err();
        assert!(matches!(e, SnapshotError::HashMismatch { .. }));
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{}: corrupt: image hash mismatch", p.display())),
            "{text}"
        );
    }

    #[test]
    fn a_damaged_trailer_is_told_apart_from_a_damaged_image() {
        let dir = tempdir();
        let (p, _) = sealed(dir.path(), 3000);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[3000 + 20] ^= 1; // image_len
        std::fs::write(&p, &bytes).unwrap();
        let e = check(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: corrupt: snapshot trailer checksum mismatch (at offset 3000)",
                p.display()
            )
        );
    }

    #[test]
    fn a_newer_format_version_is_refused_by_name() {
        let dir = tempdir();
        let p = dir.path().join("v2.snap");
        let mut bytes = image(10);
        let t = Trailer {
            version: 2,
            image_len_bytes: 10,
            image_hash: xxh3_64(&bytes),
        };
        bytes.extend_from_slice(&t.encode());
        std::fs::write(&p, &bytes).unwrap();
        let e = check(&p).unwrap_err().to_string();
        assert!(
            e.contains("snapshot format version 2 is not supported"),
            "{e}"
        );
    }

    #[test]
    fn extract_copies_exactly_the_image_and_leaves_no_temporary() {
        let dir = tempdir();
        let (p, img) = sealed(dir.path(), READ_CHUNK_BYTES + 77);
        let dest = dir.path().join("db");
        std::fs::write(&dest, b"old").unwrap();
        let info = extract_image(&p, &dest).unwrap();
        assert_eq!(info, check(&p).unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), img);
        assert!(!tmp_path(&dest).exists());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn extract_refuses_a_corrupt_image_and_keeps_dest() {
        let dir = tempdir();
        let (p, img) = sealed(dir.path(), 4096);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let dest = dir.path().join("db");
        let e = extract_image(&p, &dest).unwrap_err();
        assert!(matches!(e, SnapshotError::HashMismatch { .. }), "{e}");
        assert!(!dest.exists());
        assert!(!tmp_path(&dest).exists());
        // --skip-hash-check copies it anyway.
        let info = extract_image_with(&p, &dest, HashCheck::Skip).unwrap();
        assert_ne!(info.hash, xxh3_64(&img));
        assert_eq!(std::fs::read(&dest).unwrap(), &bytes[..4096]);
    }

    #[test]
    fn copy_prefix_copies_a_plain_file() {
        let dir = tempdir();
        let src = dir.path().join("src");
        let img = image(9000);
        std::fs::write(&src, &img).unwrap();
        let dest = dir.path().join("dest");
        let hash = copy_prefix_atomically(&src, &dest, 9000).unwrap();
        assert_eq!(hash, xxh3_64(&img));
        assert_eq!(std::fs::read(&dest).unwrap(), img);
        let e = copy_prefix_atomically(&src, &dest, 9001).unwrap_err();
        assert!(matches!(e, SnapshotError::LengthMismatch { .. }), "{e}");
        assert_eq!(std::fs::read(&dest).unwrap(), img, "dest kept on failure");
    }
}
