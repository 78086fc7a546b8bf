//! `member/identity`: who this member is (its member id and its cluster's
//! id), fixed when the data dir is first used.
//!
//! Written once, before the first WAL record, atomically (temp file, fsync,
//! rename, fsync of the directory). A member restarting reads it instead of
//! deriving ids from its flags, so flags that changed since (another token,
//! other URLs) cannot silently turn it into another member.
//!
//! ```text
//! 0         8             16             24            32
//! +---------+-------------+--------------+-------------+
//! | CAIRNID1| member u64  | cluster u64  | xxh3 of 0..24|
//! +---------+-------------+--------------+-------------+
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::state::Ids;

const MAGIC: &[u8; 8] = b"CAIRNID1";
const FILE_BYTES: usize = 32;

pub fn path(member_dir: &Path) -> PathBuf {
    member_dir.join("identity")
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: damaged member identity file ({why}); restore the member from a snapshot or remove it from the cluster and add it again", path.display())]
    Damaged { path: PathBuf, why: &'static str },
}

/// Reads the identity; `None` if the file does not exist.
pub fn read(member_dir: &Path) -> Result<Option<Ids>, IdentityError> {
    let path = path(member_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IdentityError::Io { path, source }),
    };
    let damaged = |why| IdentityError::Damaged {
        path: path.clone(),
        why,
    };
    if bytes.len() != FILE_BYTES {
        return Err(damaged("wrong size"));
    }
    if &bytes[..8] != MAGIC {
        return Err(damaged("bad magic"));
    }
    let u = |r: std::ops::Range<usize>| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&bytes[r]);
        u64::from_le_bytes(a)
    };
    if u(24..32) != xxhash_rust::xxh3::xxh3_64(&bytes[..24]) {
        return Err(damaged("checksum mismatch"));
    }
    Ok(Some(Ids {
        member_id: u(8..16),
        cluster_id: u(16..24),
    }))
}

/// Writes the identity durably (and atomically).
pub fn write(member_dir: &Path, ids: Ids) -> Result<(), IdentityError> {
    let path = path(member_dir);
    let tmp = member_dir.join("identity.tmp");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| IdentityError::Io { path: p, source }
    };
    let mut buf = Vec::with_capacity(FILE_BYTES);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&ids.member_id.to_le_bytes());
    buf.extend_from_slice(&ids.cluster_id.to_le_bytes());
    let sum = xxhash_rust::xxh3::xxh3_64(&buf);
    buf.extend_from_slice(&sum.to_le_bytes());
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&buf).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(member_dir)
        .and_then(|d| d.sync_all())
        .map_err(io(member_dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_damage_is_refused() {
        let dir = crate::testkit::test_dir("identity");
        assert!(read(&dir).unwrap().is_none());
        let ids = Ids {
            member_id: 0xabc,
            cluster_id: 0xdef,
        };
        write(&dir, ids).unwrap();
        assert_eq!(read(&dir).unwrap(), Some(ids));
        let p = path(&dir);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[9] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let e = read(&dir).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
