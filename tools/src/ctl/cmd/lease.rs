//! `lease grant|revoke|timetolive|list|keep-alive`, as etcdctl 3.4's
//! (`etcdctl/ctlv3/command/lease_command.go`): argument errors exit 128,
//! grant and revoke failures exit 1 ("failed to grant lease (...)"),
//! time-to-live, list and keep-alive failures exit 2 (etcdctl's
//! ExitBadConnection).

use std::time::{Duration, Instant};

use cairn_net::ClientError;

use super::Ctx;
use crate::ctl::client::error_text;
use crate::ctl::exit::Exit;
use crate::ctl::flags::{FlagSpec, Kind, Parsed};
use crate::ctl::gofmt;
use crate::ctl::printer::lease as print;

/// etcdctl's ExitBadConnection.
const BAD_CONNECTION: i32 = 2;

pub const TIME_TO_LIVE_FLAGS: &[FlagSpec] = &[FlagSpec::new(
    "keys",
    Kind::Bool,
    "false",
    "Get keys attached to this lease",
)];

pub const KEEP_ALIVE_FLAGS: &[FlagSpec] = &[FlagSpec::new(
    "once",
    Kind::Bool,
    "false",
    "Resets the keep-alive time to its original value and exits immediately",
)];

/// etcdctl's `leaseFromArgs`: a hexadecimal id.
fn lease_id(arg: &str) -> Result<i64, Exit> {
    gofmt::parse_int(arg, 16)
        .map_err(|e| Exit::bad_args(format!("bad lease ID arg ({e}), expecting ID in Hex")))
}

fn one_arg<'p>(p: &'p Parsed, msg: &str) -> Result<&'p str, Exit> {
    match p.args.as_slice() {
        [a] => Ok(a),
        _ => Err(Exit::bad_args(msg)),
    }
}

fn bad_connection(e: ClientError) -> Exit {
    Exit::error(BAD_CONNECTION, error_text(&e))
}

pub fn grant(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let arg = one_arg(p, "lease grant command needs TTL argument")?;
    let ttl = gofmt::parse_int(arg, 10).map_err(|e| Exit::bad_args(format!("bad TTL ({e})")))?;
    let r = ctx
        .global
        .connect()?
        .lease_grant(ttl, 0)
        .map_err(|e| Exit::error(1, format!("failed to grant lease ({})", error_text(&e))))?;
    let out = print::grant(ctx.global.format, &r)?;
    ctx.emit(out);
    Ok(())
}

pub fn revoke(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let id = lease_id(one_arg(p, "lease revoke command needs 1 argument")?)?;
    let r = ctx
        .global
        .connect()?
        .lease_revoke(id)
        .map_err(|e| Exit::error(1, format!("failed to revoke lease ({})", error_text(&e))))?;
    let out = print::revoke(ctx.global.format, id, &r)?;
    ctx.emit(out);
    Ok(())
}

pub fn time_to_live(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let id = lease_id(one_arg(
        p,
        "lease timetolive command needs lease ID as argument",
    )?)?;
    let keys = p.bool("keys");
    let client = ctx.global.connect_all().map_err(bad_connection)?;
    let r = client
        .lease_time_to_live(id, keys)
        .map_err(bad_connection)?;
    let out = print::time_to_live(ctx.global.format, &r, keys)?;
    ctx.emit(out);
    Ok(())
}

pub fn list(ctx: &mut Ctx, _p: &Parsed) -> Result<(), Exit> {
    let client = ctx.global.connect_all().map_err(bad_connection)?;
    let r = client.lease_leases().map_err(bad_connection)?;
    let out = print::list(ctx.global.format, &r)?;
    ctx.emit(out);
    Ok(())
}

/// How often a failed renewal is tried again.
const RETRY: Duration = Duration::from_millis(500);

/// `lease keep-alive [--once] ID`: renews every TTL/3 (clientv3's pace),
/// printing each renewal, until the lease is gone (or no renewal succeeded
/// for a whole TTL): then "expired or revoked." and exit 0, as etcdctl.
pub fn keep_alive(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let id = lease_id(one_arg(
        p,
        "lease keep-alive command needs lease ID as argument",
    )?)?;
    let format = ctx.global.format;
    let client = ctx.global.connect_all().map_err(bad_connection)?;
    if p.bool("once") {
        let r = client.lease_keep_alive_once(id).map_err(bad_connection)?;
        if r.ttl <= 0 {
            return Err(Exit::error(
                BAD_CONNECTION,
                "etcdserver: requested lease not found",
            ));
        }
        let out = print::keep_alive(format, &r)?;
        ctx.emit(out);
        return Ok(());
    }
    // Until the first answer the TTL is unknown: give up after a minute.
    let mut expires = Instant::now() + Duration::from_secs(60);
    loop {
        match client.lease_keep_alive_once(id) {
            Ok(r) if r.ttl <= 0 => break,
            Ok(r) => {
                let out = print::keep_alive(format, &r)?;
                ctx.emit(out);
                let _ = ctx.out.flush();
                let ttl = Duration::from_secs(r.ttl as u64);
                expires = Instant::now() + ttl;
                std::thread::sleep((ttl / 3).max(RETRY));
            }
            Err(_) if Instant::now() < expires => std::thread::sleep(RETRY),
            Err(_) => break,
        }
    }
    let out = print::keep_alive_ended(format, id);
    ctx.emit(out);
    Ok(())
}
