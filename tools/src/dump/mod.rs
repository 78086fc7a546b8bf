//! `cairn-dump`: offline inspection and verification of a node's files.
//! It only reads: run it on a stopped node's data dir, or on a copy.
//!
//! ```text
//! cairn-dump verify PATH [--strict]
//! cairn-dump wal PATH [--from INDEX] [--limit N] [--json]
//! cairn-dump db PATH [--keyspace NAME] [--limit N] [--json]
//! ```
//!
//! PATH may be a data dir (its `member/wal` and `member/db` are read), a
//! member dir, a WAL directory, one WAL segment file (the log holding it is
//! read), a page file (`member/db` or a copy) or a snapshot file; the kind
//! is detected from the layout and the file's bytes (module `target`).
//!
//! * `verify` checks without writing. A WAL: the scan the server runs at
//!   start (every batch and record checksum, index continuity, segment
//!   chaining), one line per segment and a summary; a torn tail (the batch
//!   in flight at a crash, which the server zeroes at start) is a warning.
//!   A page file: every reachable page (`Db::verify`) and the node's layout
//!   on top (module `verify_db`); a snapshot: its trailer and image hash
//!   first. A data dir or member dir: its WAL, then its `member/db` if any.
//! * `wal` prints the records one per line, Entry data decoded as the
//!   client request it holds (module `request`).
//! * `db` prints a page file's (or snapshot's) meta entries and history
//!   records decoded (module `db`).
//!
//! Exit codes: [`OK`] intact; [`DAMAGED`] corruption (the error names the
//! file and the byte offset or page), an unreadable file, or a torn tail
//! with `verify --strict`; [`USAGE`] bad arguments, a missing or
//! unrecognised path, or a path of the wrong kind for the subcommand.
//! Errors go to stderr.
//!
//! ```
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let code = cairn_tools::dump::run(["cairn-dump", "verify", "/no/such/dir"], &mut out, &mut err);
//! assert_eq!(code, cairn_tools::dump::USAGE);
//! assert!(String::from_utf8(err).unwrap().contains("no such file or directory"));
//! ```

mod db;
mod escape;
pub(crate) mod pagefile;
mod records;
mod request;
mod target;
mod verify;
mod verify_db;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use target::{Origin, Target};

/// Exit code: everything checked out.
pub const OK: i32 = 0;
/// Exit code: damage found (or a torn tail under `--strict`), or a file
/// could not be read.
pub const DAMAGED: i32 = 1;
/// Exit code: bad usage: arguments, a missing or unrecognised path, or a
/// path of the wrong kind for the subcommand.
pub const USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "cairn-dump",
    version,
    about = "Offline inspection and verification of Cairn data files (read only)",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every checksum of a WAL, page file or snapshot; exit 0 if
    /// intact, 1 if damaged.
    ///
    /// PATH: a data dir or member dir (its WAL and page file), a WAL
    /// directory or segment, a page file (member/db) or a snapshot. A torn
    /// WAL tail (which the server repairs at start) is a warning.
    Verify {
        /// Data dir, member dir, WAL directory, WAL segment, page file or
        /// snapshot.
        path: PathBuf,
        /// Treat a torn tail as damage (exit 1).
        #[arg(long)]
        strict: bool,
    },
    /// Print WAL records one per line, with Entry requests decoded.
    Wal {
        /// Data dir, member dir, WAL directory or WAL segment file (then
        /// only that segment's records).
        path: PathBuf,
        /// Start at the Entry record with this index.
        #[arg(long, value_name = "INDEX")]
        from: Option<u64>,
        /// Print at most N records.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print a page file's meta entries and history records, decoded.
    Db {
        /// Page file (member/db), snapshot, data dir or member dir.
        path: PathBuf,
        /// Only this keyspace ("meta", "key", ...).
        #[arg(long, value_name = "NAME")]
        keyspace: Option<String>,
        /// Print at most N entries of each keyspace.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `cairn-dump` with the process's arguments and stdio; returns the
/// exit code.
pub fn main() -> i32 {
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    run(std::env::args_os(), &mut stdout.lock(), &mut stderr.lock())
}

/// Runs `cairn-dump` with `args` (the first is the program name).
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors: stdout, exit 0.
            return if e.use_stderr() {
                let _ = write!(err, "{}", e.render());
                USAGE
            } else {
                let _ = write!(out, "{}", e.render());
                OK
            };
        }
    };
    match cli.command {
        Command::Verify { path, strict } => verify_any(&path, strict, out, err),
        Command::Wal {
            path,
            from,
            limit,
            json,
        } => match wal_target(&path, err) {
            Ok((dir, origin)) => {
                let sel = records::Selection {
                    from_index: from,
                    limit,
                    json,
                };
                records::run(&dir, &origin, &sel, out, err)
            }
            Err(code) => code,
        },
        Command::Db {
            path,
            keyspace,
            limit,
            json,
        } => {
            let sel = db::Selection {
                keyspace,
                limit,
                json,
            };
            let opened = match db_target(&path) {
                Ok(Target::Snapshot(p)) => pagefile::open_snapshot(&p, false),
                Ok(Target::PageFile(p)) => pagefile::open_page_file(&p),
                Ok(Target::Wal { .. }) => {
                    let msg = format!(
                        "{}: a WAL, not a page file (list it with `cairn-dump wal`)",
                        path.display()
                    );
                    return usage(err, msg);
                }
                Err(msg) => return usage(err, msg),
            };
            match opened {
                Ok(img) => db::run(&img, &sel, out, err),
                Err(e) => {
                    let _ = writeln!(err, "cairn-dump: {e}");
                    DAMAGED
                }
            }
        }
    }
}

fn usage(err: &mut dyn Write, msg: String) -> i32 {
    let _ = writeln!(err, "cairn-dump: {msg}");
    USAGE
}

/// `verify PATH`: a WAL (and the page file beside it, from a data or
/// member dir), a page file or a snapshot.
fn verify_any(path: &Path, strict: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match target::detect(path) {
        Ok(Target::Wal { dir, from }) => {
            let code = verify::run(&dir, &from, strict, out, err);
            let db = match from {
                Origin::DataDir | Origin::MemberDir => dir.parent().map(|m| m.join("db")),
                Origin::WalDir | Origin::Segment { .. } => None,
            };
            match db.filter(|db| db.is_file()) {
                Some(db) => code.max(verify_db::run_page_file(&db, out, err)),
                None => code,
            }
        }
        Ok(Target::PageFile(p)) => verify_db::run_page_file(&p, out, err),
        Ok(Target::Snapshot(p)) => verify_db::run_snapshot(&p, out, err),
        Err(e) => usage(err, e.to_string()),
    }
}

/// The page file or snapshot `path` leads to: a file as detected, a data
/// dir's `member/db`, a member dir's `db`.
fn db_target(path: &Path) -> Result<Target, String> {
    if path.is_dir() {
        return [path.join("member").join("db"), path.join("db")]
            .into_iter()
            .find(|p| p.is_file())
            .map(Target::PageFile)
            .ok_or_else(|| {
                format!(
                    "{}: no page file here (neither member/db nor db)",
                    path.display()
                )
            });
    }
    target::detect(path).map_err(|e| e.to_string())
}

/// The WAL directory `path` leads to, or the exit code after an error
/// message on `err`.
fn wal_target(path: &Path, err: &mut dyn Write) -> Result<(PathBuf, Origin), i32> {
    let kind = match target::detect(path) {
        Ok(Target::Wal { dir, from }) => return Ok((dir, from)),
        Ok(Target::PageFile(_)) => "a page file",
        Ok(Target::Snapshot(_)) => "a snapshot",
        Err(e) => return Err(usage(err, e.to_string())),
    };
    let msg = format!(
        "{}: {kind}, not a WAL (list it with `cairn-dump db`)",
        path.display()
    );
    Err(usage(err, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut all = vec!["cairn-dump"];
        all.extend_from_slice(args);
        let code = run(all, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn bad_arguments_exit_2_and_help_exits_0() {
        assert_eq!(run_args(&[]).0, USAGE);
        assert_eq!(run_args(&["frobnicate", "x"]).0, USAGE);
        assert_eq!(run_args(&["wal", "x", "--limit", "many"]).0, USAGE);
        let (code, out, _) = run_args(&["--help"]);
        assert_eq!(code, OK);
        assert!(out.contains("verify") && out.contains("wal"), "{out}");
    }

    #[test]
    fn missing_path_exits_2_with_a_clear_message() {
        let (code, _, err) = run_args(&["verify", "/definitely/not/here"]);
        assert_eq!(code, USAGE);
        assert_eq!(
            err,
            "cairn-dump: /definitely/not/here: no such file or directory\n"
        );
    }

    #[test]
    fn a_page_file_is_not_a_wal_and_junk_named_db_is_damage() {
        let dir = std::env::temp_dir().join(format!("cairn-dump-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("db");
        std::fs::write(&db, b"page file").unwrap();
        let (wal_code, _, wal_err) = run_args(&["wal", db.to_str().unwrap()]);
        let (code, out, err) = run_args(&["verify", db.to_str().unwrap()]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(wal_code, USAGE);
        assert!(wal_err.contains("a page file, not a WAL"), "{wal_err}");
        assert_eq!(code, DAMAGED);
        assert!(
            out.starts_with("page file ") && out.ends_with("FAILED\n"),
            "{out}"
        );
        assert!(err.contains("has no valid meta page"), "{err}");
    }
}
