//! `cairnctl`: the etcdctl of Cairn.
//!
//! It mirrors etcdctl v3 (3.4) byte for byte where the two have the same
//! command: the commands (`put`, `get`, `del`, `txn`, `compaction`,
//! `endpoint health|status [--cluster]`, `member list|add|remove|update|promote`,
//! `move-leader`, `lease grant|revoke|timetolive|list|keep-alive`, `alarm`,
//! `defrag`, `snapshot`, `watch`, `lock`, `elect`, `version`), their flags (parsed
//! with pflag's rules), the `simple`, `json`, `fields` and `table` outputs,
//! the error texts on stderr and the exit codes (1 for request errors, 3 for
//! bad txn input, 4 for unsupported output, 128 for bad arguments).
//!
//! ```
//! use cairn_tools::ctl;
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let code = ctl::run(&["version".to_string()], &mut &b""[..], &mut out, &mut err);
//! assert_eq!(code, 0);
//! assert!(String::from_utf8(out).unwrap().starts_with("cairnctl version: "));
//! ```
//!
//! Known differences from etcdctl 3.4.23:
//! - only the global flags `--endpoints`, `--dial-timeout`,
//!   `--command-timeout`, `-w/--write-out` and `--hex` exist (no TLS, auth,
//!   discovery or keepalive flags), so help lists just those;
//! - `-w protobuf` is not supported (`Error: unsupported output format`);
//! - `get --count-only` is etcdctl 3.5's (only with `-w fields`);
//! - an unreachable endpoint fails at once instead of after
//!   `--command-timeout` (the message is etcdctl's `context deadline exceeded`);
//! - a bad flag inside a txn request line prints only the error, not cobra's usage;
//! - etcd client's zap warnings (`{"level":"warn",...,"msg":"retrying of
//!   unary invoker failed",...}`) that etcdctl writes to stderr before a
//!   server error are not printed, only the `Error: ...` line;
//! - `--peer-urls` that Go's `url.Parse` rejects outright get the scheme or
//!   `host:port` message instead of Go's parser error;
//! - `endpoint health --cluster` lists the endpoints in member-list order
//!   (etcdctl: in the order the probes finish);
//! - `watch --progress-notify` is etcdctl 3.5's flag (3.4 has none); in
//!   `watch -i`, flags given on one `watch` line do not carry over to the
//!   next (etcdctl 3.4 keeps them, a bug); a watch whose connection
//!   breaks is reopened on the endpoints from the next revision;
//! - see `argify` and `txn_parse` for txn input corner cases where
//!   etcdctl 3.4 panics or truncates keys.

mod argify;
mod client;
mod cmd;
mod exit;
mod flags;
mod gofmt;
mod help;
mod json;
mod ops;
mod printer;
mod snapshot;
mod table;
mod tabwriter;
mod txn_parse;

use std::io::{BufRead, Write};

use cmd::{Command, Ctx, COMMANDS};
use exit::{Exit, ERROR, SUCCESS};
use flags::FlagSpec;

/// Runs cairnctl with the process's arguments and stdio; returns the exit code.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Unlocked handles: `watch -i` reads stdin and prints from several
    // threads.
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let code = run(&args, &mut stdin, &mut stdout, &mut stderr);
    let _ = std::io::stdout().flush();
    code
}

/// Runs one cairnctl invocation against the given streams.
pub fn run(
    args: &[String],
    stdin: &mut (dyn BufRead + Send),
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let (command, rest) = match find_command(args) {
        Found::Command(c, rest) => (c, rest),
        Found::Help(c) => {
            let _ = out.write_all(help_text(c).as_bytes());
            return SUCCESS;
        }
        Found::Unknown(word) => return unknown_command(&word, err),
    };
    let specs = flag_specs(command);
    let parsed = match flags::parse(&specs, &rest) {
        Ok(p) => p,
        Err(msg) => {
            return finish(
                Exit::Flag {
                    cmd: command.def.path.to_vec(),
                    msg,
                },
                out,
                err,
            )
        }
    };
    let Some(run_fn) = command.run.filter(|_| !parsed.help) else {
        let _ = out.write_all(help_text(command).as_bytes());
        return SUCCESS;
    };
    let global = match client::Global::from_flags(&parsed) {
        Ok(g) => g,
        Err(e) => return finish(e, out, err),
    };
    let mut ctx = Ctx {
        global,
        stdin,
        out,
        err,
    };
    match run_fn(&mut ctx, &parsed) {
        Ok(()) => SUCCESS,
        Err(e) => finish(e, out, err),
    }
}

/// The flags a command accepts: its own, its groups' (cobra's persistent
/// flags, such as `endpoint --cluster`) and the global ones.
fn flag_specs(command: &Command) -> Vec<&'static FlagSpec> {
    command
        .def
        .flags
        .iter()
        .chain(inherited_flags(command))
        .collect()
}

/// The flags a command inherits: its ancestor groups' and the global ones.
fn inherited_flags(command: &Command) -> impl Iterator<Item = &'static FlagSpec> {
    let path = command.def.path;
    COMMANDS
        .iter()
        .filter(move |c| c.def.path.len() < path.len() && path.starts_with(c.def.path))
        .flat_map(|c| c.def.flags.iter())
        .chain(client::GLOBAL_FLAGS)
}

fn help_text(command: &Command) -> String {
    let all: Vec<&help::CommandDef> = COMMANDS.iter().map(|c| &c.def).collect();
    let globals: Vec<FlagSpec> = inherited_flags(command).copied().collect();
    help::render(&command.def, &all, &globals, env!("CARGO_PKG_VERSION"))
}

/// Prints how a command failed, as etcdctl does, and returns the exit code.
fn finish(e: Exit, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match e {
        Exit::Error { code, msg } => {
            let _ = writeln!(err, "Error: {msg}");
            code
        }
        Exit::Flag { cmd, msg } => {
            let _ = writeln!(err, "Error: {msg}");
            if let Some(c) = COMMANDS.iter().find(|c| c.def.path == cmd.as_slice()) {
                let _ = out.write_all(help_text(c).as_bytes());
            }
            let _ = writeln!(err);
            let _ = writeln!(err, "Error: {msg}");
            ERROR
        }
        Exit::Code(code) => code,
    }
}

enum Found {
    /// The command and its arguments without the command's words.
    Command(&'static Command, Vec<String>),
    /// `cairnctl help [command]`: show that command's help.
    Help(&'static Command),
    Unknown(String),
}

/// cobra's command lookup: the leading non-flag words name the command
/// (a flag that takes a value hides the word after it, as in cobra); the
/// command's words are removed from the arguments.
fn find_command(args: &[String]) -> Found {
    let mut current = &COMMANDS[0];
    let mut rest = args.to_vec();
    loop {
        let specs = flag_specs(current);
        let words = strip_flags(&rest, &specs);
        let Some(word) = words.first() else { break };
        let depth = current.def.path.len();
        if depth == 0 && word == "help" {
            return Found::Help(help_target(&words[1..]));
        }
        let child = COMMANDS.iter().find(|c| {
            c.def.path.len() == depth + 1
                && c.def.path.starts_with(current.def.path)
                && c.def.path[depth] == word
        });
        match child {
            Some(c) => {
                if let Some(i) = rest.iter().position(|a| a == word) {
                    rest.remove(i);
                }
                current = c;
            }
            None if depth == 0 => return Found::Unknown(word.clone()),
            None => break,
        }
    }
    Found::Command(current, rest)
}

/// The command `help WORDS...` asks about: the longest one the words name.
fn help_target(words: &[String]) -> &'static Command {
    COMMANDS
        .iter()
        .filter(|c| {
            c.def.path.len() <= words.len() && c.def.path.iter().zip(words).all(|(a, b)| a == b)
        })
        .max_by_key(|c| c.def.path.len())
        .unwrap_or(&COMMANDS[0])
}

/// The non-flag words of `args`, as cobra's `stripFlags` finds them.
fn strip_flags(args: &[String], specs: &[&FlagSpec]) -> Vec<String> {
    let mut words = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        i += 1;
        if s == "--" {
            break;
        }
        let takes_value = !s.contains('=')
            && (s.starts_with("--") || s.len() == 2)
            && !flags::takes_no_value(specs, s);
        if s.starts_with('-') && takes_value {
            if args.len() - i <= 1 {
                break;
            }
            i += 1;
        } else if !s.is_empty() && !s.starts_with('-') {
            words.push(s.clone());
        }
    }
    words
}

/// cobra's unknown-command error, with its "Did you mean this?" suggestions.
fn unknown_command(word: &str, err: &mut dyn Write) -> i32 {
    let mut msg = format!(
        "unknown command {} for \"cairnctl\"",
        gofmt::quote(word.as_bytes())
    );
    let suggestions: Vec<&str> = COMMANDS
        .iter()
        .filter(|c| c.def.path.len() == 1)
        .map(|c| c.def.path[0])
        .filter(|name| {
            levenshtein(&word.to_lowercase(), name) <= 2 || name.starts_with(&word.to_lowercase())
        })
        .collect();
    if !suggestions.is_empty() {
        msg.push_str("\n\nDid you mean this?\n");
        for s in suggestions {
            msg.push_str(&format!("\t{s}\n"));
        }
    }
    let _ = writeln!(err, "Error: {msg}");
    let _ = writeln!(err, "Run 'cairnctl --help' for usage.");
    let _ = writeln!(err, "Error: {msg}");
    ERROR
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl(args: &[&str], stdin: &str) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, &mut stdin.as_bytes(), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn unknown_command_suggests_like_cobra() {
        let (code, out, err) = ctl(&["gett", "foo"], "");
        assert_eq!(code, 1);
        assert_eq!(out, "");
        let msg =
            "Error: unknown command \"gett\" for \"cairnctl\"\n\nDid you mean this?\n\tget\n\n";
        assert_eq!(err, format!("{msg}Run 'cairnctl --help' for usage.\n{msg}"));
        let (code, _, err) = ctl(&["--endpoints", "x", "bar"], "");
        assert_eq!(code, 1);
        assert!(err.starts_with("Error: unknown command \"bar\" for \"cairnctl\"\nRun 'cairnctl --help' for usage.\n"), "{err}");
    }

    #[test]
    fn flag_errors_print_twice_with_usage() {
        let (code, out, err) = ctl(&["get", "k", "--count"], "");
        assert_eq!(code, 1);
        assert!(
            out.starts_with("NAME:\n\tget - Gets the key or a range of keys\n"),
            "{out}"
        );
        assert_eq!(
            err,
            "Error: unknown flag: --count\n\nError: unknown flag: --count\n"
        );
    }

    #[test]
    fn argument_errors_use_etcdctl_exit_codes() {
        assert_eq!(ctl(&["get"], ""), (128, String::new(), "Error: get command needs one argument as key and an optional argument as range_end\n".into()));
        assert_eq!(
            ctl(&["put"], ""),
            (
                128,
                String::new(),
                "Error: put command needs 1 argument and input from stdin or 2 arguments\n".into()
            )
        );
        assert_eq!(ctl(&["compaction"], "").0, 128);
        assert_eq!(
            ctl(&["compaction", "abc"], ""),
            (
                1,
                String::new(),
                "Error: strconv.ParseInt: parsing \"abc\": invalid syntax\n".into()
            )
        );
        assert_eq!(
            ctl(&["-w", "yaml", "get", "foo"], ""),
            (
                4,
                String::new(),
                "Error: unsupported output format\n".into()
            )
        );
        assert_eq!(
            ctl(&["txn", "extra"], "").2,
            "Error: txn command does not accept argument\n"
        );
        assert_eq!(ctl(&["get", "k", "--sort-by", "FOO"], "").0, 4);
    }

    #[test]
    fn groups_and_help_flags_print_help() {
        let (code, out, _) = ctl(&["endpoint"], "");
        assert_eq!(code, 0);
        assert!(
            out.contains("COMMANDS:\n\thealth\tChecks the healthiness"),
            "{out}"
        );
        let (code, out, _) = ctl(&["put", "-h"], "");
        assert_eq!(code, 0);
        assert!(out.starts_with("NAME:\n\tput - Puts the given key into the store\n\nUSAGE:\n\tcairnctl put [options] <key> <value>"), "{out}");
        let (code, out, _) = ctl(&[], "");
        assert_eq!(code, 0);
        // "snapshot restore" widens the column, as in etcdctl's own help.
        assert!(out.contains("\tendpoint health\t\tChecks"), "{out}");
    }

    /// The help text before GLOBAL OPTIONS (cairnctl has fewer globals).
    fn help_head(args: &[&str]) -> String {
        let (code, out, err) = ctl(args, "");
        assert_eq!((code, err.as_str()), (0, ""));
        out[..out.find("\nGLOBAL OPTIONS:\n").expect("globals") + 1].to_string()
    }

    /// etcdctl 3.4.23's `--help` of each command, up to GLOBAL OPTIONS,
    /// with its name replaced by cairnctl's.
    #[test]
    fn member_and_move_leader_help_match_etcdctl() {
        let cases: &[(&[&str], &str)] = &[
            (&["member", "--help"], "NAME:\n\tmember - Membership related commands\n\nUSAGE:\n\tcairnctl member <subcommand> [flags]\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n\tadd\tAdds a member into the cluster\n\tlist\tLists all members in the cluster\n\tpromote\tPromotes a non-voting member in the cluster\n\tremove\tRemoves a member from the cluster\n\tupdate\tUpdates a member in the cluster\n\nOPTIONS:\n  -h, --help[=false]\thelp for member\n\n"),
            (&["member", "add", "--help"], "NAME:\n\tmember add - Adds a member into the cluster\n\nUSAGE:\n\tcairnctl member add <memberName> [options] [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for add\n      --learner[=false]\tindicates if the new member is raft learner\n      --peer-urls=\"\"\tcomma separated peer URLs for the new member.\n\n"),
            (&["member", "remove", "--help"], "NAME:\n\tmember remove - Removes a member from the cluster\n\nUSAGE:\n\tcairnctl member remove <memberID> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for remove\n\n"),
            (&["member", "update", "--help"], "NAME:\n\tmember update - Updates a member in the cluster\n\nUSAGE:\n\tcairnctl member update <memberID> [options] [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for update\n      --peer-urls=\"\"\tcomma separated peer URLs for the updated member.\n\n"),
            (&["member", "list", "--help"], "NAME:\n\tmember list - Lists all members in the cluster\n\nUSAGE:\n\tcairnctl member list [flags]\n\nDESCRIPTION:\n\tWhen --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.\n\tThe items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.\n\nOPTIONS:\n  -h, --help[=false]\thelp for list\n\n"),
            (&["member", "promote", "--help"], "NAME:\n\tmember promote - Promotes a non-voting member in the cluster\n\nUSAGE:\n\tcairnctl member promote <memberID> [flags]\n\nDESCRIPTION:\n\tPromotes a non-voting learner member to a voting one in the cluster.\n\nOPTIONS:\n  -h, --help[=false]\thelp for promote\n\n"),
            (&["move-leader", "--help"], "NAME:\n\tmove-leader - Transfers leadership to another etcd cluster member.\n\nUSAGE:\n\tcairnctl move-leader <transferee-member-id> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for move-leader\n\n"),
        ];
        for (args, want) in cases {
            assert_eq!(help_head(args), *want, "{args:?}");
        }
    }

    #[test]
    fn endpoint_cluster_flag_is_inherited_like_a_persistent_flag() {
        let head = help_head(&["endpoint", "--help"]);
        assert!(
            head.ends_with("OPTIONS:\n      --cluster[=false]\tuse all endpoints from the cluster member list\n  -h, --help[=false]\thelp for endpoint\n\n"),
            "{head}"
        );
        let (_, out, _) = ctl(&["endpoint", "health", "--help"], "");
        let globals = &out[out.find("GLOBAL OPTIONS:\n").expect("globals")..];
        assert!(
            globals.starts_with("GLOBAL OPTIONS:\n      --cluster[=false]\t"),
            "{globals}"
        );
        assert!(globals.contains("use all endpoints from the cluster member list\n"));
        // Accepted before and after the subcommand, unknown elsewhere.
        let specs = flag_specs(help_target(&["endpoint".into(), "status".into()]));
        assert!(specs.iter().any(|f| f.name == "cluster"));
        let (code, _, err) = ctl(&["get", "k", "--cluster"], "");
        assert_eq!(code, 1);
        assert!(err.starts_with("Error: unknown flag: --cluster\n"), "{err}");
    }

    /// Captured from etcdctl 3.4.23 (argument checks run before connecting).
    #[test]
    fn member_argument_errors_match_etcdctl() {
        let cases: &[(&[&str], i32, &str)] = &[
            (&["member", "add"], 128, "member name not provided"),
            (
                &["member", "add", "a", "b", "http://x", "HTTPs://y"],
                128,
                "too many arguments, did you mean --peer-urls=http://x, did you mean --peer-urls=HTTPs://y",
            ),
            (&["member", "add", "a"], 128, "member peer urls not provided"),
            (&["member", "add", "n9", "--peer-urls="], 128, "member peer urls not provided"),
            (
                &["member", "add", "n9", "--peer-urls=foo"],
                1,
                "URL scheme must be http, https, unix, or unixs: foo",
            ),
            (
                &["member", "add", "n9", "--peer-urls=http://127.0.0.1"],
                1,
                "URL address does not have the form \"host:port\": http://127.0.0.1",
            ),
            (
                &["member", "add", "n9", "--peer-urls=http://127.0.0.1:5/x"],
                1,
                "URL must not contain a path: http://127.0.0.1:5/x",
            ),
            (&["member", "remove"], 128, "member ID is not provided"),
            (&["member", "remove", "1", "2"], 128, "member ID is not provided"),
            (
                &["member", "remove", "zz"],
                128,
                "bad member ID arg (strconv.ParseUint: parsing \"zz\": invalid syntax), expecting ID in Hex",
            ),
            (
                &["member", "remove", "0x12"],
                128,
                "bad member ID arg (strconv.ParseUint: parsing \"0x12\": invalid syntax), expecting ID in Hex",
            ),
            (&["member", "update"], 128, "member ID is not provided"),
            (&["member", "update", "12"], 128, "member peer urls not provided"),
            (
                &["member", "update", "xyz", "--peer-urls=http://a:1"],
                128,
                "bad member ID arg (strconv.ParseUint: parsing \"xyz\": invalid syntax), expecting ID in Hex",
            ),
            (
                &["member", "update", "c4d201faf2d43d78", "--peer-urls=ftp://a:1"],
                1,
                "URL scheme must be http, https, unix, or unixs: ftp://a:1",
            ),
            (&["member", "promote"], 128, "member ID is not provided"),
            (
                &["member", "promote", "12345678901234567890"],
                128,
                "bad member ID arg (strconv.ParseUint: parsing \"12345678901234567890\": value out of range), expecting ID in Hex",
            ),
            (&["move-leader"], 128, "move-leader command needs 1 argument"),
            (&["move-leader", "1", "2"], 128, "move-leader command needs 1 argument"),
            (
                &["move-leader", "zz"],
                128,
                "strconv.ParseUint: parsing \"zz\": invalid syntax",
            ),
        ];
        for (args, code, msg) in cases {
            assert_eq!(
                ctl(args, ""),
                (*code, String::new(), format!("Error: {msg}\n")),
                "{args:?}"
            );
        }
    }

    #[test]
    fn member_list_bad_flag_prints_usage_like_etcdctl() {
        let (code, out, err) = ctl(&["member", "list", "--bogus"], "");
        assert_eq!(code, 1);
        assert!(
            out.starts_with("NAME:\n\tmember list - Lists all members in the cluster\n"),
            "{out}"
        );
        assert_eq!(
            err,
            "Error: unknown flag: --bogus\n\nError: unknown flag: --bogus\n"
        );
    }

    #[test]
    fn strip_flags_skips_flag_values() {
        let specs = flag_specs(&COMMANDS[0]);
        let args: Vec<String> = ["--endpoints", "a", "get", "--hex", "k"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(strip_flags(&args, &specs), vec!["get", "k"]);
    }
}
