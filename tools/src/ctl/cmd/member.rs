//! `member list|add|remove|update|promote`: etcdctl 3.4's checks, messages
//! and exit codes (`member_command.go`), printed by `printer::member`.

use super::Ctx;
use crate::ctl::client::request_failed;
use crate::ctl::exit::{Exit, ERROR};
use crate::ctl::flags::{FlagSpec, Kind, Parsed};
use crate::ctl::gofmt;
use crate::ctl::printer::member::{self as print, Change};
use crate::ctl::printer::Format;
use crate::ctl::snapshot::parse_url;

pub const ADD_FLAGS: &[FlagSpec] = &[
    FlagSpec::new(
        "peer-urls",
        Kind::Str,
        "",
        "comma separated peer URLs for the new member.",
    ),
    FlagSpec::new(
        "learner",
        Kind::Bool,
        "false",
        "indicates if the new member is raft learner",
    ),
];

pub const UPDATE_FLAGS: &[FlagSpec] = &[FlagSpec::new(
    "peer-urls",
    Kind::Str,
    "",
    "comma separated peer URLs for the updated member.",
)];

pub const LIST_LONG: &str = "When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
";

pub const PROMOTE_LONG: &str =
    "Promotes a non-voting learner member to a voting one in the cluster.
";

const NO_ID: &str = "member ID is not provided";
const NO_PEER_URLS: &str = "member peer urls not provided";

/// A member id argument: hexadecimal, as etcdctl prints ids.
fn member_id(p: &Parsed) -> Result<u64, Exit> {
    let [arg] = p.args.as_slice() else {
        return Err(Exit::bad_args(NO_ID));
    };
    gofmt::parse_uint(arg, 16)
        .map_err(|e| Exit::bad_args(format!("bad member ID arg ({e}), expecting ID in Hex")))
}

/// `--peer-urls` split at commas and checked as etcd's client checks them
/// before sending (`types.NewURLs`, which trims each); a bad URL is exit 1,
/// as there. The URLs are sent as given.
fn peer_urls(flag: &str) -> Result<Vec<String>, Exit> {
    let urls: Vec<String> = flag.split(',').map(str::to_string).collect();
    for u in &urls {
        parse_url(u).map_err(|e| Exit::error(ERROR, e))?;
    }
    Ok(urls)
}

pub fn list(ctx: &mut Ctx, _p: &Parsed) -> Result<(), Exit> {
    // etcd 3.4's MemberList answers from the member's own view.
    let r = ctx
        .global
        .connect()?
        .member_list(false)
        .map_err(request_failed)?;
    let out = print::list(ctx.global.format, &r);
    ctx.emit(out);
    Ok(())
}

pub fn add(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let Some(name) = p.args.first() else {
        return Err(Exit::bad_args("member name not provided"));
    };
    if p.args.len() > 1 {
        let mut msg = String::from("too many arguments");
        for a in &p.args {
            if a.to_lowercase().starts_with("http") {
                msg.push_str(&format!(", did you mean --peer-urls={a}"));
            }
        }
        return Err(Exit::bad_args(msg));
    }
    let flag = p.str("peer-urls", "");
    if flag.is_empty() {
        return Err(Exit::bad_args(NO_PEER_URLS));
    }
    let urls = peer_urls(&flag)?;
    let client = ctx.global.connect()?;
    let r = client
        .member_add(urls, p.bool("learner"))
        .map_err(request_failed)?;
    let out = print::add(ctx.global.format, &r)?;
    ctx.emit(out);
    if ctx.global.format != Format::Simple {
        return Ok(());
    }
    // The start flags for the new member name every member's peer URLs:
    // list them after the add (linearizable, so the add is in the list).
    let new_id = r.member.as_ref().map_or(0, |m| m.id);
    let list = client.member_list(true).map_err(request_failed)?;
    let members = list.members.unwrap_or_default();
    let env = print::add_env(name, &flag, new_id, &members);
    let _ = ctx.out.write_all(env.as_bytes());
    Ok(())
}

pub fn remove(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let id = member_id(p)?;
    let r = ctx
        .global
        .connect()?
        .member_remove(id)
        .map_err(request_failed)?;
    let out = print::changed(
        ctx.global.format,
        Change::Removed,
        id,
        &r.header,
        &r.members,
    )?;
    ctx.emit(out);
    Ok(())
}

pub fn update(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let id = member_id(p)?;
    let flag = p.str("peer-urls", "");
    if flag.is_empty() {
        return Err(Exit::bad_args(NO_PEER_URLS));
    }
    let urls = peer_urls(&flag)?;
    let r = ctx
        .global
        .connect()?
        .member_update(id, urls)
        .map_err(request_failed)?;
    let out = print::changed(
        ctx.global.format,
        Change::Updated,
        id,
        &r.header,
        &r.members,
    )?;
    ctx.emit(out);
    Ok(())
}

pub fn promote(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let id = member_id(p)?;
    let r = ctx
        .global
        .connect()?
        .member_promote(id)
        .map_err(request_failed)?;
    let out = print::changed(
        ctx.global.format,
        Change::Promoted,
        id,
        &r.header,
        &r.members,
    )?;
    ctx.emit(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_checked_like_etcd_client() {
        // Texts etcdctl 3.4.23 printed for these --peer-urls.
        let bad = |flag: &str| match peer_urls(flag) {
            Err(Exit::Error { code: ERROR, msg }) => msg,
            other => panic!("{flag}: {other:?}"),
        };
        assert_eq!(
            bad("ftp://a:1"),
            "URL scheme must be http, https, unix, or unixs: ftp://a:1"
        );
        assert_eq!(
            bad("http://127.0.0.1"),
            "URL address does not have the form \"host:port\": http://127.0.0.1"
        );
        assert_eq!(
            bad("http://127.0.0.1:5/x"),
            "URL must not contain a path: http://127.0.0.1:5/x"
        );
        assert!(peer_urls("HTTPS://[::1]:2380,unix://localhost:1?x=1").is_ok());
        // Spaces around a comma are trimmed before the check, as etcd does.
        assert_eq!(
            peer_urls("http://127.0.0.1:5, http://127.0.0.1:6").unwrap(),
            vec!["http://127.0.0.1:5", " http://127.0.0.1:6"]
        );
        assert_eq!(
            peer_urls("http://a:1,foo").unwrap_err(),
            Exit::error(ERROR, "URL scheme must be http, https, unix, or unixs: foo")
        );
    }
}
