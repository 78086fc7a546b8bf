//! The commands: their definitions (name, synopsis, flags) and what they run.

mod alarm;
mod compaction;
mod endpoint;
mod kv;
mod lease;
pub(crate) mod maintenance;
mod member;
mod move_leader;
mod recipes;
mod txn;
mod version;
mod watch;

use std::io::{BufRead, Write};

use super::client::Global;
use super::exit::Exit;
use super::flags::{FlagSpec, Kind, Parsed};
use super::help::CommandDef;
use super::ops;
use super::printer::{Printed, Printer};

/// What a command runs with.
pub struct Ctx<'a> {
    pub global: Global,
    pub stdin: &'a mut (dyn BufRead + Send),
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
}

impl Ctx<'_> {
    pub fn printer(&self) -> Printer {
        Printer::new(self.global.format, self.global.hex)
    }

    /// Writes what a printer produced. Write errors (a closed pipe) are
    /// ignored, as Go's fmt.Print ignores them.
    pub fn emit(&mut self, p: Printed) {
        let _ = self.out.write_all(&p.stdout);
        let _ = self.err.write_all(&p.stderr);
    }
}

pub type RunFn = fn(&mut Ctx, &Parsed) -> Result<(), Exit>;

/// A command definition and its implementation (None for groups).
pub struct Command {
    pub def: CommandDef,
    pub run: Option<RunFn>,
}

const NO_FLAGS: &[FlagSpec] = &[];

const PUT_LONG: &str = "
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
";

const STATUS_LONG: &str = "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
";

const TXN_FLAGS: &[FlagSpec] = &[FlagSpec::new(
    "interactive",
    Kind::Bool,
    "false",
    "Input transaction in interactive mode",
)
.short('i')];
const COMPACTION_FLAGS: &[FlagSpec] = &[FlagSpec::new(
    "physical",
    Kind::Bool,
    "false",
    "'true' to wait for compaction to physically remove all old revisions",
)];

const fn def(
    path: &'static [&'static str],
    use_line: &'static str,
    short: &'static str,
    long: &'static str,
    flags: &'static [FlagSpec],
    runnable: bool,
) -> CommandDef {
    CommandDef {
        path,
        use_line,
        short,
        long,
        flags,
        runnable,
    }
}

/// Every command, the root first.
pub static COMMANDS: &[Command] = &[
    Command {
        def: def(
            &[],
            "cairnctl",
            "A simple command line client for Cairn.",
            "",
            NO_FLAGS,
            false,
        ),
        run: None,
    },
    Command {
        def: def(
            &["alarm"],
            "alarm <subcommand>",
            "Alarm related commands",
            "",
            NO_FLAGS,
            false,
        ),
        run: None,
    },
    Command {
        def: def(
            &["alarm", "disarm"],
            "disarm",
            "Disarms all alarms",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(alarm::disarm),
    },
    Command {
        def: def(
            &["alarm", "list"],
            "list",
            "Lists all alarms",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(alarm::list),
    },
    Command {
        def: def(
            &["compaction"],
            "compaction [options] <revision>",
            "Compacts the event history in etcd",
            "",
            COMPACTION_FLAGS,
            true,
        ),
        run: Some(compaction::run),
    },
    Command {
        def: def(
            &["defrag"],
            "defrag",
            "Defragments the storage of the etcd members with given endpoints",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(maintenance::defrag),
    },
    Command {
        def: def(
            &["del"],
            "del [options] <key> [range_end]",
            "Removes the specified key or range of keys [key, range_end)",
            "",
            ops::DEL_FLAGS,
            true,
        ),
        run: Some(kv::del),
    },
    Command {
        def: def(
            &["endpoint"],
            "endpoint <subcommand>",
            "Endpoint related commands",
            "",
            endpoint::GROUP_FLAGS,
            false,
        ),
        run: None,
    },
    Command {
        def: def(
            &["endpoint", "health"],
            "health",
            "Checks the healthiness of endpoints specified in `--endpoints` flag",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(endpoint::health),
    },
    Command {
        def: def(
            &["endpoint", "status"],
            "status",
            "Prints out the status of endpoints specified in `--endpoints` flag",
            STATUS_LONG,
            NO_FLAGS,
            true,
        ),
        run: Some(endpoint::status),
    },
    Command {
        def: def(
            &["get"],
            "get [options] <key> [range_end]",
            "Gets the key or a range of keys",
            "",
            ops::GET_FLAGS,
            true,
        ),
        run: Some(kv::get),
    },
    Command {
        def: def(
            &["elect"],
            "elect <election-name> [proposal]",
            "Observes and participates in leader election",
            "",
            recipes::ELECT_FLAGS,
            true,
        ),
        run: Some(recipes::elect),
    },
    Command {
        def: def(
            &["lock"],
            "lock <lockname> [exec-command arg1 arg2 ...]",
            "Acquires a named lock",
            "",
            recipes::LOCK_FLAGS,
            true,
        ),
        run: Some(recipes::lock),
    },
    Command {
        def: def(
            &["lease"],
            "lease <subcommand>",
            "Lease related commands",
            "",
            NO_FLAGS,
            false,
        ),
        run: None,
    },
    Command {
        def: def(
            &["lease", "grant"],
            "grant <ttl>",
            "Creates leases",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(lease::grant),
    },
    Command {
        def: def(
            &["lease", "keep-alive"],
            "keep-alive [options] <leaseID>",
            "Keeps leases alive (renew)",
            "",
            lease::KEEP_ALIVE_FLAGS,
            true,
        ),
        run: Some(lease::keep_alive),
    },
    Command {
        def: def(
            &["lease", "list"],
            "list",
            "List all active leases",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(lease::list),
    },
    Command {
        def: def(
            &["lease", "revoke"],
            "revoke <leaseID>",
            "Revokes leases",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(lease::revoke),
    },
    Command {
        def: def(
            &["lease", "timetolive"],
            "timetolive <leaseID> [options]",
            "Get lease information",
            "",
            lease::TIME_TO_LIVE_FLAGS,
            true,
        ),
        run: Some(lease::time_to_live),
    },
    Command {
        def: def(
            &["watch"],
            "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
            "Watches events stream on keys or prefixes",
            "",
            watch::WATCH_FLAGS,
            true,
        ),
        run: Some(watch::watch),
    },
    Command {
        def: def(
            &["member"],
            "member <subcommand>",
            "Membership related commands",
            "",
            NO_FLAGS,
            false,
        ),
        run: None,
    },
    Command {
        def: def(
            &["member", "add"],
            "add <memberName> [options]",
            "Adds a member into the cluster",
            "",
            member::ADD_FLAGS,
            true,
        ),
        run: Some(member::add),
    },
    Command {
        def: def(
            &["member", "list"],
            "list",
            "Lists all members in the cluster",
            member::LIST_LONG,
            NO_FLAGS,
            true,
        ),
        run: Some(member::list),
    },
    Command {
        def: def(
            &["member", "promote"],
            "promote <memberID>",
            "Promotes a non-voting member in the cluster",
            member::PROMOTE_LONG,
            NO_FLAGS,
            true,
        ),
        run: Some(member::promote),
    },
    Command {
        def: def(
            &["member", "remove"],
            "remove <memberID>",
            "Removes a member from the cluster",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(member::remove),
    },
    Command {
        def: def(
            &["member", "update"],
            "update <memberID> [options]",
            "Updates a member in the cluster",
            "",
            member::UPDATE_FLAGS,
            true,
        ),
        run: Some(member::update),
    },
    Command {
        def: def(
            &["move-leader"],
            "move-leader <transferee-member-id>",
            "Transfers leadership to another etcd cluster member.",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(move_leader::run),
    },
    Command {
        def: def(
            &["put"],
            "put [options] <key> <value> (<value> can also be given from stdin)",
            "Puts the given key into the store",
            PUT_LONG,
            ops::PUT_FLAGS,
            true,
        ),
        run: Some(kv::put),
    },
    // `snapshot`: the group and its subcommands are defined in ctl/snapshot.rs
    // (offline `status` and `restore`; the online `save` goes there too).
    crate::ctl::snapshot::GROUP,
    crate::ctl::snapshot::RESTORE,
    crate::ctl::snapshot::SAVE,
    crate::ctl::snapshot::STATUS,
    Command {
        def: def(
            &["txn"],
            "txn [options]",
            "Txn processes all the requests in one transaction",
            "",
            TXN_FLAGS,
            true,
        ),
        run: Some(txn::run),
    },
    Command {
        def: def(
            &["version"],
            "version",
            "Prints the version of cairnctl",
            "",
            NO_FLAGS,
            true,
        ),
        run: Some(version::run),
    },
];
