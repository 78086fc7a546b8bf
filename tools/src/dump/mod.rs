//! `cairn-dump`: offline inspection and verification of a node's files.
//! It only reads: run it on a stopped node's data dir, or on a copy.
//!
//! ```text
//! cairn-dump verify PATH [--strict]
//! cairn-dump wal PATH [--from INDEX] [--limit N] [--json]
//! ```
//!
//! PATH may be a data dir (its `member/wal` is read), a member dir, a WAL
//! directory or one WAL segment file (the log holding it is read); the kind
//! is detected from the layout and the file magic (module `target`). Page files
//! (`member/db`) and snapshot files are recognised and answered with "not
//! yet supported" until the page file lands.
//!
//! * `verify` runs the scan the server runs at start, without writing:
//!   every batch and record checksum, index continuity, segment chaining.
//!   It prints one line per segment and a summary. A torn tail (the batch
//!   in flight at a crash, which the server zeroes at start) is a warning.
//! * `wal` prints the records one per line, Entry data decoded as the
//!   client request it holds (module `request`).
//!
//! Exit codes: [`OK`] intact; [`DAMAGED`] corruption (the error names the
//! file and byte offset), an unreadable file, or a torn tail with
//! `verify --strict`; [`USAGE`] bad arguments, a missing or unrecognised
//! path, or a kind that is not yet supported. Errors go to stderr.
//!
//! ```
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let code = cairn_tools::dump::run(["cairn-dump", "verify", "/no/such/dir"], &mut out, &mut err);
//! assert_eq!(code, cairn_tools::dump::USAGE);
//! assert!(String::from_utf8(err).unwrap().contains("no such file or directory"));
//! ```

mod escape;
mod records;
mod request;
mod target;
mod verify;

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
/// file kind that is not yet supported.
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
    /// Check every checksum of a WAL; exit 0 if intact, 1 if damaged.
    ///
    /// PATH: a data dir, a member dir, a WAL directory or a WAL segment.
    /// A torn tail (which the server repairs at start) is a warning.
    Verify {
        /// Data dir, member dir, WAL directory or WAL segment file.
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
        Command::Verify { path, strict } => match wal_target(&path, err) {
            Ok((dir, from)) => verify::run(&dir, &from, strict, out, err),
            Err(code) => code,
        },
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
    }
}

/// The WAL directory `path` leads to, or the exit code after an error
/// message on `err`.
fn wal_target(path: &Path, err: &mut dyn Write) -> Result<(PathBuf, Origin), i32> {
    let fail = |err: &mut dyn Write, msg: String| {
        let _ = writeln!(err, "cairn-dump: {msg}");
        Err(USAGE)
    };
    match target::detect(path) {
        Ok(Target::Wal { dir, from }) => Ok((dir, from)),
        Ok(Target::PageFile(p)) => fail(
            err,
            format!(
                "{}: a page file (member/db): not yet supported (only WAL directories and \
                 segments can be checked so far)",
                p.display()
            ),
        ),
        Ok(Target::Snapshot(p)) => fail(
            err,
            format!(
                "{}: a snapshot file: not yet supported (only WAL directories and segments \
                 can be checked so far)",
                p.display()
            ),
        ),
        Err(e) => fail(err, e.to_string()),
    }
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
    fn page_file_is_not_yet_supported() {
        let dir = std::env::temp_dir().join(format!("cairn-dump-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("db");
        std::fs::write(&db, b"page file").unwrap();
        let (code, _, err) = run_args(&["verify", db.to_str().unwrap()]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(code, USAGE);
        assert!(err.contains("not yet supported"), "{err}");
    }
}
