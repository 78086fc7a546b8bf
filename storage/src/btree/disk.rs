//! The I/O boundary of the page file. The tree never touches a file
//! directly: it calls a [`Disk`], so tests can run it over [`SimDisk`],
//! which remembers what was only written versus what was synced and can
//! cut the power at any step. [`FileDisk`] is the buffered fallback of
//! [`UringDisk`](super::UringDisk) (O_DIRECT through io_uring).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Positional, synchronous storage for one page file.
///
/// Contract: `write_at` and `write_pages` may be lost until the next
/// successful `sync`; after `sync` returns, every earlier write and `grow`
/// is durable.
pub trait Disk: Send + Sync + 'static {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `buf` at `offset` (inside the current length).
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Writes every `(offset, bytes)` of `writes` (each inside the current
    /// length, none overlapping), in any order or at once; returns when all
    /// were written. The page writer hands a commit's pages in one call, so
    /// a disk that can keep several writes in flight (io_uring) does.
    fn write_pages(&self, writes: &[(u64, &[u8])]) -> io::Result<()> {
        for &(offset, buf) in writes {
            self.write_at(offset, buf)?;
        }
        Ok(())
    }
    /// [`write_pages`](Disk::write_pages) for runs whose bytes are not
    /// made yet: `fill` gets one zeroed buffer that holds every run of
    /// `runs` (`(offset, len)`), one after another in that order, and
    /// writes their bytes into it. A disk with staging memory of its own
    /// (io_uring's, aligned for O_DIRECT) hands that, which saves the
    /// writer an allocation per run and a copy of every page.
    fn write_runs(&self, runs: &[(u64, usize)], fill: &mut dyn FnMut(&mut [u8])) -> io::Result<()> {
        let mut all = vec![0u8; runs.iter().map(|r| r.1).sum()];
        fill(&mut all);
        let mut rest = &all[..];
        let mut writes = Vec::with_capacity(runs.len());
        for &(offset, len) in runs {
            let (run, after) = rest.split_at(len);
            writes.push((offset, run));
            rest = after;
        }
        self.write_pages(&writes)
    }
    /// Makes every earlier write and grow durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Current length in bytes.
    fn len_bytes(&self) -> io::Result<u64>;
    /// Extends the file to `new_len_bytes` with written zeros.
    fn grow(&self, new_len_bytes: u64) -> io::Result<()>;
    /// How errors name this disk (the path for files).
    fn name(&self) -> String;
    /// Whether writes bypass the kernel's page cache (O_DIRECT).
    fn uses_direct_io(&self) -> bool {
        false
    }
}

/// A page file on a real file system: `pread`/`pwrite` and `fdatasync`.
///
/// Growth writes real zeros rather than `fallocate`: on ext4, writing into
/// an unwritten extent turns every later fdatasync into a journal commit
/// (see the WAL's write protocol in `storage/FORMAT.md`).
pub struct FileDisk {
    file: File,
    path: PathBuf,
}

impl FileDisk {
    /// Opens (creating if missing) the file at `path` for reading and
    /// writing.
    pub fn open(path: &Path) -> io::Result<FileDisk> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(FileDisk {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl Disk for FileDisk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn grow(&self, new_len_bytes: u64) -> io::Result<()> {
        const ZEROS_BYTES: usize = 1 << 20;
        let zeros = vec![0u8; ZEROS_BYTES];
        let mut at = self.len_bytes()?;
        while at < new_len_bytes {
            let n = (new_len_bytes - at).min(ZEROS_BYTES as u64) as usize;
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }
    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// How much of the unsynced work survives a power cut on a [`SimDisk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerCut {
    /// Nothing written since the last successful sync survives.
    LoseUnsynced,
    /// The first `ops` unsynced operations (writes and grows, in order)
    /// survive whole, and the first `torn_bytes` bytes of the next write.
    KeepPrefix {
        /// Unsynced operations that reached the medium whole.
        ops: usize,
        /// Bytes of the following write that reached it.
        torn_bytes: usize,
    },
    /// The unsynced operations whose bit is set in `mask` survive whole,
    /// the others are lost: the device reordered the writes.
    KeepSubset {
        /// Bit `i` = the `i`-th unsynced operation survives.
        mask: u64,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    Grow { len_bytes: u64 },
}

#[derive(Debug, Default)]
struct SimState {
    /// What reads see (the page cache of a real kernel).
    current: Vec<u8>,
    /// What is on the medium for sure.
    durable: Vec<u8>,
    /// Operations since the last successful sync, in order.
    unsynced: Vec<Op>,
    /// Mutating operations (write, grow, sync) so far.
    steps: u64,
    /// The mutating step that fails and cuts the power.
    fail_at_step: Option<u64>,
    power_off: bool,
}

/// A simulated disk for crash tests. Cloning gives another handle on the
/// same disk, so a test can keep one while the page file owns another.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    state: Arc<Mutex<SimState>>,
}

fn apply(img: &mut Vec<u8>, op: &Op, limit_bytes: usize) {
    match op {
        Op::Write { offset, data } => {
            let n = data.len().min(limit_bytes);
            let at = *offset as usize;
            if img.len() < at + n {
                // A reordered device kept this write but lost the grow.
                img.resize(at + n, 0);
            }
            img[at..at + n].copy_from_slice(&data[..n]);
        }
        Op::Grow { len_bytes } => {
            if (*len_bytes as usize) > img.len() {
                img.resize(*len_bytes as usize, 0);
            }
        }
    }
}

fn power_error() -> io::Error {
    io::Error::other("simulated power cut")
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// A disk whose durable content is `image`.
    pub fn from_image(image: Vec<u8>) -> SimDisk {
        let s = SimState {
            current: image.clone(),
            durable: image,
            ..SimState::default()
        };
        SimDisk {
            state: Arc::new(Mutex::new(s)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes mutating step `step` (writes, grows and syncs counted from 0)
    /// fail and cut the power: it and everything after it return an error.
    /// The failing write is recorded as in flight, so `KeepPrefix` can tear
    /// it.
    pub fn fail_at_step(&self, step: u64) {
        self.lock().fail_at_step = Some(step);
    }

    /// Mutating steps so far.
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }

    /// Whether the power was cut.
    pub fn is_power_off(&self) -> bool {
        self.lock().power_off
    }

    /// Unsynced operations now (for choosing a `KeepPrefix`).
    pub fn unsynced_ops(&self) -> usize {
        self.lock().unsynced.len()
    }

    /// A fresh disk holding what survives a power cut now.
    pub fn after_power_cut(&self, cut: PowerCut) -> SimDisk {
        let s = self.lock();
        let mut img = s.durable.clone();
        if let PowerCut::KeepPrefix { ops, torn_bytes } = cut {
            for op in s.unsynced.iter().take(ops) {
                apply(&mut img, op, usize::MAX);
            }
            if let Some(op) = s.unsynced.get(ops) {
                apply(&mut img, op, torn_bytes);
            }
        }
        if let PowerCut::KeepSubset { mask } = cut {
            for (i, op) in s.unsynced.iter().enumerate().take(64) {
                if mask & (1 << i) != 0 {
                    apply(&mut img, op, usize::MAX);
                }
            }
        }
        SimDisk::from_image(img)
    }

    /// The bytes reads see now.
    pub fn image(&self) -> Vec<u8> {
        self.lock().current.clone()
    }

    /// Flips bits of one byte, durably (a medium error).
    pub fn corrupt_byte(&self, offset: u64, xor: u8) {
        let mut s = self.lock();
        let at = offset as usize;
        s.current[at] ^= xor;
        if at < s.durable.len() {
            s.durable[at] ^= xor;
        }
    }

    /// Counts a mutating step; `Err` if the power is (now) off.
    fn step(s: &mut SimState, in_flight: Option<Op>) -> io::Result<()> {
        let step = s.steps;
        s.steps += 1;
        if s.power_off {
            return Err(power_error());
        }
        if s.fail_at_step == Some(step) {
            s.power_off = true;
            if let Some(op) = in_flight {
                s.unsynced.push(op);
            }
            return Err(power_error());
        }
        Ok(())
    }
}

impl Disk for SimDisk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let s = self.lock();
        let at = offset as usize;
        let src = s
            .current
            .get(at..at + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let mut s = self.lock();
        let op = Op::Write {
            offset,
            data: buf.to_vec(),
        };
        if offset as usize + buf.len() > s.current.len() {
            return Err(io::Error::other("simulated write past the end"));
        }
        SimDisk::step(&mut s, Some(op.clone()))?;
        apply(&mut s.current, &op, usize::MAX);
        s.unsynced.push(op);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        let mut s = self.lock();
        SimDisk::step(&mut s, None)?;
        s.durable = s.current.clone();
        s.unsynced.clear();
        Ok(())
    }
    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.lock().current.len() as u64)
    }
    fn grow(&self, new_len_bytes: u64) -> io::Result<()> {
        let mut s = self.lock();
        let op = Op::Grow {
            len_bytes: new_len_bytes,
        };
        SimDisk::step(&mut s, Some(op.clone()))?;
        apply(&mut s.current, &op, usize::MAX);
        s.unsynced.push(op);
        Ok(())
    }
    fn name(&self) -> String {
        "sim-disk".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_writes_are_lost_at_a_power_cut_and_synced_ones_are_not() {
        let d = SimDisk::new();
        d.grow(8).unwrap();
        d.write_at(0, b"abcd").unwrap();
        d.sync().unwrap();
        d.write_at(4, b"efgh").unwrap();
        assert_eq!(
            d.after_power_cut(PowerCut::LoseUnsynced).image(),
            b"abcd\0\0\0\0"
        );
        let torn = d.after_power_cut(PowerCut::KeepPrefix {
            ops: 0,
            torn_bytes: 2,
        });
        assert_eq!(torn.image(), b"abcdef\0\0");
    }

    #[test]
    fn the_failing_step_cuts_the_power_for_good() {
        let d = SimDisk::new();
        d.grow(8).unwrap();
        d.fail_at_step(2);
        d.write_at(0, b"x").unwrap();
        assert!(d.sync().is_err());
        assert!(d.write_at(0, b"y").is_err());
        assert!(d.is_power_off());
    }
}
