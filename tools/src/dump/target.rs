//! What a PATH on the command line is: a data dir, a member dir, a WAL
//! directory, a WAL segment, a page file or a snapshot. Decided from the
//! directory layout and, for files, from their bytes, so a renamed or
//! copied file is still recognised: a WAL segment starts with its magic, a
//! snapshot ends with its trailer (`cairn_storage::snapshot`), a page file
//! holds a meta page magic at byte 40 of page 0 or page 1. A file named like
//! ours (`db`, `*.db`, `*.snap`, `*.snapshot`) without any of these is taken
//! as a damaged page file, so that it is reported as damage.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Magic of a WAL segment header (block 0), see `storage/FORMAT.md`.
const WAL_SEGMENT_MAGIC: &[u8; 8] = b"CAIRNWAL";
/// Magic of a page file's meta page, at byte 40 of page 0 and page 1.
const PAGE_FILE_MAGIC: &[u8; 8] = b"CAIRNPGF";
/// Byte offset of that magic in a meta page.
const PAGE_FILE_MAGIC_AT: u64 = 40;

/// What the path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A WAL directory, reached from `from`.
    Wal {
        /// The directory holding the segments.
        dir: PathBuf,
        /// How it was reached, for the report.
        from: Origin,
    },
    /// The page file `member/db`.
    PageFile(PathBuf),
    /// A snapshot file (it ends with the snapshot trailer's magic).
    Snapshot(PathBuf),
}

/// How a WAL directory was reached from the path given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The path was the WAL directory itself.
    WalDir,
    /// The path was a data dir (`<path>/member/wal`).
    DataDir,
    /// The path was a member dir (`<path>/wal`).
    MemberDir,
    /// The path was one segment of it: sequence number and file.
    Segment { seq: u64, path: PathBuf },
}

/// Why the path cannot be inspected (exit 2: bad usage).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("{}: no such file or directory", .0.display())]
    Missing(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: not a Cairn data dir, member dir or WAL directory \
         (no member/wal, no wal/, no *.wal segments)",
        .0.display()
    )]
    UnknownDir(PathBuf),
    #[error(
        "{}: not a Cairn file (no WAL segment magic, no snapshot trailer, no page file \
         meta page; expected a WAL segment, a page file member/db or a snapshot)",
        .0.display()
    )]
    UnknownFile(PathBuf),
    #[error(
        "{}: a WAL segment's name must be <seq:016x>-<first_index:016x>.wal \
         (the directory is read by name)",
        .0.display()
    )]
    BadSegmentName(PathBuf),
}

/// Classifies `path` (see the module docs).
pub(crate) fn detect(path: &Path) -> Result<Target, TargetError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TargetError::Missing(path.to_path_buf()))
        }
        Err(source) => {
            return Err(TargetError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if meta.is_dir() {
        detect_dir(path)
    } else {
        detect_file(path)
    }
}

fn detect_dir(path: &Path) -> Result<Target, TargetError> {
    let wal = |dir: PathBuf, from| Ok(Target::Wal { dir, from });
    if path.join("member").join("wal").is_dir() {
        return wal(path.join("member").join("wal"), Origin::DataDir);
    }
    if path.join("wal").is_dir() {
        return wal(path.join("wal"), Origin::MemberDir);
    }
    // An empty directory named `wal` is an empty log, as the server sees it.
    if path.file_name().is_some_and(|n| n == "wal") || holds_segments(path)? {
        return wal(path.to_path_buf(), Origin::WalDir);
    }
    Err(TargetError::UnknownDir(path.to_path_buf()))
}

fn holds_segments(dir: &Path) -> Result<bool, TargetError> {
    let io = |source| TargetError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        let name = name.to_string_lossy();
        if parse_segment_name(&name).is_some() || name.ends_with(".wal.tmp") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn detect_file(path: &Path) -> Result<Target, TargetError> {
    let mut magic = [0u8; 8];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|source| TargetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    if read == magic.len() && &magic == WAL_SEGMENT_MAGIC {
        let seq = name
            .as_deref()
            .and_then(parse_segment_name)
            .map(|(seq, _)| seq)
            .ok_or_else(|| TargetError::BadSegmentName(path.to_path_buf()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let from = Origin::Segment {
            seq,
            path: path.to_path_buf(),
        };
        return Ok(Target::Wal { dir, from });
    }
    if cairn_storage::snapshot::looks_like_snapshot(path) {
        return Ok(Target::Snapshot(path.to_path_buf()));
    }
    let named_like_ours = match name.as_deref() {
        Some("db") => true,
        Some(n) => n.ends_with(".db") || n.ends_with(".snap") || n.ends_with(".snapshot"),
        None => false,
    };
    if named_like_ours || has_page_file_magic(path) {
        return Ok(Target::PageFile(path.to_path_buf()));
    }
    Err(TargetError::UnknownFile(path.to_path_buf()))
}

/// Whether page 0 or page 1 (at any legal page size) holds the page file
/// meta magic: either meta slot may be the damaged one.
fn has_page_file_magic(path: &Path) -> bool {
    use std::os::unix::fs::FileExt as _;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 8];
    let mut at = |off: u64| f.read_exact_at(&mut magic, off).is_ok() && &magic == PAGE_FILE_MAGIC;
    use cairn_storage::btree::{MAX_PAGE_SIZE_BYTES, MIN_PAGE_SIZE_BYTES};
    at(PAGE_FILE_MAGIC_AT)
        || (MIN_PAGE_SIZE_BYTES..=MAX_PAGE_SIZE_BYTES)
            .filter(|ps| ps.is_power_of_two())
            .any(|ps| at(u64::from(ps) + PAGE_FILE_MAGIC_AT))
}

/// `{seq:016x}-{first_index:016x}.wal` → (seq, first_index), as the
/// storage crate names segments.
pub(crate) fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let hex16 = |s: &str| {
        (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    let (seq, first) = name.strip_suffix(".wal")?.split_once('-')?;
    Some((hex16(seq)?, hex16(first)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "cairn-dump-target-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn directories_are_classified_by_layout() {
        let root = tempdir();
        let wal = root.join("data").join("member").join("wal");
        std::fs::create_dir_all(&wal).unwrap();
        let seg = wal.join(cairn_storage::wal::segment_file_name(3, 0x10));
        let mut bytes = WAL_SEGMENT_MAGIC.to_vec();
        bytes.resize(64, 0);
        std::fs::write(&seg, &bytes).unwrap();

        let got = |p: &Path| detect(p).unwrap();
        let w = |from| Target::Wal {
            dir: wal.clone(),
            from,
        };
        assert_eq!(got(&root.join("data")), w(Origin::DataDir));
        assert_eq!(got(&root.join("data/member")), w(Origin::MemberDir));
        assert_eq!(got(&wal), w(Origin::WalDir));
        assert_eq!(
            got(&seg),
            w(Origin::Segment {
                seq: 3,
                path: seg.clone()
            })
        );
        // A renamed segment cannot be placed in its log.
        let renamed = root.join("copy.bin");
        std::fs::write(&renamed, &bytes).unwrap();
        assert!(matches!(
            detect(&renamed),
            Err(TargetError::BadSegmentName(_))
        ));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn unknown_missing_and_future_kinds_are_told_apart() {
        let root = tempdir();
        assert!(matches!(
            detect(&root.join("nope")),
            Err(TargetError::Missing(_))
        ));
        assert!(matches!(detect(&root), Err(TargetError::UnknownDir(_))));
        let junk = root.join("junk.txt");
        std::fs::write(&junk, b"hello").unwrap();
        assert!(matches!(detect(&junk), Err(TargetError::UnknownFile(_))));
        // Named like ours: a (damaged) page file.
        let db = root.join("db");
        std::fs::write(&db, b"").unwrap();
        assert_eq!(detect(&db).unwrap(), Target::PageFile(db.clone()));
        let snap = root.join("backup.snap");
        std::fs::write(&snap, b"x").unwrap();
        assert_eq!(detect(&snap).unwrap(), Target::PageFile(snap.clone()));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn files_are_classified_by_their_bytes_whatever_their_name() {
        let root = tempdir();
        // Meta slot 1 at 1024-byte pages, slot 0 damaged.
        let mut page_file = vec![0u8; 4096];
        page_file[1024 + 40..1024 + 48].copy_from_slice(PAGE_FILE_MAGIC);
        let pf = root.join("copy.bin");
        std::fs::write(&pf, &page_file).unwrap();
        assert_eq!(detect(&pf).unwrap(), Target::PageFile(pf.clone()));
        let snap = root.join("backup.bin");
        std::fs::write(&snap, &page_file).unwrap();
        cairn_storage::snapshot::seal(&snap).unwrap();
        assert_eq!(detect(&snap).unwrap(), Target::Snapshot(snap.clone()));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn segment_names_parse_like_the_storage_crate_writes_them() {
        let n = cairn_storage::wal::segment_file_name(0x1a, 0x2b);
        assert_eq!(parse_segment_name(&n), Some((0x1a, 0x2b)));
        assert_eq!(parse_segment_name("1a-2b.wal"), None);
        assert_eq!(parse_segment_name(&format!("{n}.tmp")), None);
    }
}
