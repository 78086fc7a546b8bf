//! `watch`: etcdctl 3.4's watch command — a key, a range or a prefix,
//! from now or from `--rev`, with `--prev-kv`; `-i` reads `watch ...` and
//! `progress` lines from stdin; `watch KEY -- COMMAND ARGS` runs the
//! command once per event with `ETCD_WATCH_*` set. `--progress-notify` is
//! etcdctl 3.5's flag (3.4 has no way to ask for it).
//!
//! A watch whose connection breaks is opened again on the endpoints from
//! the revision after the last one it saw (clientv3 resumes the same way),
//! so nothing is missed or seen twice.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use cairn_net::client::{parse_endpoints, prefix_range_end};
use cairn_net::{BlockingClient, ClientError};
use cairn_schemas::rpc;

use super::Ctx;
use crate::ctl::argify::argify;
use crate::ctl::client::{error_text, Global};
use crate::ctl::exit::{Exit, ERROR};
use crate::ctl::flags::{self, FlagSpec, Kind, Parsed};
use crate::ctl::gofmt::quote;
use crate::ctl::printer::Printer;

pub const WATCH_FLAGS: &[FlagSpec] = &[
    FlagSpec::new("interactive", Kind::Bool, "false", "Interactive mode").short('i'),
    FlagSpec::new(
        "prefix",
        Kind::Bool,
        "false",
        "Watch on a prefix if prefix is set",
    ),
    FlagSpec::new(
        "prev-kv",
        Kind::Bool,
        "false",
        "get the previous key-value pair before the event happens",
    ),
    FlagSpec::new(
        "progress-notify",
        Kind::Bool,
        "false",
        "get periodic watch progress notification from server",
    ),
    FlagSpec::new("rev", Kind::Int, "0", "Revision to start watching"),
];

/// etcdctl's `ExitInterrupted`: the server ended the watch.
const INTERRUPTED: i32 = 5;

const BAD_ARGS_NUM: &str = "bad number of arguments";
const BAD_ARGS_ENV: &str = "bad number of arguments (found conflicting environment key)";
const BAD_ARGS_SEP: &str = "bad number of arguments (found separator --, but no commands)";

/// The watch options of one `watch` (command line or interactive line).
#[derive(Clone, Debug, Default)]
struct Opts {
    prefix: bool,
    rev: i64,
    prev_kv: bool,
    progress_notify: bool,
}

impl Opts {
    fn from(p: &Parsed) -> Opts {
        Opts {
            prefix: p.bool("prefix"),
            rev: p.int("rev"),
            prev_kv: p.bool("prev-kv"),
            progress_notify: p.bool("progress-notify"),
        }
    }
}

/// `ETCDCTL_WATCH_KEY` and `ETCDCTL_WATCH_RANGE_END`.
struct Env {
    key: String,
    range_end: String,
}

impl Env {
    fn read() -> Result<Env, Exit> {
        let key = std::env::var("ETCDCTL_WATCH_KEY").unwrap_or_default();
        let range_end = std::env::var("ETCDCTL_WATCH_RANGE_END").unwrap_or_default();
        if key.is_empty() && !range_end.is_empty() {
            return Err(Exit::bad_args(format!(
                "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={}",
                quote(range_end.as_bytes())
            )));
        }
        Ok(Env { key, range_end })
    }

    /// The key (and range end) from the environment before `args`.
    fn prepend(&self, args: Vec<String>) -> Vec<String> {
        if self.key.is_empty() {
            return args;
        }
        let mut v = vec![self.key.clone()];
        if !self.range_end.is_empty() {
            v.push(self.range_end.clone());
        }
        v.extend(args);
        v
    }
}

/// Splits the arguments at `--` into the watch's and the command's
/// (etcdctl's `parseWatchArgs`).
fn split_args(
    args: &[String],
    dash: Option<usize>,
    env: &Env,
) -> Result<(Vec<String>, Vec<String>), String> {
    let (watch, exec) = match dash {
        Some(d) => (&args[..d], &args[d..]),
        None => (args, &args[..0]),
    };
    if dash.is_some() && exec.is_empty() {
        return Err(BAD_ARGS_SEP.into());
    }
    if dash.is_none() && watch.is_empty() && env.key.is_empty() {
        return Err(BAD_ARGS_NUM.into());
    }
    if !env.key.is_empty() && !watch.is_empty() {
        return Err(BAD_ARGS_ENV.into());
    }
    Ok((env.prepend(watch.to_vec()), exec.to_vec()))
}

/// etcdctl's `getWatchChan`: the create request for `args`.
fn create_request(args: &[String], o: &Opts) -> Result<rpc::WatchCreateRequestT, String> {
    let Some(key) = args.first() else {
        return Err(BAD_ARGS_NUM.into());
    };
    let mut key = key.as_bytes().to_vec();
    let mut range_end = Vec::new();
    if args.len() == 2 {
        if o.prefix {
            return Err("`range_end` and `--prefix` are mutually exclusive".into());
        }
        range_end = args[1].as_bytes().to_vec();
    }
    if o.prefix {
        // clientv3's WithPrefix: an empty prefix is every key.
        if key.is_empty() {
            key = vec![0];
        }
        range_end = prefix_range_end(&key);
    }
    Ok(rpc::WatchCreateRequestT {
        key: Some(key),
        range_end: (!range_end.is_empty()).then_some(range_end),
        start_revision: o.rev,
        progress_notify: o.progress_notify,
        prev_kv: o.prev_kv,
        ..Default::default()
    })
}

/// Where a watch's output goes: shared by the watches of `-i`.
struct Sink<'a> {
    out: Mutex<&'a mut (dyn Write + Send)>,
    err: Mutex<&'a mut (dyn Write + Send)>,
    printer: Printer,
}

fn lock<'m, T>(m: &'m Mutex<T>) -> std::sync::MutexGuard<'m, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sink<'_> {
    fn out(&self, bytes: &[u8]) {
        let mut o = lock(&self.out);
        let _ = o.write_all(bytes);
        let _ = o.flush();
    }

    fn err(&self, bytes: &[u8]) {
        let mut e = lock(&self.err);
        let _ = e.write_all(bytes);
        let _ = e.flush();
    }

    /// etcdctl's `printWatchCh` for one response.
    fn response(&self, r: &rpc::WatchResponseT, exec: &[String]) -> Result<(), Exit> {
        if r.canceled {
            self.err(format!("watch was canceled ({})\n", cancel_error(r)).as_bytes());
        }
        if is_progress_notify(r) {
            let rev = r.header.as_ref().map_or(0, |h| h.revision);
            self.out(format!("progress notify: {rev}\n").as_bytes());
        }
        let p = self.printer.watch(r)?;
        self.out(&p.stdout);
        self.err(&p.stderr);
        for e in r.events.iter().flatten() {
            self.exec(r, e, exec)?;
        }
        Ok(())
    }

    fn exec(&self, r: &rpc::WatchResponseT, e: &rpc::EventT, exec: &[String]) -> Result<(), Exit> {
        let Some((cmd, args)) = exec.split_first() else {
            return Ok(());
        };
        let kv = e.kv.as_deref().cloned().unwrap_or_default();
        let rev = r.header.as_ref().map_or(0, |h| h.revision);
        // The command writes to this process's stdout: what we printed
        // goes first (the sink flushes after each write).
        let status = std::process::Command::new(cmd)
            .args(args)
            .env("ETCD_WATCH_REVISION", rev.to_string())
            .env(
                "ETCD_WATCH_KEY",
                quote(kv.key.as_deref().unwrap_or_default()),
            )
            .env(
                "ETCD_WATCH_EVENT_TYPE",
                format!("\"{}\"", crate::ctl::printer::event_type(e)),
            )
            .env(
                "ETCD_WATCH_VALUE",
                quote(kv.value.as_deref().unwrap_or_default()),
            )
            .status();
        let why = match status {
            Ok(s) if s.success() => return Ok(()),
            Ok(s) => match s.code() {
                Some(c) => format!("exit status {c}"),
                None => format!("signal: {}", s.to_string().trim_start_matches("signal: ")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
                "exec: {}: executable file not found in $PATH",
                quote(cmd.as_bytes())
            ),
            Err(e) => e.to_string(),
        };
        let list: Vec<String> = exec.iter().map(|a| quote(a.as_bytes())).collect();
        self.err(format!("command [{}] error ({why})\n", list.join(" ")).as_bytes());
        Err(Exit::Code(ERROR))
    }
}

/// clientv3's `WatchResponse.Err` text of a canceled response.
fn cancel_error(r: &rpc::WatchResponseT) -> String {
    if r.compact_revision != 0 {
        return "etcdserver: mvcc: required revision has been compacted".into();
    }
    match r.cancel_reason.as_deref() {
        Some(reason) if !reason.is_empty() => reason.to_string(),
        _ => "etcdserver: mvcc: required revision is a future revision".into(),
    }
}

/// clientv3's `IsProgressNotify`.
fn is_progress_notify(r: &rpc::WatchResponseT) -> bool {
    r.events.as_ref().is_none_or(|e| e.is_empty())
        && !r.canceled
        && !r.created
        && r.compact_revision == 0
        && r.header.as_ref().is_some_and(|h| h.revision != 0)
}

fn connect(g: &Global) -> Result<BlockingClient, ClientError> {
    let addrs = parse_endpoints(&g.endpoints.join(",")).map_err(|_| ClientError::Timeout)?;
    let opts = cairn_net::ClientOptions {
        dial_timeout: g.dial_timeout,
        request_timeout: g.command_timeout,
        ..Default::default()
    };
    BlockingClient::connect(&addrs, opts)
}

/// How one watch ended.
enum Ended {
    /// The server canceled it (its last response was printed).
    Canceled,
    /// Asked to stop (`-i` reached the end of its input).
    Stopped,
}

/// Runs one watch until the server cancels it, reopening it from the
/// next revision when the connection breaks.
fn run_watch(
    g: &Global,
    first: Option<&BlockingClient>,
    mut req: rpc::WatchCreateRequestT,
    exec: &[String],
    sink: &Sink<'_>,
    stop: &AtomicBool,
) -> Result<Ended, Exit> {
    let mut owned: Option<BlockingClient> = None;
    let mut first = first.filter(|c| !c.is_closed());
    loop {
        if owned.is_none() && first.is_none() {
            owned = Some(reconnect(g, stop)?);
        }
        let client = match (&owned, first) {
            (Some(c), _) => c,
            (None, Some(c)) => c,
            (None, None) => unreachable!("connected above"),
        };
        if let Some(ended) = session(client, &mut req, exec, sink, stop)? {
            return Ok(ended);
        }
        // The connection broke: reopen on a new one.
        first = None;
        owned = None;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One watch on one connection: `None` when the connection broke.
fn session(
    client: &BlockingClient,
    req: &mut rpc::WatchCreateRequestT,
    exec: &[String],
    sink: &Sink<'_>,
    stop: &AtomicBool,
) -> Result<Option<Ended>, Exit> {
    let mut s = match client.watch(req.clone()) {
        Ok(s) => s,
        Err(ClientError::Closed(_)) => return Ok(None),
        Err(e) => return Err(Exit::error(ERROR, error_text(&e))),
    };
    if req.start_revision == 0 {
        // Reopened later, it goes on after the revision it started at.
        req.start_revision = s.created().header.as_ref().map_or(0, |h| h.revision) + 1;
    }
    if s.created().canceled {
        sink.response(s.created(), exec)?;
        return Ok(Some(Ended::Canceled));
    }
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(Some(Ended::Stopped));
        }
        match s.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => {
                let last = r
                    .events
                    .iter()
                    .flatten()
                    .filter_map(|e| e.kv.as_ref())
                    .map(|kv| kv.mod_revision)
                    .max();
                if let Some(last) = last {
                    req.start_revision = last + 1;
                }
                sink.response(&r, exec)?;
                if r.canceled {
                    return Ok(Some(Ended::Canceled));
                }
            }
            Ok(None) => return Ok(Some(Ended::Canceled)),
            Err(ClientError::Timeout) => {}
            Err(_) => return Ok(None),
        }
    }
}

/// Connects again, retrying until it works or `stop`.
fn reconnect(g: &Global, stop: &AtomicBool) -> Result<BlockingClient, Exit> {
    loop {
        if stop.load(Ordering::Acquire) {
            return Err(Exit::Code(ERROR));
        }
        match connect(g) {
            Ok(c) => return Ok(c),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

pub fn watch(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let env = Env::read()?;
    if p.bool("interactive") {
        return interactive(ctx, &env);
    }
    let (args, exec) = split_args(&p.args, p.dash, &env).map_err(Exit::bad_args)?;
    let req = create_request(&args, &Opts::from(p)).map_err(Exit::bad_args)?;
    let client = connect(&ctx.global).map_err(|e| Exit::error(ERROR, error_text(&e)))?;
    let printer = ctx.printer();
    let g = ctx.global.clone();
    let sink = Sink {
        out: Mutex::new(&mut *ctx.out),
        err: Mutex::new(&mut *ctx.err),
        printer,
    };
    let stop = AtomicBool::new(false);
    run_watch(&g, Some(&client), req, &exec, &sink, &stop)?;
    Err(Exit::error(INTERRUPTED, "watch is canceled by the server"))
}

/// `watch -i`: `watch [options] KEY [RANGE_END] [-- COMMAND...]` and
/// `progress` lines from stdin; each watch prints as its events come.
fn interactive(ctx: &mut Ctx, env: &Env) -> Result<(), Exit> {
    let client = connect(&ctx.global).map_err(|e| Exit::error(ERROR, error_text(&e)))?;
    let g = ctx.global.clone();
    let printer = ctx.printer();
    let stdin = &mut *ctx.stdin;
    let sink = Sink {
        out: Mutex::new(&mut *ctx.out),
        err: Mutex::new(&mut *ctx.err),
        printer,
    };
    let stop = AtomicBool::new(false);
    let active = AtomicUsize::new(0);
    let specs: Vec<&FlagSpec> = WATCH_FLAGS.iter().collect();
    std::thread::scope(|scope| {
        let result = (|| loop {
            let mut line = String::new();
            match stdin.read_line(&mut line) {
                Ok(0) => return Err(Exit::invalid_input("Error reading watch request line: EOF")),
                Ok(_) => {}
                Err(e) => {
                    return Err(Exit::invalid_input(format!(
                        "Error reading watch request line: {e}"
                    )))
                }
            }
            let l = line.strip_suffix('\n').unwrap_or(&line);
            let args = argify(l).unwrap_or_default();
            let Some(first) = args.first() else {
                sink.err(
                    format!("Invalid command: {l} (watch and progress supported)\n").as_bytes(),
                );
                continue;
            };
            match first.as_str() {
                "watch" => {
                    if args.len() < 2 && env.key.is_empty() {
                        sink.err(
                            format!("Invalid command {l} (command type or key is not provided)\n")
                                .as_bytes(),
                        );
                        continue;
                    }
                    let p = flags::parse(&specs, &args[1..]).map_err(Exit::bad_args)?;
                    let (wargs, exec) = split_args(&p.args, p.dash, env).map_err(Exit::bad_args)?;
                    let req = match create_request(&wargs, &Opts::from(&p)) {
                        Ok(r) => r,
                        Err(e) => {
                            sink.err(format!("Invalid command {l} ({e})\n").as_bytes());
                            continue;
                        }
                    };
                    let (g, sink, stop, active, client) = (&g, &sink, &stop, &active, &client);
                    active.fetch_add(1, Ordering::AcqRel);
                    scope.spawn(move || {
                        let ended = run_watch(g, Some(client), req, &exec, sink, stop);
                        active.fetch_sub(1, Ordering::AcqRel);
                        if let Err(Exit::Code(code)) = ended {
                            // A failed command ends etcdctl at once.
                            std::process::exit(code);
                        }
                    });
                }
                "progress" => {
                    let r = client
                        .watch_progress()
                        .map_err(|e| Exit::error(ERROR, error_text(&e)))?;
                    // clientv3 hands the notification to every watch.
                    for _ in 0..active.load(Ordering::Acquire) {
                        sink.response(&r, &[])?;
                    }
                }
                _ => sink.err(format!("Invalid command {l} (only support watch)\n").as_bytes()),
            }
        })();
        stop.store(true, Ordering::Release);
        result
    })
}
