//! `lock` and `elect`, as etcdctl 3.4's (`lock_command.go`,
//! `elect_command.go`) over `cairn_net::recipes`:
//!
//! - `lock NAME [COMMAND ARGS...]` takes the lock with a session of
//!   `--ttl` seconds (10); with a command, runs it holding the lock (with
//!   `ETCD_LOCK_KEY` and `ETCD_LOCK_REV` set) and releases the lock when it
//!   exits; without one, prints the lock's key (as `get` does) and holds
//!   the lock until SIGINT or SIGTERM.
//! - `elect NAME PROPOSAL` campaigns (session TTL 60 s, etcd's default),
//!   prints the leader's key and value once elected and leads until SIGINT
//!   or SIGTERM, then resigns; `elect -l NAME` prints the leader and every
//!   change of it.
//!
//! A session that expires ends the command with "session expired".

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_net::client::{get_request, parse_endpoints};
use cairn_net::recipes::{observe, Election, Mutex, RecipeError, Session};
use cairn_net::{BlockingClient, ClientError, ClientOptions};
use cairn_schemas::rpc;

use super::Ctx;
use crate::ctl::client::{error_text, Global};
use crate::ctl::exit::{Exit, ERROR};
use crate::ctl::flags::{FlagSpec, Kind, Parsed};

pub const LOCK_FLAGS: &[FlagSpec] = &[FlagSpec::new("ttl", Kind::Int, "10", "timeout for session")];

pub const ELECT_FLAGS: &[FlagSpec] =
    &[FlagSpec::new("listen", Kind::Bool, "false", "observation mode").short('l')];

/// etcd's default session TTL (elect has no flag for it).
const ELECT_SESSION_TTL_SECS: i64 = 60;

/// SIGINT and SIGTERM set the returned flag instead of killing the
/// process, so that the lock or the leadership is given back first.
fn catch_interrupts() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registration only fails for signals that cannot be caught.
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

fn recipe_failed(e: RecipeError) -> Exit {
    match e {
        RecipeError::Client(c) => Exit::error(ERROR, error_text(&c)),
        other => Exit::error(ERROR, other.to_string()),
    }
}

fn addrs(g: &Global) -> Result<Vec<SocketAddr>, Exit> {
    parse_endpoints(&g.endpoints.join(","))
        .map_err(|_| Exit::error(ERROR, error_text(&ClientError::Timeout)))
}

fn session(g: &Global, ttl_secs: i64) -> Result<Session, Exit> {
    let addrs = addrs(g)?;
    let opts = ClientOptions {
        dial_timeout: g.dial_timeout,
        request_timeout: g.command_timeout,
        ..Default::default()
    };
    let client =
        BlockingClient::connect(&addrs, opts).map_err(|e| Exit::error(ERROR, error_text(&e)))?;
    Session::new(client, &addrs, ttl_secs).map_err(recipe_failed)
}

/// Waits until interrupted (true) or the session is gone (false).
fn hold(s: &Session, interrupted: &AtomicBool) -> bool {
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return true;
        }
        if !s.is_alive() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn print_kv(ctx: &mut Ctx, c: &BlockingClient, key: &[u8]) -> Result<(), Exit> {
    let r = c
        .range(get_request(key))
        .map_err(|e| Exit::error(ERROR, error_text(&e)))?;
    if r.kvs.as_ref().is_none_or(|k| k.is_empty()) {
        return Err(Exit::error(ERROR, "lock lost on init"));
    }
    let out = ctx.printer().get(&r)?;
    ctx.emit(out);
    let _ = ctx.out.flush();
    Ok(())
}

pub fn lock(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let Some((name, command)) = p.args.split_first() else {
        return Err(Exit::bad_args(
            "lock takes a lock name argument and an optional command to execute",
        ));
    };
    let interrupted = catch_interrupts();
    let ttl = p.int("ttl");
    let s = session(&ctx.global, ttl)?;
    let mut m = Mutex::new(&s, name);
    m.lock(None).map_err(recipe_failed)?;
    if let Some((cmd, args)) = command.split_first() {
        let _ = ctx.out.flush();
        let status = std::process::Command::new(cmd)
            .args(args)
            .env("ETCD_LOCK_KEY", String::from_utf8_lossy(m.key()).as_ref())
            .env("ETCD_LOCK_REV", m.revision().to_string())
            .status();
        let unlocked = m.unlock();
        let status = status.map_err(|e| Exit::error(ERROR, e.to_string()))?;
        if !status.success() {
            let why = match status.code() {
                Some(c) => format!("exit status {c}"),
                None => status.to_string(),
            };
            return Err(Exit::error(ERROR, why));
        }
        return unlocked.map_err(recipe_failed);
    }
    print_kv(ctx, s.client(), m.key())?;
    if hold(&s, &interrupted) {
        return m.unlock().map_err(recipe_failed);
    }
    Err(Exit::error(ERROR, "session expired"))
}

pub fn elect(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let listen = p.bool("listen");
    let (name, proposal) = match p.args.as_slice() {
        [name] => (name, None),
        [name, proposal] => (name, Some(proposal)),
        _ => {
            return Err(Exit::bad_args(
                "elect takes one election name argument and an optional proposal argument",
            ))
        }
    };
    if listen {
        return listen_to(ctx, name);
    }
    let Some(proposal) = proposal else {
        return Err(Exit::bad_args("no proposal argument but -l not set"));
    };
    let interrupted = catch_interrupts();
    let s = session(&ctx.global, ELECT_SESSION_TTL_SECS)?;
    let mut e = Election::new(&s, name);
    e.campaign(proposal.as_bytes(), None)
        .map_err(recipe_failed)?;
    print_kv(ctx, s.client(), e.key())?;
    if hold(&s, &interrupted) {
        return e.resign().map_err(recipe_failed);
    }
    Err(Exit::error(ERROR, "elect: session expired"))
}

fn listen_to(ctx: &mut Ctx, name: &str) -> Result<(), Exit> {
    let interrupted = catch_interrupts();
    let addrs = addrs(&ctx.global)?;
    let opts = ClientOptions {
        dial_timeout: ctx.global.dial_timeout,
        request_timeout: ctx.global.command_timeout,
        ..Default::default()
    };
    let c =
        BlockingClient::connect(&addrs, opts).map_err(|e| Exit::error(ERROR, error_text(&e)))?;
    let printer = ctx.printer();
    let mut failed = None;
    let r = observe(&c, name, &interrupted, |kv| {
        let resp = rpc::RangeResponseT {
            kvs: Some(vec![kv.clone()]),
            count: 1,
            ..Default::default()
        };
        match printer.get(&resp) {
            Ok(out) => {
                ctx.emit(out);
                let _ = ctx.out.flush();
            }
            Err(e) => failed = Some(e),
        }
        failed.is_none()
    });
    if let Some(e) = failed {
        return Err(e);
    }
    r.map_err(recipe_failed)
}
