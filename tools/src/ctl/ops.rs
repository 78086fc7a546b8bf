//! Building put, get and del requests from parsed flags, shared by the
//! commands and by txn request lines (etcdctl's `getPutOp`, `getGetOp`,
//! `getDelOp`, with their checks, messages and exit codes).

use cairn_net::client::prefix_range_end;
use cairn_schemas::rpc;

use super::exit::{Exit, BAD_FEATURE};
use super::flags::{FlagSpec, Kind, Parsed};
use super::gofmt;

pub const PUT_FLAGS: &[FlagSpec] = &[
    FlagSpec::new(
        "lease",
        Kind::Str,
        "0",
        "lease ID (in hexadecimal) to attach to the key",
    ),
    FlagSpec::new(
        "prev-kv",
        Kind::Bool,
        "false",
        "return the previous key-value pair before modification",
    ),
    FlagSpec::new(
        "ignore-value",
        Kind::Bool,
        "false",
        "updates the key using its current value",
    ),
    FlagSpec::new(
        "ignore-lease",
        Kind::Bool,
        "false",
        "updates the key using its current lease",
    ),
];

pub const GET_FLAGS: &[FlagSpec] = &[
    FlagSpec::new(
        "consistency",
        Kind::Str,
        "l",
        "Linearizable(l) or Serializable(s)",
    ),
    FlagSpec::new(
        "order",
        Kind::Str,
        "",
        "Order of results; ASCEND or DESCEND (ASCEND by default)",
    ),
    FlagSpec::new(
        "sort-by",
        Kind::Str,
        "",
        "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION",
    ),
    FlagSpec::new("limit", Kind::Int, "0", "Maximum number of results"),
    FlagSpec::new(
        "prefix",
        Kind::Bool,
        "false",
        "Get keys with matching prefix",
    ),
    FlagSpec::new(
        "from-key",
        Kind::Bool,
        "false",
        "Get keys that are greater than or equal to the given key using byte compare",
    ),
    FlagSpec::new("rev", Kind::Int, "0", "Specify the kv revision"),
    FlagSpec::new("keys-only", Kind::Bool, "false", "Get only the keys"),
    FlagSpec::new("count-only", Kind::Bool, "false", "Get only the count"),
    FlagSpec::new(
        "print-value-only",
        Kind::Bool,
        "false",
        "Only write values when using the \"simple\" output format",
    ),
];

pub const DEL_FLAGS: &[FlagSpec] = &[
    FlagSpec::new(
        "prefix",
        Kind::Bool,
        "false",
        "delete keys with matching prefix",
    ),
    FlagSpec::new(
        "prev-kv",
        Kind::Bool,
        "false",
        "return deleted key-value pairs",
    ),
    FlagSpec::new(
        "from-key",
        Kind::Bool,
        "false",
        "delete keys that are greater than or equal to the given key using byte compare",
    ),
];

const PUT_ARGS: &str = "put command needs 1 argument and input from stdin or 2 arguments";
const BOTH_RANGES: &str = "`--prefix` and `--from-key` cannot be set at the same time, choose one";
const TOO_MANY: &str =
    "too many arguments, only accept one argument when `--prefix` or `--from-key` is set";

/// `put KEY [VALUE]`; `stdin_value` is the whole of stdin when VALUE is
/// omitted (None inside a txn, where stdin holds the txn itself).
pub fn put_op(
    p: &Parsed,
    stdin_value: impl FnOnce() -> Option<Vec<u8>>,
) -> Result<rpc::PutRequestT, Exit> {
    let Some(key) = p.args.first() else {
        return Err(Exit::bad_args(PUT_ARGS));
    };
    let ignore_value = p.bool("ignore-value");
    if ignore_value && p.args.len() > 1 {
        return Err(Exit::bad_args(
            "put command needs only 1 argument when 'ignore-value' is set",
        ));
    }
    let mut value = Vec::new();
    if !ignore_value {
        value = match p.args.get(1) {
            Some(v) => v.clone().into_bytes(),
            None => stdin_value()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Exit::bad_args(PUT_ARGS))?,
        };
    }
    let lease = gofmt::parse_int(&p.str("lease", "0"), 16)
        .map_err(|e| Exit::bad_args(format!("bad lease ID ({e}), expecting ID in Hex")))?;
    Ok(rpc::PutRequestT {
        key: Some(key.clone().into_bytes()),
        value: Some(value),
        lease,
        prev_kv: p.bool("prev-kv"),
        ignore_value,
        ignore_lease: p.bool("ignore-lease"),
    })
}

/// Applies `--prefix` / `--from-key` to `key`, returning (key, range_end).
fn key_range(
    key: &str,
    range_end: Option<&String>,
    prefix: bool,
    from_key: bool,
) -> (Vec<u8>, Vec<u8>) {
    let mut key = key.as_bytes().to_vec();
    let mut end = range_end.map(|e| e.as_bytes().to_vec()).unwrap_or_default();
    if prefix {
        if key.is_empty() {
            key = vec![0];
            end = vec![0];
        } else {
            end = prefix_range_end(&key);
        }
    }
    if from_key {
        if key.is_empty() {
            key = vec![0];
        }
        end = vec![0];
    }
    (key, end)
}

/// `get KEY [RANGE_END]`.
pub fn get_op(p: &Parsed) -> Result<rpc::RangeRequestT, Exit> {
    let Some(key) = p.args.first() else {
        return Err(Exit::bad_args(
            "get command needs one argument as key and an optional argument as range_end",
        ));
    };
    let (prefix, from_key) = (p.bool("prefix"), p.bool("from-key"));
    if prefix && from_key {
        return Err(Exit::bad_args(BOTH_RANGES));
    }
    if p.bool("keys-only") && p.bool("count-only") {
        return Err(Exit::bad_args(
            "`--keys-only` and `--count-only` cannot be set at the same time, choose one",
        ));
    }
    let consistency = p.str("consistency", "l");
    let serializable = match consistency.as_str() {
        "s" => true,
        "l" => false,
        other => {
            return Err(Exit::error(
                BAD_FEATURE,
                format!(
                    "unknown consistency flag {}",
                    gofmt::quote(other.as_bytes())
                ),
            ))
        }
    };
    if p.args.len() > 1 && (prefix || from_key) {
        return Err(Exit::bad_args(TOO_MANY));
    }
    let order_flag = p.str("order", "");
    let mut sort_order = match order_flag.to_uppercase().as_str() {
        "ASCEND" => rpc::SortOrder::Ascend,
        "DESCEND" => rpc::SortOrder::Descend,
        "" => rpc::SortOrder::None,
        _ => return Err(Exit::bad_feature(format!("bad sort order {order_flag}"))),
    };
    let target_flag = p.str("sort-by", "");
    let sort_target = match target_flag.to_uppercase().as_str() {
        "CREATE" => rpc::SortTarget::Create,
        "KEY" | "" => rpc::SortTarget::Key,
        "MODIFY" => rpc::SortTarget::Mod,
        "VALUE" => rpc::SortTarget::Value,
        "VERSION" => rpc::SortTarget::Version,
        _ => return Err(Exit::bad_feature(format!("bad sort target {target_flag}"))),
    };
    // clientv3.WithSort: results already come sorted by key, ascending.
    if sort_target == rpc::SortTarget::Key && sort_order == rpc::SortOrder::Ascend {
        sort_order = rpc::SortOrder::None;
    }
    let (key, range_end) = key_range(key, p.args.get(1), prefix, from_key);
    let rev = p.int("rev");
    Ok(rpc::RangeRequestT {
        key: Some(key),
        range_end: if range_end.is_empty() {
            None
        } else {
            Some(range_end)
        },
        limit: p.int("limit"),
        revision: if rev > 0 { rev } else { 0 },
        sort_order,
        sort_target,
        serializable,
        keys_only: p.bool("keys-only"),
        count_only: p.bool("count-only"),
        ..Default::default()
    })
}

/// `del KEY [RANGE_END]`.
pub fn del_op(p: &Parsed) -> Result<rpc::DeleteRangeRequestT, Exit> {
    if p.args.is_empty() || p.args.len() > 2 {
        return Err(Exit::bad_args(
            "del command needs one argument as key and an optional argument as range_end",
        ));
    }
    let (prefix, from_key) = (p.bool("prefix"), p.bool("from-key"));
    if prefix && from_key {
        return Err(Exit::bad_args(BOTH_RANGES));
    }
    if p.args.len() > 1 && (prefix || from_key) {
        return Err(Exit::bad_args(TOO_MANY));
    }
    let (key, range_end) = key_range(&p.args[0], p.args.get(1), prefix, from_key);
    Ok(rpc::DeleteRangeRequestT {
        key: Some(key),
        range_end: if range_end.is_empty() {
            None
        } else {
            Some(range_end)
        },
        prev_kv: p.bool("prev-kv"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::flags;

    fn parsed(specs: &[FlagSpec], args: &[&str]) -> Parsed {
        let specs: Vec<&FlagSpec> = specs.iter().collect();
        flags::parse(
            &specs,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn put_takes_value_from_args_or_stdin() {
        let r = put_op(
            &parsed(
                PUT_FLAGS,
                &["foo", "bar", "--prev-kv", "--lease", "1234abcd"],
            ),
            || None,
        )
        .unwrap();
        assert_eq!(
            (r.key.unwrap(), r.value.unwrap()),
            (b"foo".to_vec(), b"bar".to_vec())
        );
        assert!(r.prev_kv);
        assert_eq!(r.lease, 0x1234abcd);
        let r = put_op(&parsed(PUT_FLAGS, &["sk"]), || Some(b"stdinval".to_vec())).unwrap();
        assert_eq!(r.value.unwrap(), b"stdinval");
        assert_eq!(
            put_op(&parsed(PUT_FLAGS, &["sk"]), || Some(Vec::new())).unwrap_err(),
            Exit::bad_args(PUT_ARGS)
        );
        assert_eq!(
            put_op(&parsed(PUT_FLAGS, &[]), || None).unwrap_err(),
            Exit::bad_args(PUT_ARGS)
        );
    }

    #[test]
    fn put_rejects_bad_lease_and_value_with_ignore_value() {
        assert_eq!(
            put_op(&parsed(PUT_FLAGS, &["k", "v", "--lease", "zz"]), || None).unwrap_err(),
            Exit::bad_args(
                r#"bad lease ID (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex"#
            )
        );
        assert_eq!(
            put_op(&parsed(PUT_FLAGS, &["k", "v", "--ignore-value"]), || None).unwrap_err(),
            Exit::bad_args("put command needs only 1 argument when 'ignore-value' is set")
        );
        let r = put_op(&parsed(PUT_FLAGS, &["k", "--ignore-value"]), || {
            panic!("must not read stdin")
        })
        .unwrap();
        assert!(r.ignore_value);
    }

    #[test]
    fn get_prefix_and_from_key_set_range_end() {
        let r = get_op(&parsed(GET_FLAGS, &["k/", "--prefix"])).unwrap();
        assert_eq!(
            (r.key.unwrap(), r.range_end.unwrap()),
            (b"k/".to_vec(), b"k0".to_vec())
        );
        let r = get_op(&parsed(GET_FLAGS, &["", "--prefix"])).unwrap();
        assert_eq!((r.key.unwrap(), r.range_end.unwrap()), (vec![0], vec![0]));
        let r = get_op(&parsed(GET_FLAGS, &["b", "--from-key"])).unwrap();
        assert_eq!(
            (r.key.unwrap(), r.range_end.unwrap()),
            (b"b".to_vec(), vec![0])
        );
        let r = get_op(&parsed(GET_FLAGS, &["a", "c"])).unwrap();
        assert_eq!(r.range_end.unwrap(), b"c");
    }

    #[test]
    fn get_flag_errors_match_etcdctl() {
        let e = |args: &[&str]| get_op(&parsed(GET_FLAGS, args)).unwrap_err();
        assert_eq!(
            e(&["k", "--prefix", "--from-key"]),
            Exit::bad_args(BOTH_RANGES)
        );
        assert_eq!(e(&["a", "b", "--prefix"]), Exit::bad_args(TOO_MANY));
        assert_eq!(
            e(&["k", "--consistency", "x"]),
            Exit::bad_feature("unknown consistency flag \"x\"")
        );
        assert_eq!(
            e(&["k", "--sort-by", "FOO"]),
            Exit::bad_feature("bad sort target FOO")
        );
        assert_eq!(
            e(&["k", "--order", "FOO"]),
            Exit::bad_feature("bad sort order FOO")
        );
        assert_eq!(
            e(&[]),
            Exit::bad_args(
                "get command needs one argument as key and an optional argument as range_end"
            )
        );
    }

    #[test]
    fn get_sort_and_options_reach_the_request() {
        let r = get_op(&parsed(
            GET_FLAGS,
            &[
                "k",
                "--sort-by",
                "value",
                "--order",
                "DESCEND",
                "--limit",
                "2",
                "--rev",
                "7",
                "--consistency",
                "s",
                "--keys-only",
            ],
        ))
        .unwrap();
        assert_eq!(
            (r.sort_target, r.sort_order),
            (rpc::SortTarget::Value, rpc::SortOrder::Descend)
        );
        assert_eq!(
            (r.limit, r.revision, r.serializable, r.keys_only),
            (2, 7, true, true)
        );
        let r = get_op(&parsed(GET_FLAGS, &["k", "--order", "ascend"])).unwrap();
        assert_eq!(r.sort_order, rpc::SortOrder::None);
    }

    #[test]
    fn del_checks_arguments() {
        let e = |args: &[&str]| del_op(&parsed(DEL_FLAGS, args)).unwrap_err();
        let msg = "del command needs one argument as key and an optional argument as range_end";
        assert_eq!(e(&[]), Exit::bad_args(msg));
        assert_eq!(e(&["a", "b", "c"]), Exit::bad_args(msg));
        assert_eq!(
            e(&["k", "--prefix", "--from-key"]),
            Exit::bad_args(BOTH_RANGES)
        );
        let r = del_op(&parsed(DEL_FLAGS, &["k/", "--prefix", "--prev-kv"])).unwrap();
        assert_eq!(r.range_end.unwrap(), b"k0");
        assert!(r.prev_kv);
    }
}
