//! What the profiler asks the operating system about the directory and the
//! file before it measures anything: the file system type (tmpfs is
//! refused), the free space (the preallocated file must fit), whether
//! O_DIRECT really applies to a descriptor, and which device sits under the
//! directory. The only `unsafe` of `cairn-fsync` (three libc queries) lives
//! here.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::bench::runfile::{device_model, mount_of};

/// The file system and device under the profiled directory, as far as
/// /proc/mounts and sysfs tell (a fingerprint for the report, not a check).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DeviceInfo {
    pub fs: Option<String>,
    pub device: Option<String>,
    pub device_model: Option<String>,
    pub free_bytes: u64,
}

impl DeviceInfo {
    /// Looks the directory up; missing pieces stay `None`.
    pub fn of_dir(dir: &Path, free_bytes: u64) -> DeviceInfo {
        let (fs, device) = match mount_of(dir) {
            Some((fs, dev)) => (Some(fs), Some(dev)),
            None => (None, None),
        };
        DeviceInfo {
            device_model: device.as_deref().and_then(device_model),
            fs,
            device,
            free_bytes,
        }
    }

    /// The file system's name for messages ("ext4", or "an unknown file
    /// system").
    pub fn fs_name(&self) -> String {
        self.fs
            .clone()
            .unwrap_or_else(|| "an unknown file system".to_string())
    }
}

fn c_path(dir: &Path) -> std::io::Result<CString> {
    CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has a NUL byte"))
}

/// True if `dir` is on tmpfs.
pub fn is_tmpfs(dir: &Path) -> std::io::Result<bool> {
    let c = c_path(dir)?;
    // SAFETY: statfs writes into the zeroed struct we own; c is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_type as i64 == libc::TMPFS_MAGIC)
}

/// Bytes an unprivileged process may still allocate on the file system of
/// `dir` (statvfs: available blocks × fragment size).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let c = c_path(dir)?;
    // SAFETY: statvfs writes into the zeroed struct we own; c is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// True if the kernel reports O_DIRECT on the descriptor (glommio opens
/// without it, silently, on file systems it knows lack it).
pub fn fd_has_o_direct(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL only reads the status flags of a descriptor we own; it
    // touches no memory of ours.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    flags >= 0 && flags & libc::O_DIRECT != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_directory_has_free_space_and_a_file_system_name() {
        let dir = std::env::temp_dir();
        assert!(free_bytes(&dir).unwrap() > 0);
        let info = DeviceInfo::of_dir(&dir, 1);
        assert!(info.fs.is_some(), "{info:?}");
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_zero() {
        let missing = Path::new("/nonexistent-cairn-fsync-dir");
        assert!(free_bytes(missing).is_err());
        assert!(is_tmpfs(missing).is_err());
    }
}
