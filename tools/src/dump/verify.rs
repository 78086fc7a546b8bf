//! `cairn-dump verify PATH` of a WAL: check every checksum of a WAL
//! directory with the same scan the server runs at start
//! (`cairn_storage::wal::verify`), without writing a byte. Page files and
//! snapshots: module `verify_db`.
//!
//! Exit codes: 0 intact (a torn tail, which the server repairs at start, is
//! a warning), 1 damaged (or a torn tail with `--strict`, or unreadable),
//! 2 bad usage (see [`super`]).

use std::io::Write;
use std::path::Path;

use cairn_storage::wal::{self, SegmentReport, TornTail, VerifyReport, WalError, WalOptions};

use super::target::Origin;
use super::{DAMAGED, OK};

/// Verifies the WAL in `dir` (reached as `from`) and prints the report.
pub(crate) fn run(
    dir: &Path,
    from: &Origin,
    strict: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    // The checks do not depend on the options the server ran with: sizes
    // come from each segment's header.
    let opts = WalOptions::default();
    let mut intact_records = 0u64;
    let result = wal::verify_each(dir, &opts, |_, _| intact_records += 1);
    // Output errors (a closed pipe) must not change the verdict.
    let _ = print_origin(dir, from, out);
    match result {
        Ok(report) => {
            let _ = print_report(&report, out);
            let code = match &report.torn_tail {
                Some(torn) => torn_tail(torn, strict, err),
                None => OK,
            };
            let verdict = match (&report.torn_tail, code) {
                (None, _) => "OK",
                (Some(_), OK) => "OK (torn tail: see warning)",
                (Some(_), _) => "FAILED (torn tail, --strict)",
            };
            let _ = writeln!(out, "{}: {verdict}", summary(&report));
            code
        }
        Err(e) => {
            let _ = writeln!(err, "cairn-dump: {e}");
            if matches!(e, WalError::Corrupt { .. }) {
                let _ = writeln!(
                    err,
                    "cairn-dump: {intact_records} records check out before the damage; \
                     the server refuses to start on this WAL"
                );
            }
            let _ = writeln!(out, "FAILED");
            DAMAGED
        }
    }
}

fn print_origin(dir: &Path, from: &Origin, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "WAL directory {}", dir.display())?;
    if let Origin::Segment { path, .. } = from {
        writeln!(
            out,
            "(checking the whole log that holds {}: a segment is only valid in its log)",
            path.display()
        )?;
    }
    Ok(())
}

fn print_report(report: &VerifyReport, out: &mut dyn Write) -> std::io::Result<()> {
    for s in &report.segments {
        writeln!(out, "  {}", segment_line(s))?;
    }
    if !report.tmp_files.is_empty() {
        writeln!(
            out,
            "  {} unfinished *.wal.tmp file(s) (a next segment being prepared; removed at start)",
            report.tmp_files.len()
        )?;
    }
    Ok(())
}

fn segment_line(s: &SegmentReport) -> String {
    let name = s.path.file_name().unwrap_or(s.path.as_os_str());
    format!(
        "{}  seq={} first_index={} batches={} records={} data_bytes={} size_bytes={}",
        name.to_string_lossy(),
        s.seq,
        s.first_index,
        s.batch_count,
        s.record_count,
        s.data_bytes,
        s.size_bytes
    )
}

/// `2 segments, 8 records (7 entries), index 1..7`.
pub(crate) fn summary(report: &VerifyReport) -> String {
    let index = match (report.first_index, report.last_index) {
        (Some(first), Some(last)) => format!("index {first}..{last}"),
        _ => "no entries".to_string(),
    };
    format!(
        "{}, {} ({}), {index}",
        count(report.segments.len() as u64, "segment"),
        count(report.record_count, "record"),
        count(report.entry_count, "entry")
    )
}

/// `1 segment`, `2 segments`, `0 entries`.
fn count(n: u64, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}

/// Warns of a torn tail; returns the exit code it implies.
pub(crate) fn torn_tail(torn: &TornTail, strict: bool, err: &mut dyn Write) -> i32 {
    let _ = writeln!(
        err,
        "cairn-dump: warning: torn tail in {} at offset {}: {} \
         (a batch in flight at a crash, never acknowledged; \
         the server zeroes {} bytes there at start)",
        torn.path.display(),
        torn.offset,
        torn.reason,
        torn.zeroed_bytes
    );
    if strict {
        let _ = writeln!(err, "cairn-dump: error: torn tail (--strict)");
        DAMAGED
    } else {
        OK
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn summary_names_segments_records_and_index_range() {
        let mut r = VerifyReport::default();
        assert_eq!(summary(&r), "0 segments, 0 records (0 entries), no entries");
        r.segments.push(SegmentReport {
            path: PathBuf::from("/d/0000000000000000-0000000000000000.wal"),
            seq: 0,
            first_index: 0,
            size_bytes: 1 << 20,
            data_bytes: 8192,
            batch_count: 2,
            record_count: 8,
        });
        r.record_count = 8;
        r.entry_count = 7;
        r.first_index = Some(1);
        r.last_index = Some(7);
        assert_eq!(summary(&r), "1 segment, 8 records (7 entries), index 1..7");
        assert_eq!(
            segment_line(&r.segments[0]),
            "0000000000000000-0000000000000000.wal  seq=0 first_index=0 batches=2 records=8 \
             data_bytes=8192 size_bytes=1048576"
        );
    }

    #[test]
    fn torn_tail_is_a_warning_unless_strict() {
        let torn = TornTail {
            path: PathBuf::from("/d/s.wal"),
            offset: 8192,
            zeroed_bytes: 4096,
            reason: "no batch header (bad magic)".into(),
        };
        let mut err = Vec::new();
        assert_eq!(torn_tail(&torn, false, &mut err), OK);
        let text = String::from_utf8(err).unwrap();
        assert!(
            text.contains("warning: torn tail in /d/s.wal at offset 8192"),
            "{text}"
        );
        let mut err = Vec::new();
        assert_eq!(torn_tail(&torn, true, &mut err), DAMAGED);
    }
}
