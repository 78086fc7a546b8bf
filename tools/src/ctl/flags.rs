//! A command-line flag parser with spf13/pflag's rules and error texts (the
//! parser etcdctl uses): flags and arguments may be interleaved, `--` ends
//! flags, `--name=value`, `--name value`, `-n value`, `-nvalue`, `-n=value`,
//! bool flags take no separate value (`--prefix=false` to unset), and a
//! string-slice flag given twice accumulates.

use std::collections::HashMap;
use std::time::Duration;

use super::gofmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Str,
    Int,
    Duration,
    StrSlice,
}

/// One flag as declared by a command.
#[derive(Clone, Copy, Debug)]
pub struct FlagSpec {
    pub name: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    /// The default, in the form help prints it (`l`, `0`, `2s`, `[127.0.0.1:2379]`).
    pub default: &'static str,
    pub usage: &'static str,
}

impl FlagSpec {
    pub const fn new(
        name: &'static str,
        kind: Kind,
        default: &'static str,
        usage: &'static str,
    ) -> FlagSpec {
        FlagSpec {
            name,
            short: None,
            kind,
            default,
            usage,
        }
    }
    pub const fn short(mut self, c: char) -> FlagSpec {
        self.short = Some(c);
        self
    }
    fn display_name(&self) -> String {
        match self.short {
            Some(c) => format!("-{c}, --{}", self.name),
            None => format!("--{}", self.name),
        }
    }
}

/// A parsed value.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Bool(bool),
    Str(String),
    Int(i64),
    Duration(Duration),
    StrSlice(Vec<String>),
}

/// The flags and positional arguments of one invocation.
#[derive(Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, Value>,
    pub args: Vec<String>,
    /// Where the arguments after `--` start in `args`, if `--` was given
    /// (`watch KEY -- COMMAND`).
    pub dash: Option<usize>,
    pub help: bool,
}

impl Parsed {
    /// Whether the flag was given on the command line.
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Value::Bool(true)))
    }
    pub fn str(&self, name: &str, default: &str) -> String {
        match self.values.get(name) {
            Some(Value::Str(s)) => s.clone(),
            _ => default.to_string(),
        }
    }
    pub fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(Value::Int(v)) => *v,
            _ => 0,
        }
    }
    pub fn duration(&self, name: &str, default: Duration) -> Duration {
        match self.values.get(name) {
            Some(Value::Duration(d)) => *d,
            _ => default,
        }
    }
    pub fn slice(&self, name: &str) -> Option<Vec<String>> {
        match self.values.get(name) {
            Some(Value::StrSlice(v)) => Some(v.clone()),
            _ => None,
        }
    }
}

fn find_long<'a>(specs: &[&'a FlagSpec], name: &str) -> Option<&'a FlagSpec> {
    specs.iter().copied().find(|f| f.name == name)
}

fn find_short<'a>(specs: &[&'a FlagSpec], c: char) -> Option<&'a FlagSpec> {
    specs.iter().copied().find(|f| f.short == Some(c))
}

/// Parses `args` against `specs` (the command's flags plus the global ones).
/// Errors carry pflag's message text.
pub fn parse(specs: &[&FlagSpec], args: &[String]) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        i += 1;
        if s.len() < 2 || !s.starts_with('-') {
            p.args.push(s.clone());
            continue;
        }
        if s == "--" {
            p.dash = Some(p.args.len());
            p.args.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = s.strip_prefix("--") {
            if body.starts_with('-') || body.starts_with('=') {
                return Err(format!("bad flag syntax: {s}"));
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(spec) = find_long(specs, name) else {
                if name == "help" {
                    p.help = true;
                    continue;
                }
                return Err(format!("unknown flag: --{name}"));
            };
            let value = match inline {
                Some(v) => v,
                None if spec.kind == Kind::Bool => "true".into(),
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(format!("flag needs an argument: {s}")),
            };
            set(&mut p, spec, &value)?;
        } else {
            let mut shorts: &str = &s[1..];
            while let Some(c) = shorts.chars().next() {
                let after = &shorts[c.len_utf8()..];
                let Some(spec) = find_short(specs, c) else {
                    if c == 'h' {
                        p.help = true;
                        shorts = after;
                        continue;
                    }
                    return Err(format!("unknown shorthand flag: '{c}' in -{shorts}"));
                };
                let value;
                if let Some(v) = after.strip_prefix('=').filter(|_| after.len() > 1) {
                    value = v.to_string();
                    shorts = "";
                } else if spec.kind == Kind::Bool {
                    value = "true".into();
                    shorts = after;
                } else if !after.is_empty() {
                    value = after.to_string();
                    shorts = "";
                } else if i < args.len() {
                    value = args[i].clone();
                    i += 1;
                    shorts = "";
                } else {
                    return Err(format!("flag needs an argument: '{c}' in -{shorts}"));
                }
                set(&mut p, spec, &value)?;
            }
        }
    }
    Ok(p)
}

fn set(p: &mut Parsed, spec: &FlagSpec, value: &str) -> Result<(), String> {
    let invalid = |why: String| {
        format!(
            "invalid argument {} for {} flag: {why}",
            gofmt::quote(value.as_bytes()),
            gofmt::quote(spec.display_name().as_bytes())
        )
    };
    let v = match spec.kind {
        Kind::Bool => Value::Bool(gofmt::parse_bool(value).map_err(invalid)?),
        Kind::Str => Value::Str(value.to_string()),
        Kind::Int => Value::Int(gofmt::parse_int(value, 0).map_err(invalid)?),
        Kind::Duration => Value::Duration(gofmt::parse_duration(value).map_err(invalid)?),
        Kind::StrSlice => {
            let items: Vec<String> = if value.is_empty() {
                Vec::new()
            } else {
                value.split(',').map(str::to_string).collect()
            };
            match p.values.get_mut(spec.name) {
                Some(Value::StrSlice(existing)) => {
                    existing.extend(items);
                    return Ok(());
                }
                _ => Value::StrSlice(items),
            }
        }
    };
    p.values.insert(spec.name, v);
    Ok(())
}

/// Whether `arg` (a `--name` or `-n` without `=`) names a flag that takes
/// no separate value. Unknown flags are assumed to take one, as cobra's
/// command lookup does.
pub fn takes_no_value(specs: &[&FlagSpec], arg: &str) -> bool {
    let spec = match arg.strip_prefix("--") {
        Some(name) => find_long(specs, name),
        None => arg
            .strip_prefix('-')
            .and_then(|s| s.chars().next())
            .and_then(|c| find_short(specs, c)),
    };
    match spec {
        Some(s) => s.kind == Kind::Bool,
        None => arg == "--help" || arg == "-h",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        FlagSpec::new("prefix", Kind::Bool, "false", ""),
        FlagSpec::new("limit", Kind::Int, "0", ""),
        FlagSpec::new("write-out", Kind::Str, "simple", "").short('w'),
        FlagSpec::new("endpoints", Kind::StrSlice, "[127.0.0.1:2379]", ""),
        FlagSpec::new("dial-timeout", Kind::Duration, "2s", ""),
    ];

    fn run(args: &[&str]) -> Result<Parsed, String> {
        let specs: Vec<&FlagSpec> = SPECS.iter().collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&specs, &args)
    }

    #[test]
    fn flags_interleave_with_arguments() {
        let p = run(&["k/", "--prefix", "--limit=2", "-w", "json", "end"]).unwrap();
        assert_eq!(p.args, vec!["k/", "end"]);
        assert!(p.bool("prefix"));
        assert_eq!(p.int("limit"), 2);
        assert_eq!(p.str("write-out", "simple"), "json");
    }

    #[test]
    fn double_dash_ends_flags() {
        let p = run(&["-wjson", "--", "-k", "--prefix"]).unwrap();
        assert_eq!(p.args, vec!["-k", "--prefix"]);
        assert!(!p.bool("prefix"));
        assert_eq!(p.str("write-out", ""), "json");
    }

    #[test]
    fn slices_accumulate() {
        let p = run(&["--endpoints", "a,b", "--endpoints=c"]).unwrap();
        assert_eq!(p.slice("endpoints").unwrap(), vec!["a", "b", "c"]);
    }

    #[test]
    fn errors_use_pflag_texts() {
        assert_eq!(
            run(&["--count-only"]).unwrap_err(),
            "unknown flag: --count-only"
        );
        assert_eq!(
            run(&["-x"]).unwrap_err(),
            "unknown shorthand flag: 'x' in -x"
        );
        assert_eq!(
            run(&["--limit"]).unwrap_err(),
            "flag needs an argument: --limit"
        );
        assert_eq!(
            run(&["-w"]).unwrap_err(),
            "flag needs an argument: 'w' in -w"
        );
        assert_eq!(
            run(&["--limit", "x"]).unwrap_err(),
            r#"invalid argument "x" for "--limit" flag: strconv.ParseInt: parsing "x": invalid syntax"#
        );
        assert_eq!(
            run(&["--prefix=maybe"]).unwrap_err(),
            r#"invalid argument "maybe" for "--prefix" flag: strconv.ParseBool: parsing "maybe": invalid syntax"#
        );
        assert_eq!(
            run(&["--dial-timeout", "xyz"]).unwrap_err(),
            r#"invalid argument "xyz" for "--dial-timeout" flag: time: invalid duration "xyz""#
        );
    }

    #[test]
    fn help_is_recognised() {
        assert!(run(&["-h"]).unwrap().help);
        assert!(run(&["--help"]).unwrap().help);
    }
}
