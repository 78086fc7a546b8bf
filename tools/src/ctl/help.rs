//! Command definitions and etcdctl's help layout (its `help.go` template,
//! aligned by Go's tabwriter): NAME, USAGE, VERSION, API VERSION, COMMANDS,
//! DESCRIPTION, OPTIONS, GLOBAL OPTIONS.

use super::flags::{FlagSpec, Kind};
use super::tabwriter;

/// The API cairnctl speaks (etcd's v3 KV API as of 3.4).
pub const API_VERSION: &str = "3.4";

/// One command or command group.
pub struct CommandDef {
    /// The words that name it (`["endpoint", "health"]`); empty for the root.
    pub path: &'static [&'static str],
    /// cobra's `Use`: the name followed by its argument synopsis.
    pub use_line: &'static str,
    pub short: &'static str,
    pub long: &'static str,
    /// Its own flags (`-h, --help` is added to every command).
    pub flags: &'static [FlagSpec],
    /// False for groups such as `endpoint`, which only print help.
    pub runnable: bool,
}

impl CommandDef {
    pub fn name(&self) -> &'static str {
        self.path.last().copied().unwrap_or("cairnctl")
    }
}

/// etcdctl's `etcdFlagUsages`: flags sorted by name, `[=default]` for bools,
/// quoted defaults for strings. `help_for` adds cobra's `-h, --help` flag.
fn flag_usages(flags: &[FlagSpec], help_for: Option<&str>) -> String {
    let mut lines: Vec<(&str, String)> = flags
        .iter()
        .map(|f| {
            let mut l = match f.short {
                Some(c) => format!("  -{c}, --{}", f.name),
                None => format!("      --{}", f.name),
            };
            match f.kind {
                Kind::Bool => l.push_str(&format!("[={}]", f.default)),
                Kind::Str => l.push_str(&format!("=\"{}\"", f.default)),
                _ => l.push_str(&format!("={}", f.default)),
            }
            (f.name, format!("{l}\t{}\n", f.usage))
        })
        .collect();
    if let Some(name) = help_for {
        lines.push(("help", format!("  -h, --help[=false]\thelp for {name}\n")));
    }
    lines.sort_by(|a, b| a.0.cmp(b.0));
    lines.into_iter().map(|(_, l)| l).collect()
}

/// The help text of `cmd`. `all` is every command (for COMMANDS listings),
/// `globals` the root's persistent flags.
pub fn render(
    cmd: &CommandDef,
    all: &[&CommandDef],
    globals: &[FlagSpec],
    version: &str,
) -> String {
    let is_root = cmd.path.is_empty();
    let name = if is_root {
        "cairnctl".to_string()
    } else {
        cmd.path.join(" ")
    };
    let parent_path: Vec<&str> = std::iter::once("cairnctl")
        .chain(
            cmd.path
                .iter()
                .copied()
                .take(cmd.path.len().saturating_sub(1)),
        )
        .collect();
    let use_line = if is_root {
        cmd.use_line.to_string()
    } else {
        format!("{} {}", parent_path.join(" "), cmd.use_line)
    };
    let mut t = format!(
        "NAME:\n\t{name} - {}\n\nUSAGE:\n\t{use_line} [flags]\n",
        cmd.short
    );
    if is_root {
        t.push_str(&format!("\nVERSION:\n\t{version}\n"));
    }
    let children: Vec<&&CommandDef> = all
        .iter()
        .filter(|c| c.path.len() > cmd.path.len() && c.path.starts_with(cmd.path))
        .collect();
    if !children.is_empty() {
        t.push_str(&format!("\nAPI VERSION:\n\t{API_VERSION}\n"));
        t.push_str("\n\nCOMMANDS:\n");
        let mut listed: Vec<&&CommandDef> = children.into_iter().filter(|c| c.runnable).collect();
        listed.sort_by_key(|c| c.path);
        for c in listed {
            t.push_str(&format!(
                "\t{}\t{}\n",
                c.path[cmd.path.len()..].join(" "),
                c.short
            ));
        }
    }
    if !cmd.long.is_empty() {
        t.push_str("\nDESCRIPTION:\n");
        for line in cmd
            .long
            .trim_matches(|c| c == '\n' || c == '\t' || c == ' ')
            .split('\n')
        {
            t.push_str(&format!("\t{line}\n"));
        }
    }
    let mut local: Vec<FlagSpec> = cmd.flags.to_vec();
    if is_root {
        local.extend_from_slice(globals);
    }
    t.push_str("\nOPTIONS:\n");
    t.push_str(&flag_usages(&local, Some(cmd.name())));
    if !is_root {
        t.push_str("\nGLOBAL OPTIONS:\n");
        t.push_str(&flag_usages(globals, None));
    }
    t.push('\n');
    tabwriter::align(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXN_FLAGS: &[FlagSpec] = &[FlagSpec::new(
        "interactive",
        Kind::Bool,
        "false",
        "Input transaction in interactive mode",
    )
    .short('i')];
    const GLOBALS: &[FlagSpec] = &[FlagSpec::new(
        "dial-timeout",
        Kind::Duration,
        "2s",
        "dial timeout for client connections",
    )];

    #[test]
    fn command_help_has_etcdctl_layout() {
        let txn = CommandDef {
            path: &["txn"],
            use_line: "txn [options]",
            short: "Txn processes all the requests in one transaction",
            long: "",
            flags: TXN_FLAGS,
            runnable: true,
        };
        // etcdctl 3.4.23's `txn --help`, with cairnctl's name and globals.
        let want = "NAME:\n\ttxn - Txn processes all the requests in one transaction\n\nUSAGE:\n\tcairnctl txn [options] [flags]\n\n\
OPTIONS:\n  -h, --help[=false]\t\thelp for txn\n  -i, --interactive[=false]\tInput transaction in interactive mode\n\n\
GLOBAL OPTIONS:\n      --dial-timeout=2s\tdial timeout for client connections\n\n";
        assert_eq!(render(&txn, &[&txn], GLOBALS, "0.1.0"), want);
    }
}
