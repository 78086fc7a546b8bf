//! [`UringDisk`]: the page file opened with O_DIRECT, written through its
//! own io_uring.
//!
//! Writes bypass the kernel page cache (the engine caches node pages
//! itself), so a commit costs the device work and no copy: the writer
//! encodes its pages straight into the aligned staging memory
//! ([`Disk::write_runs`]), and the kernel keeps no second copy of every
//! page. Every write of one `write_runs` or [`Disk::write_pages`] call is
//! submitted at once (at most [`QUEUE_DEPTH`] in flight) and the call
//! returns when all completed.
//!
//! O_DIRECT asks that file offsets and lengths be multiples of the file
//! system's direct-I/O alignment (`statx` `STATX_DIOALIGN`, 4096 when the
//! kernel cannot tell) and buffers be aligned in memory. Writes come from
//! the page writer, whose pages are whole multiples of it (`Db::open_path`
//! refuses O_DIRECT otherwise); reads may be any range (the meta probing
//! reads 512 bytes at offset 0) and go through an aligned bounce buffer
//! covering the range.
//!
//! All `unsafe` of the page file lives in this file: the aligned buffer,
//! handing buffer addresses to the kernel, and three queries (`statx`,
//! `fstatfs`, `fcntl`) that fill memory we own.

use std::alloc::{self, Layout};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use io_uring::{opcode, types, IoUring, Probe};

use super::disk::Disk;

/// Operations in flight on the ring at most (and its size). A 1000-key
/// commit writes ~1000-1800 scattered runs; 256 in flight (the block
/// queue's depth here) committed ~13% faster than 64, 1024 no faster.
pub(crate) const QUEUE_DEPTH: u32 = 256;
/// The largest single read or write handed to the kernel; longer runs are
/// split (`len` of an SQE is a u32, and pieces this size keep the queue
/// busy on large overflow values).
const MAX_IO_BYTES: usize = 1 << 20;
/// Alignment of every buffer handed to the kernel.
const BUF_ALIGN_BYTES: usize = 4096;
/// The commit staging buffer is kept between calls up to this size; a
/// larger one (a huge value) is freed after its commit.
const KEEP_STAGING_BYTES: usize = 16 << 20;
/// Alignment assumed when the kernel does not report it (pre-6.1).
const DEFAULT_DIO_ALIGN_BYTES: u64 = 4096;
/// Consecutive `io_uring_enter` calls refused with EAGAIN/EBUSY/EINTR
/// before the ring is given up on.
const MAX_ENTER_RETRIES: u32 = 10_000;

/// Heap memory aligned to [`BUF_ALIGN_BYTES`], zeroed on allocation.
struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `AlignedBuf` owns its allocation exclusively, like a `Vec<u8>`.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    fn zeroed(len: usize) -> AlignedBuf {
        if len == 0 {
            return AlignedBuf {
                ptr: NonNull::dangling(),
                len: 0,
            };
        }
        let layout = Self::layout(len);
        // SAFETY: `layout` has a non-zero size (len > 0).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, len }
    }

    fn layout(len: usize) -> Layout {
        Layout::from_size_align(len, BUF_ALIGN_BYTES)
            .unwrap_or_else(|_| panic!("invariant: buffer of {len} bytes fits a Layout"))
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialised (zeroed) bytes, or
        // dangling and well aligned for `len == 0`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: allocated in `zeroed` with this very layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.len)) }
        }
    }
}

/// One read or write on the ring. The buffer it names is borrowed from the
/// caller of [`run`], which does not return before the kernel is done.
#[derive(Clone, Copy)]
struct Io {
    buf: *mut u8,
    file_offset: u64,
    len: usize,
    done: usize,
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.broken {
            // The kernel may still read the staging buffer: never free it.
            std::mem::forget(std::mem::replace(&mut self.staging, AlignedBuf::zeroed(0)));
        }
    }
}

struct Ring {
    uring: IoUring,
    /// Staging memory of `write_runs` and `write_pages`, reused between
    /// commits.
    staging: AlignedBuf,
    /// Set when the kernel's view of the ring can no longer be trusted
    /// (io_uring_enter failed hard): buffers were leaked, not freed, and
    /// every later call fails.
    broken: bool,
}

/// A page file opened with O_DIRECT; writes go through io_uring, reads
/// through `pread` into aligned memory. Open with [`UringDisk::open`].
pub struct UringDisk {
    file: File,
    /// A buffered descriptor of the same file for reads: the kernel's page
    /// cache sits behind the engine's own cache (a restart's scan and a
    /// cache miss cost a memory copy, not a device read) and sequential
    /// scans get readahead. Coherent with the direct writes: a direct
    /// write invalidates the cached pages of its range, and this
    /// descriptor never dirties a page.
    reader: File,
    path: PathBuf,
    /// Offsets and lengths of direct I/O must be multiples of this.
    offset_align_bytes: u64,
    /// Buffer addresses of direct I/O must be multiples of this.
    mem_align_bytes: usize,
    ring: Mutex<Ring>,
}

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, why)
}

fn with_context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl UringDisk {
    /// Opens (creating if missing) `path` with O_DIRECT and sets up a ring.
    ///
    /// Fails with [`io::ErrorKind::Unsupported`] and the reason when direct
    /// I/O through io_uring is not usable here: the file system refuses
    /// O_DIRECT (EINVAL) or is tmpfs, `io_uring_setup` fails (seccomp,
    /// ENOSYS, EPERM, memlock), or the kernel lacks IORING_OP_WRITE.
    pub fn open(path: &Path) -> io::Result<UringDisk> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_DIRECT | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EINVAL) => refused(format!("open with O_DIRECT failed: {e}")),
                _ => with_context(e, format!("opening {} with O_DIRECT", path.display())),
            })?;
        if !fd_has_o_direct(&file) {
            return Err(refused(
                "the kernel dropped O_DIRECT from the descriptor".into(),
            ));
        }
        if is_tmpfs(&file) {
            return Err(refused(
                "tmpfs: the file lives in the page cache, O_DIRECT only adds copies".into(),
            ));
        }
        let (offset_align_bytes, mem_align_bytes) = dio_alignment(&file)?;
        let uring = new_ring()?;
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| with_context(e, format!("opening {} for reading", path.display())))?;
        Ok(UringDisk {
            file,
            reader,
            path: path.to_path_buf(),
            offset_align_bytes,
            mem_align_bytes,
            ring: Mutex::new(Ring {
                uring,
                staging: AlignedBuf::zeroed(0),
                broken: false,
            }),
        })
    }

    /// File offsets and lengths of writes must be multiples of this (the
    /// file system's direct-I/O alignment).
    pub fn offset_align_bytes(&self) -> u64 {
        self.offset_align_bytes
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, Ring>> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.broken {
            return Err(io::Error::other("io_uring of the page file failed earlier"));
        }
        Ok(ring)
    }

    fn check_aligned(&self, offset: u64, len: usize) -> io::Result<()> {
        let a = self.offset_align_bytes;
        if !offset.is_multiple_of(a) || !(len as u64).is_multiple_of(a) {
            let why = format!("direct write of {len} bytes at {offset} is not {a}-byte aligned");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        Ok(())
    }

    fn align_down(&self, x: u64) -> u64 {
        x - x % self.offset_align_bytes
    }

    fn align_up(&self, x: u64) -> u64 {
        x.div_ceil(self.offset_align_bytes) * self.offset_align_bytes
    }

    /// `pread` of `[offset, offset + buf.len())` (aligned, into aligned
    /// memory) until full or end of file; returns the bytes read.
    /// A read through the O_DIRECT descriptor (bypassing the page cache),
    /// bounced through an aligned buffer when the range is not aligned.
    pub fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        let (lo, hi) = (self.align_down(offset), self.align_up(end));
        let direct = lo == offset && hi == end;
        if direct && (buf.as_ptr() as usize).is_multiple_of(self.mem_align_bytes) {
            if self.pread_direct(offset, buf)? < buf.len() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            return Ok(());
        }
        let mut bounce = AlignedBuf::zeroed((hi - lo) as usize);
        let got = self.pread_direct(lo, bounce.as_mut_slice())?;
        let skip = (offset - lo) as usize;
        if got < skip + buf.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.copy_from_slice(&bounce.as_slice()[skip..skip + buf.len()]);
        Ok(())
    }

    fn pread_direct(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                // An unaligned count is the end of the file (and the next
                // offset could not be read directly anyway).
                Ok(n) if !(n as u64).is_multiple_of(self.offset_align_bytes) => {
                    done += n;
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let what = format!("direct read of {} bytes at {offset}", buf.len());
                    return Err(with_context(e, what));
                }
            }
        }
        Ok(done)
    }

    /// Runs `ios` (all reading from memory that outlives the call) on the
    /// ring; returns once every one completed.
    fn write_all(&self, ring: &mut Ring, ios: &mut [Io]) -> io::Result<()> {
        let r = run(&mut ring.uring, self.file.as_raw_fd(), ios);
        if let Err(RunError::RingBroken(e)) = r {
            ring.broken = true;
            return Err(e);
        }
        r.map_err(|e| match e {
            RunError::Io(e) | RunError::RingBroken(e) => e,
        })
    }
}

/// Splits `[file_offset, +len)` at `buf` into pieces of at most
/// `MAX_IO_BYTES`.
fn push_pieces(ios: &mut Vec<Io>, buf: *mut u8, file_offset: u64, len: usize) {
    let mut at = 0;
    while at < len {
        let n = (len - at).min(MAX_IO_BYTES);
        ios.push(Io {
            // Stays inside the buffer: at < len.
            buf: buf.wrapping_add(at),
            file_offset: file_offset + at as u64,
            len: n,
            done: 0,
        });
        at += n;
    }
}

impl Disk for UringDisk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.reader.read_exact_at(buf, offset).map_err(|e| {
            let what = format!("read of {} bytes at {offset}", buf.len());
            with_context(e, what)
        })
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.write_pages(&[(offset, buf)])
    }

    /// Copies `writes` into the staging memory (one `write_runs`).
    fn write_pages(&self, writes: &[(u64, &[u8])]) -> io::Result<()> {
        let runs: Vec<(u64, usize)> = writes.iter().map(|&(o, d)| (o, d.len())).collect();
        self.write_runs(&runs, &mut |all: &mut [u8]| {
            let mut at = 0;
            for &(_, data) in writes {
                all[at..at + data.len()].copy_from_slice(data);
                at += data.len();
            }
        })
    }

    /// Fills the staging memory in place (zeroed first: it held the last
    /// commit), then submits every run from it.
    fn write_runs(&self, runs: &[(u64, usize)], fill: &mut dyn FnMut(&mut [u8])) -> io::Result<()> {
        let mut total = 0;
        for &(offset, len) in runs {
            self.check_aligned(offset, len)?;
            total += len;
        }
        let mut ring = self.lock()?;
        if ring.staging.len < total {
            ring.staging = AlignedBuf::zeroed(total.next_multiple_of(64 << 10));
        }
        let all = &mut ring.staging.as_mut_slice()[..total];
        all.fill(0);
        fill(all);
        // Addresses for the kernel come from the base pointer, not from the
        // slice above, which is gone before the kernel reads.
        let base = ring.staging.ptr.as_ptr();
        let mut ios = Vec::with_capacity(runs.len());
        let mut at = 0;
        for &(offset, len) in runs {
            push_pieces(&mut ios, base.wrapping_add(at), offset, len);
            at += len;
        }
        let r = self.write_all(&mut ring, &mut ios);
        if !ring.broken && ring.staging.len > KEEP_STAGING_BYTES {
            ring.staging = AlignedBuf::zeroed(0);
        }
        r
    }

    /// fdatasync(2) rather than IORING_OP_FSYNC: the writes it orders have
    /// all completed (their CQEs were reaped), so a flush is all that is
    /// left, and the ring would only hand a blocking fsync to an io-wq
    /// worker thread while this thread waits for it anyway.
    fn sync(&self) -> io::Result<()> {
        self.file
            .sync_data()
            .map_err(|e| with_context(e, "fdatasync".into()))
    }

    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Writes zeros from the current end (rounded down to the alignment,
    /// keeping the bytes before the end) up to `new_len_bytes` rounded up
    /// to the alignment: the file may end up longer than asked, never
    /// shorter, which the page file does not mind.
    fn grow(&self, new_len_bytes: u64) -> io::Result<()> {
        let len = self.len_bytes()?;
        if new_len_bytes <= len {
            return Ok(());
        }
        let (start, end) = (self.align_down(len), self.align_up(new_len_bytes));
        let mut head = AlignedBuf::zeroed(self.offset_align_bytes as usize);
        if start < len {
            // An unaligned end (a file grown by another disk): rewrite the
            // block holding it with its old bytes and zeros after them.
            self.pread_direct(start, head.as_mut_slice())?;
            head.as_mut_slice()[(len - start) as usize..].fill(0);
        }
        let zeros_len = ((end - start) as usize).min(MAX_IO_BYTES);
        let zeros = AlignedBuf::zeroed(zeros_len);
        let mut ios = Vec::new();
        let mut at = start;
        if start < len {
            push_pieces(&mut ios, head.ptr.as_ptr(), start, head.len);
            at += head.len as u64;
        }
        while at < end {
            let n = ((end - at) as usize).min(zeros.len);
            // The kernel only reads the zeros: sharing one buffer between
            // several writes in flight is fine.
            push_pieces(&mut ios, zeros.ptr.as_ptr(), at, n);
            at += n as u64;
        }
        let mut ring = self.lock()?;
        let r = self.write_all(&mut ring, &mut ios);
        if ring.broken {
            // The kernel may still read them (see `Ring::broken`).
            std::mem::forget(head);
            std::mem::forget(zeros);
        }
        r.map_err(|e| with_context(e, format!("growing to {end} bytes")))
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn uses_direct_io(&self) -> bool {
        true
    }
}

enum RunError {
    /// One operation failed; the ring is fine.
    Io(io::Error),
    /// `io_uring_enter` failed: which operations the kernel holds is
    /// unknown.
    RingBroken(io::Error),
}

fn is_retryable(errno: i32) -> bool {
    errno == libc::EAGAIN || errno == libc::EINTR
}

/// Submits every `Io` (at most `QUEUE_DEPTH` in flight), resubmitting the
/// rest of short writes and of writes refused with EAGAIN/EINTR, and waits
/// for all. Once one fails, no new one is started, but the call still waits
/// for those in flight: it never returns while the kernel may touch a
/// buffer, except when the ring itself fails: then the callers leak the
/// buffers instead of freeing them (see `Ring::broken`).
fn run(uring: &mut IoUring, fd: i32, ios: &mut [Io]) -> Result<(), RunError> {
    let mut next = 0;
    let mut again: Vec<usize> = Vec::new();
    let mut in_flight = 0usize;
    let mut failed: Option<io::Error> = None;
    let mut retries = 0;
    loop {
        while failed.is_none() && in_flight < QUEUE_DEPTH as usize {
            let i = match again.pop() {
                Some(i) => i,
                None if next < ios.len() => {
                    next += 1;
                    next - 1
                }
                None => break,
            };
            let io = ios[i];
            let rest = (io.len - io.done) as u32; // <= MAX_IO_BYTES
            let sqe = opcode::Write::new(types::Fd(fd), io.buf.wrapping_add(io.done), rest)
                .offset(io.file_offset + io.done as u64)
                .build()
                .user_data(i as u64);
            // SAFETY: the buffer is valid for `rest` bytes past `done` and
            // outlives the operation: the caller keeps it until `run`
            // returns, which is after its completion, or leaks it.
            if unsafe { uring.submission().push(&sqe) }.is_err() {
                // Cannot happen: the ring has QUEUE_DEPTH slots and at most
                // that many are in flight. Retry after the next reaping.
                again.push(i);
                break;
            }
            in_flight += 1;
        }
        if in_flight == 0 {
            return failed.map_or(Ok(()), |e| Err(RunError::Io(e)));
        }
        match uring.submit_and_wait(1) {
            Ok(_) => retries = 0,
            Err(e) => {
                let transient = matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN | libc::EBUSY | libc::EINTR)
                );
                retries += 1;
                if !transient || retries > MAX_ENTER_RETRIES {
                    let e = with_context(e, "io_uring_enter".into());
                    return Err(RunError::RingBroken(e));
                }
            }
        }
        in_flight -= reap(uring, ios, &mut again, &mut failed);
    }
}

/// Takes every completion off the ring: finished writes are done, short or
/// EAGAIN/EINTR ones go to `again`, the first other error to `failed`.
/// Returns how many completed.
fn reap(
    uring: &mut IoUring,
    ios: &mut [Io],
    again: &mut Vec<usize>,
    failed: &mut Option<io::Error>,
) -> usize {
    let mut reaped = 0;
    for cqe in uring.completion() {
        reaped += 1;
        let i = cqe.user_data() as usize;
        let res = cqe.result();
        let io = &mut ios[i];
        if res < 0 && is_retryable(-res) {
            again.push(i);
        } else if res <= 0 {
            let e = match res {
                0 => io::Error::from(io::ErrorKind::WriteZero),
                _ => io::Error::from_raw_os_error(-res),
            };
            let what = format!("direct write of {} bytes at {}", io.len, io.file_offset);
            failed.get_or_insert(with_context(e, what));
        } else {
            io.done += res as usize;
            if io.done < io.len {
                again.push(i);
            }
        }
    }
    reaped
}

fn new_ring() -> io::Result<IoUring> {
    let uring =
        IoUring::new(QUEUE_DEPTH).map_err(|e| refused(format!("io_uring_setup failed: {e}")))?;
    let mut probe = Probe::new();
    uring
        .submitter()
        .register_probe(&mut probe)
        .map_err(|e| refused(format!("io_uring probe failed: {e}")))?;
    if !probe.is_supported(opcode::Write::CODE) {
        return Err(refused(
            "the kernel's io_uring lacks IORING_OP_WRITE".into(),
        ));
    }
    Ok(uring)
}

/// True if the kernel reports O_DIRECT on the descriptor.
fn fd_has_o_direct(file: &File) -> bool {
    // SAFETY: F_GETFL only reads the status flags of a descriptor we own.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    flags >= 0 && flags & libc::O_DIRECT != 0
}

fn is_tmpfs(file: &File) -> bool {
    // SAFETY: `statfs` is plain old data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes one `statfs` into `st`, which we own.
    let r = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) };
    r == 0 && st.f_type == libc::TMPFS_MAGIC
}

/// (offset and length alignment, memory alignment) of direct I/O on
/// `file`, from `statx(STATX_DIOALIGN)` (Linux 6.1+), else 4096 for both.
fn dio_alignment(file: &File) -> io::Result<(u64, usize)> {
    // SAFETY: `statx` is plain old data; all-zero is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: with AT_EMPTY_PATH and an empty C string, statx describes
    // the descriptor and writes one `statx` into `stx`, which we own.
    let r = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    if r != 0 || stx.stx_mask & libc::STATX_DIOALIGN == 0 {
        let d = DEFAULT_DIO_ALIGN_BYTES;
        return Ok((d, d as usize));
    }
    let (offset, mem) = (stx.stx_dio_offset_align, stx.stx_dio_mem_align);
    if offset == 0 || mem == 0 {
        return Err(refused(
            "the file system does not support O_DIRECT here".into(),
        ));
    }
    if !offset.is_power_of_two() || !mem.is_power_of_two() || mem as usize > BUF_ALIGN_BYTES {
        let why = format!("unusual O_DIRECT alignment: offsets {offset}, memory {mem}");
        return Err(refused(why));
    }
    Ok((u64::from(offset), mem as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffers_are_aligned_and_zeroed() {
        for len in [1, 512, 4096, 5000, 1 << 20] {
            let b = AlignedBuf::zeroed(len);
            assert_eq!(b.ptr.as_ptr() as usize % BUF_ALIGN_BYTES, 0);
            assert!(b.as_slice().iter().all(|&x| x == 0));
        }
        assert!(AlignedBuf::zeroed(0).as_slice().is_empty());
    }

    #[test]
    fn pieces_cover_a_run_in_bounded_ios() {
        let mut ios = Vec::new();
        let base = NonNull::<u8>::dangling().as_ptr();
        push_pieces(&mut ios, base, 8192, 2 * MAX_IO_BYTES + 4096);
        assert_eq!(ios.len(), 3);
        assert_eq!(ios[2].file_offset, 8192 + 2 * MAX_IO_BYTES as u64);
        assert_eq!(ios[2].len, 4096);
        assert_eq!(
            ios.iter().map(|io| io.len).sum::<usize>(),
            2 * MAX_IO_BYTES + 4096
        );
    }
}
