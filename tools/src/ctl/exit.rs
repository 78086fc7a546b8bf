//! etcdctl's exit codes and the ways a command ends early.

/// Success.
pub const SUCCESS: i32 = 0;
/// A server or client error (etcdctl's `ExitError`).
pub const ERROR: i32 = 1;
/// Bad txn input on stdin (`ExitInvalidInput`).
pub const INVALID_INPUT: i32 = 3;
/// An unsupported output format or option value (`ExitBadFeature`).
pub const BAD_FEATURE: i32 = 4;
/// Bad command-line arguments (`ExitBadArgs`).
pub const BAD_ARGS: i32 = 128;

/// How a command ends when it does not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// etcdctl's `ExitWithError(code, err)`: `Error: {msg}` on stderr.
    Error { code: i32, msg: String },
    /// A flag that failed to parse: cobra prints `Error: {msg}`, the
    /// command's usage on stdout, a blank line, then etcdctl prints
    /// `Error: {msg}` again; exit 1.
    Flag { cmd: Vec<&'static str>, msg: String },
    /// Output already written; just exit with this code.
    Code(i32),
}

impl Exit {
    pub fn error(code: i32, msg: impl Into<String>) -> Exit {
        Exit::Error {
            code,
            msg: msg.into(),
        }
    }
    pub fn bad_args(msg: impl Into<String>) -> Exit {
        Exit::error(BAD_ARGS, msg)
    }
    pub fn invalid_input(msg: impl Into<String>) -> Exit {
        Exit::error(INVALID_INPUT, msg)
    }
    pub fn bad_feature(msg: impl Into<String>) -> Exit {
        Exit::error(BAD_FEATURE, msg)
    }
}
