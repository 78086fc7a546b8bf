//! `cairn-dump verify` of a page file (`member/db`) or a snapshot: every
//! page reachable from the newest version is read and checked
//! (`Db::verify`: checksums, structure, key order, freelist), then the
//! node's layout on top of it: the meta entries decode, every history
//! record decodes. A snapshot's trailer and image hash are checked first.
//!
//! ```text
//! snapshot /backups/b.snap
//!   trailer: image_len=40960 hash=0123456789abcdef file_len=41000
//!   applied_index=12 current_revision=10 compact_revision=-1 layout_version=1
//!   txn_id=1 page_size=4096 pages=10 reachable=10 free=0
//!   keyspace "key": entries=7 pages=1 key_bytes=98 value_bytes=210
//!   keyspace "meta": entries=4 pages=1 key_bytes=51 value_bytes=28
//! txn 1, 10 pages (10 reachable, 0 free), 2 keyspaces, 11 entries, revision 10: OK
//! ```
//!
//! Damage ends the report with `FAILED` on stdout, the error (naming the
//! file, and the page and its byte offset where one is to blame) on stderr,
//! and exit code [`DAMAGED`].

use std::io::Write;
use std::path::Path;

use cairn_storage::btree::{BtreeError, ReadTxn};
use cairn_storage::layout;

use super::pagefile::{self, Image, MetaSummary, OpenError, Source};
use super::{DAMAGED, OK};

/// Verifies the page file at `path`.
pub(crate) fn run_page_file(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let _ = writeln!(out, "page file {}", path.display());
    finish(pagefile::open_page_file(path), out, err)
}

/// Verifies the snapshot at `path`: trailer, image hash, then its image.
pub(crate) fn run_snapshot(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let _ = writeln!(out, "snapshot {}", path.display());
    finish(pagefile::open_snapshot(path, true), out, err)
}

fn finish(opened: Result<Image, OpenError>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // Output errors (a closed pipe) must not change the verdict.
    let result = opened
        .map_err(|e| e.to_string())
        .and_then(|img| verify(&img, out));
    match result {
        Ok(summary) => {
            let _ = writeln!(out, "{summary}: OK");
            OK
        }
        Err(e) => {
            let _ = writeln!(err, "cairn-dump: {e}");
            let _ = writeln!(out, "FAILED");
            DAMAGED
        }
    }
}

/// Checks an opened image and prints its report; returns the summary line.
fn verify(img: &Image, out: &mut dyn Write) -> Result<String, String> {
    if let Source::Snapshot(info) = img.source {
        let _ = writeln!(
            out,
            "  trailer: image_len={} hash={:016x} file_len={}",
            info.image_len_bytes, info.hash, info.file_len_bytes
        );
    }
    let page_size = img.db.stats().page_size_bytes;
    let report = img.db.verify().map_err(|e| with_offset(e, page_size))?;
    let r = img.db.begin_read().map_err(|e| with_offset(e, page_size))?;
    let meta = MetaSummary::read(&r).map_err(|e| format!("{}: {e}", img.path.display()))?;
    let _ = writeln!(out, "  {}", meta.line());
    let _ = writeln!(
        out,
        "  txn_id={} page_size={} pages={} reachable={} free={}",
        report.txn_id,
        report.page_size_bytes,
        report.page_count,
        report.reachable_pages,
        report.free_pages
    );
    let mut entries = 0u64;
    for ks in &report.keyspaces {
        entries += ks.entries;
        let _ = writeln!(
            out,
            "  keyspace {:?}: entries={} pages={} key_bytes={} value_bytes={}",
            ks.name, ks.entries, ks.pages, ks.key_bytes, ks.value_bytes
        );
    }
    check_layout(&r, page_size).map_err(|e| format!("{}: {e}", img.path.display()))?;
    let revision = meta
        .current_revision
        .map_or_else(String::new, |rev| format!(", revision {rev}"));
    Ok(format!(
        "txn {}, {} pages ({} reachable, {} free), {} keyspaces, {entries} entries{revision}",
        report.txn_id,
        report.page_count,
        report.reachable_pages,
        report.free_pages,
        report.keyspaces.len()
    ))
}

/// The error, with the byte offset of the page it blames.
fn with_offset(e: BtreeError, page_size_bytes: u32) -> String {
    match &e {
        BtreeError::Corrupt { page, .. } => format!(
            "{e} (page {page} starts at byte offset {})",
            page.saturating_mul(u64::from(page_size_bytes))
        ),
        _ => e.to_string(),
    }
}

/// The node's layout on top of the pages: the alarm list decodes (the
/// other meta entries were decoded for the summary) and so does every
/// history record.
fn check_layout(r: &ReadTxn, page_size_bytes: u32) -> Result<(), String> {
    let keyspaces = r.keyspaces().map_err(|e| with_offset(e, page_size_bytes))?;
    let has = |name: &str| keyspaces.iter().any(|k| k == name);
    if has(layout::KEYSPACE_META) {
        let alarms = r
            .get(layout::KEYSPACE_META, layout::META_ALARMS)
            .map_err(|e| with_offset(e, page_size_bytes))?;
        if alarms.is_some_and(|a| layout::decode_alarms(&a).is_none()) {
            return Err("meta entry alarms: length is not a multiple of 9".into());
        }
    }
    if !has(layout::KEYSPACE_KEY) {
        return Ok(());
    }
    let range = r
        .range(layout::KEYSPACE_KEY, ..)
        .map_err(|e| with_offset(e, page_size_bytes))?;
    for (n, entry) in range.enumerate() {
        let (k, v) = entry.map_err(|e| with_offset(e, page_size_bytes))?;
        if let Err(line) = pagefile::history_text(&k, &v) {
            return Err(format!("history record #{n} does not decode: {line}"));
        }
    }
    Ok(())
}
