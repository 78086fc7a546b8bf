//! `snapshot status` and `snapshot restore`: offline commands on a snapshot
//! file (`cairn_storage::snapshot`: a page-file image and a trailer), with
//! etcdctl 3.4's flags, outputs, errors and exit codes. `snapshot save`
//! (which asks a server) is defined next to them, in [`SAVE`]'s place.
//!
//! `status` prints etcdctl's `snapshot.Status`:
//!
//! ```text
//! simple:  fe01cf57, 10, 7, 2.1 MB
//! json:    {"hash":4261531479,"revision":10,"totalKey":7,"totalSize":2105344}
//! fields:  "Hash" : 4261531479 / "Revision" : 10 / "Keys" : 7 / "Size" : 2105344
//! table:   HASH | REVISION | TOTAL KEYS | TOTAL SIZE
//! ```
//!
//! Where etcd hashes every bucket with crc32c, `hash` here is the low 32
//! bits of the image's xxh3-64 from the trailer (checked against the image
//! first); `revision` is the meta entry `current_revision`; `totalKey`
//! counts the entries of every keyspace (as etcd counts every bucket's);
//! `totalSize` is the file's size. The whole file is checked first (trailer,
//! image hash, every page): a damaged snapshot is an error (exit 1).
//!
//! `restore` checks the snapshot, then makes a new data dir for one
//! member: `<data-dir>/member/` and an empty `member/wal/` (both 0700), the
//! image as `member/db` with its applied index reset to 0 (the new
//! member's log starts empty, so replay starts at index 1). Like etcdctl it
//! prints nothing on stdout and logs two JSON lines (zap's production
//! format) on stderr. Differences from etcdctl 3.4: an existing *empty*
//! data dir is accepted; the cluster flags are validated but not stored
//! (cairnd takes them at start); there is no `--wal-dir`.

use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_storage::btree::{Db, Options};
use cairn_storage::layout;
use cairn_storage::snapshot::{self, HashCheck, SnapshotError};

use super::cmd::{Command, Ctx};
use super::exit::{Exit, ERROR};
use super::flags::{FlagSpec, Kind, Parsed};
use super::help::CommandDef;
use super::printer::Format;
use super::{gofmt, table};
use crate::dump::pagefile::{self, MetaSummary};

const NO_FLAGS: &[FlagSpec] = &[];

const STATUS_LONG: &str = "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are hash, revision, total keys, total size.
";

/// `snapshot`: the group.
pub const GROUP: Command = Command {
    def: CommandDef {
        path: &["snapshot"],
        use_line: "snapshot <subcommand>",
        short: "Manages etcd node snapshots",
        long: "",
        flags: NO_FLAGS,
        runnable: false,
    },
    run: None,
};

/// `snapshot save <filename>` (online: pulls a snapshot from a server).
pub const SAVE: Command = Command {
    def: CommandDef {
        path: &["snapshot", "save"],
        use_line: "save <filename>",
        short: "Stores an etcd node backend snapshot to a given file",
        long: "",
        flags: NO_FLAGS,
        runnable: true,
    },
    run: Some(super::cmd::maintenance::snapshot_save),
};

/// `snapshot restore <filename> [options]`.
pub const RESTORE: Command = Command {
    def: CommandDef {
        path: &["snapshot", "restore"],
        use_line: "restore <filename> [options]",
        short: "Restores an etcd member snapshot to an etcd directory",
        long: "",
        flags: RESTORE_FLAGS,
        runnable: true,
    },
    run: Some(restore),
};

/// `snapshot status <filename>`.
pub const STATUS: Command = Command {
    def: CommandDef {
        path: &["snapshot", "status"],
        use_line: "status <filename>",
        short: "Gets backend snapshot status of a given file",
        long: STATUS_LONG,
        flags: NO_FLAGS,
        runnable: true,
    },
    run: Some(status),
};

const DEFAULT_NAME: &str = "default";
const DEFAULT_PEER_URLS: &str = "http://localhost:2380";
const DEFAULT_CLUSTER: &str = "default=http://localhost:2380";
const DEFAULT_TOKEN: &str = "etcd-cluster";

const RESTORE_FLAGS: &[FlagSpec] = &[
    FlagSpec::new("data-dir", Kind::Str, "", "Path to the data directory"),
    FlagSpec::new(
        "initial-cluster",
        Kind::Str,
        DEFAULT_CLUSTER,
        "Initial cluster configuration for restore bootstrap",
    ),
    FlagSpec::new(
        "initial-cluster-token",
        Kind::Str,
        DEFAULT_TOKEN,
        "Initial cluster token for the etcd cluster during restore bootstrap",
    ),
    FlagSpec::new(
        "initial-advertise-peer-urls",
        Kind::Str,
        DEFAULT_PEER_URLS,
        "List of this member's peer URLs to advertise to the rest of the cluster",
    ),
    FlagSpec::new(
        "name",
        Kind::Str,
        DEFAULT_NAME,
        "Human-readable name for this member",
    ),
    FlagSpec::new(
        "skip-hash-check",
        Kind::Bool,
        "false",
        "Ignore snapshot integrity hash value (required if copied from data directory)",
    ),
];

// ---------------------------------------------------------------- status

/// etcd's `snapshot.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbStatus {
    pub hash: u32,
    pub revision: i64,
    pub total_key: u64,
    pub total_size: u64,
}

/// Go's `os.Stat` error text for `path`.
fn stat_error(path: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("stat {path}: no such file or directory"),
        _ => format!("stat {path}: {e}"),
    }
}

/// Checks the snapshot at `path` completely and reads its status.
pub fn db_status(path: &Path) -> Result<DbStatus, String> {
    let img = pagefile::open_snapshot(path, true).map_err(|e| e.to_string())?;
    let pagefile::Source::Snapshot(info) = img.source else {
        unreachable!("open_snapshot opens snapshots");
    };
    let report = img.db.verify().map_err(|e| e.to_string())?;
    let r = img.db.begin_read().map_err(|e| e.to_string())?;
    let meta = MetaSummary::read(&r).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(DbStatus {
        // etcd's hash is a u32 (crc32c); ours is the image's xxh3-64.
        hash: info.hash as u32,
        revision: meta.current_revision.unwrap_or(0),
        total_key: report.keyspaces.iter().map(|k| k.entries).sum(),
        total_size: info.file_len_bytes,
    })
}

/// etcdctl's `DBStatus` printers.
pub fn render_status(format: Format, s: &DbStatus) -> String {
    let row = || {
        vec![
            format!("{:x}", s.hash),
            s.revision.to_string(),
            s.total_key.to_string(),
            gofmt::humanize_bytes(s.total_size),
        ]
    };
    match format {
        Format::Simple => format!("{}\n", row().join(", ")),
        Format::Json => format!(
            "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}\n",
            s.hash, s.revision, s.total_key, s.total_size
        ),
        Format::Fields => format!(
            "\"Hash\" : {}\n\"Revision\" : {}\n\"Keys\" : {}\n\"Size\" : {}\n",
            s.hash, s.revision, s.total_key, s.total_size
        ),
        Format::Table => table::render(&["hash", "revision", "total keys", "total size"], &[row()]),
    }
}

fn status(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    if p.args.len() != 1 {
        return Err(Exit::bad_args(
            "snapshot status requires exactly one argument",
        ));
    }
    let path = &p.args[0];
    std::fs::metadata(path).map_err(|e| Exit::error(ERROR, stat_error(path, &e)))?;
    let st = db_status(Path::new(path)).map_err(|e| Exit::error(ERROR, e))?;
    let _ = ctx
        .out
        .write_all(render_status(ctx.global.format, &st).as_bytes());
    Ok(())
}

// --------------------------------------------------------------- restore

/// A URL as etcd's `types.NewURLs` accepts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerUrl {
    scheme: String,
    host: String,
    port: String,
}

impl PeerUrl {
    fn text(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }

    /// With the host resolved to an address, as etcd's `resolveTCPAddrs`
    /// does before comparing (an IPv4 address first); unchanged if it
    /// does not resolve.
    fn resolved(&self) -> PeerUrl {
        use std::net::ToSocketAddrs as _;
        let Ok(port) = self.port.parse::<u16>() else {
            return self.clone();
        };
        let Ok(addrs) = (self.host.as_str(), port).to_socket_addrs() else {
            return self.clone();
        };
        let addrs: Vec<_> = addrs.collect();
        match addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
            Some(a) => PeerUrl {
                host: a.ip().to_string(),
                ..self.clone()
            },
            None => self.clone(),
        }
    }
}

/// etcd's `types.NewURLs` of one URL, with its error texts (`member add`
/// and `member update` check `--peer-urls` with it too). Go's URL parser
/// lowercases the scheme.
pub(crate) fn parse_url(raw: &str) -> Result<PeerUrl, String> {
    let s = raw.trim();
    let scheme_err = || format!("URL scheme must be http, https, unix, or unixs: {s}");
    let (scheme, rest) = s.split_once("://").ok_or_else(scheme_err)?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "unix" | "unixs") {
        return Err(scheme_err());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let bad_host = || format!("URL address does not have the form \"host:port\": {s}");
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6.split_once("]:").ok_or_else(bad_host)?;
            (h, p)
        }
        None => {
            let (h, p) = host_port.rsplit_once(':').ok_or_else(bad_host)?;
            if h.contains(':') {
                return Err(bad_host());
            }
            (h, p)
        }
    };
    if path.starts_with('/') {
        return Err(format!("URL must not contain a path: {s}"));
    }
    Ok(PeerUrl {
        scheme,
        host: host.to_string(),
        port: port.to_string(),
    })
}

/// etcd's `types.NewURLs`: a comma-separated list, at least one.
fn parse_urls(list: &str) -> Result<Vec<PeerUrl>, String> {
    let mut urls = list
        .split(',')
        .map(parse_url)
        .collect::<Result<Vec<_>, _>>()?;
    urls.sort_by_key(PeerUrl::text);
    Ok(urls)
}

/// etcd's `types.NewURLsMap`: `name=url,name=url,...`, sorted by name.
fn parse_cluster(s: &str) -> Result<Vec<(String, Vec<PeerUrl>)>, String> {
    let mut map: std::collections::BTreeMap<String, Vec<PeerUrl>> = Default::default();
    for item in s.split(',').filter(|i| !i.is_empty()) {
        let (name, url) = item.split_once('=').unwrap_or((item, ""));
        map.entry(name.to_string())
            .or_default()
            .push(parse_url(url)?);
    }
    Ok(map
        .into_iter()
        .map(|(n, mut u)| {
            u.sort_by_key(PeerUrl::text);
            (n, u)
        })
        .collect())
}

/// `types.URLsMap.String()`: `name=url,...` sorted.
fn cluster_text(members: &[(String, Vec<PeerUrl>)]) -> String {
    let mut items: Vec<String> = members
        .iter()
        .flat_map(|(n, us)| us.iter().map(move |u| format!("{n}={}", u.text())))
        .collect();
    items.sort();
    items.join(",")
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| gofmt::quote(s.as_bytes())).collect();
    format!("[{}]", items.join(" "))
}

/// etcd's `ServerConfig.VerifyBootstrap` for a restore: the member is in
/// the initial cluster, its URLs there match its advertised peer URLs, no
/// URL is listed twice.
fn verify_bootstrap(
    name: &str,
    peer_urls: &[PeerUrl],
    cluster: &[(String, Vec<PeerUrl>)],
) -> Result<(), String> {
    let Some((_, mine)) = cluster.iter().find(|(n, _)| n == name) else {
        return Err(format!(
            "couldn't find local name {} in the initial cluster configuration",
            gofmt::quote(name.as_bytes())
        ));
    };
    advertise_matches_cluster(name, peer_urls, mine)?;
    let mut all: Vec<String> = cluster
        .iter()
        .flat_map(|(_, us)| us.iter().map(PeerUrl::text))
        .collect();
    all.sort();
    if all.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!(
            "initial cluster {} has duplicate url",
            cluster_text(cluster)
        ));
    }
    Ok(())
}

/// etcd's `advertiseMatchesCluster`, with its error texts.
fn advertise_matches_cluster(
    name: &str,
    advertised: &[PeerUrl],
    in_cluster: &[PeerUrl],
) -> Result<(), String> {
    let texts = |us: &[PeerUrl]| -> Vec<String> { us.iter().map(PeerUrl::text).collect() };
    let (ap, init) = (texts(advertised), texts(in_cluster));
    let mismatch = if ap.len() != init.len() {
        format!("len({}) != len({})", quoted_list(&ap), quoted_list(&init))
    } else {
        let resolve = |us: &[PeerUrl]| -> Vec<PeerUrl> {
            let mut r: Vec<PeerUrl> = us.iter().map(PeerUrl::resolved).collect();
            r.sort_by_key(PeerUrl::text);
            r
        };
        let (a, b) = (resolve(advertised), resolve(in_cluster));
        match (0..a.len()).find(|&i| a[i] != b[i]) {
            None => return Ok(()),
            Some(i) => format!(
                "{}(resolved from {}) != {}(resolved from {})",
                gofmt::quote(a[i].text().as_bytes()),
                gofmt::quote(ap[i].as_bytes()),
                gofmt::quote(b[i].text().as_bytes()),
                gofmt::quote(init[i].as_bytes()),
            ),
        }
    };
    let missing: Vec<String> = init
        .iter()
        .filter(|u| !ap.contains(u))
        .map(|u| format!("{name}={u}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "--initial-cluster has {} but missing from --initial-advertise-peer-urls={} ({mismatch})",
            missing.join(","),
            ap.join(",")
        ));
    }
    let mine = cluster_text(&[(name.to_string(), advertised.to_vec())]);
    let extra: Vec<String> = ap.iter().filter(|u| !init.contains(u)).cloned().collect();
    if !extra.is_empty() {
        return Err(format!(
            "--initial-advertise-peer-urls has {} but missing from --initial-cluster={mine}",
            extra.join(",")
        ));
    }
    Err(format!(
        "failed to resolve {} to match --initial-cluster={mine} ({mismatch})",
        ap.join(",")
    ))
}

/// A zap production log line (etcdctl logs restore progress so, on stderr).
fn log_info(err: &mut dyn Write, caller_line: u32, msg: &str, fields: &[(&str, String)]) {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut line = format!(
        "{{\"level\":\"info\",\"ts\":{ts},\"caller\":\"ctl/snapshot.rs:{caller_line}\",\"msg\":{}",
        q(msg)
    );
    for (k, v) in fields {
        line.push_str(&format!(",{}:{}", q(k), q(v)));
    }
    line.push('}');
    let _ = writeln!(err, "{line}");
}

/// Whether `dir` exists and is not an empty directory.
fn exists_non_empty(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// The snapshot error as etcdctl users read it: a missing file as Go's
/// `open` error, a missing trailer with the way out.
fn snapshot_error(path: &str, e: SnapshotError) -> String {
    match e {
        SnapshotError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            format!("open {path}: no such file or directory")
        }
        e @ SnapshotError::NoTrailer { .. } => {
            format!("{e} (a page file copied from a data dir is restored with --skip-hash-check)")
        }
        e => e.to_string(),
    }
}

/// What a restore makes.
struct Layout {
    data_dir: PathBuf,
    member: PathBuf,
    wal: PathBuf,
    db: PathBuf,
}

fn restore(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    if p.args.len() != 1 {
        return Err(Exit::bad_args(
            "snapshot restore requires exactly one argument",
        ));
    }
    let fail = |msg: String| Exit::error(ERROR, msg);
    let snap = p.args[0].clone();
    let name = p.str("name", DEFAULT_NAME);
    let cluster = parse_cluster(&p.str("initial-cluster", DEFAULT_CLUSTER)).map_err(fail)?;
    // Unlike etcdctl, an omitted --initial-advertise-peer-urls means the
    // URLs --initial-cluster lists for --name (etcdctl compares them with
    // http://localhost:2380 and fails): the restored data dir does not
    // store them, cairnd takes them at start.
    let listed = cluster
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, u)| u.clone());
    let peer_urls = match listed {
        Some(urls) if !p.is_set("initial-advertise-peer-urls") => urls,
        _ => parse_urls(&p.str("initial-advertise-peer-urls", DEFAULT_PEER_URLS)).map_err(fail)?,
    };
    verify_bootstrap(&name, &peer_urls, &cluster).map_err(fail)?;
    let data_dir = match p.str("data-dir", "") {
        d if d.is_empty() => format!("{name}.cairn"),
        d => d,
    };
    if exists_non_empty(Path::new(&data_dir)) {
        return Err(fail(format!(
            "data-dir {} exists",
            gofmt::quote(data_dir.as_bytes())
        )));
    }
    let member = Path::new(&data_dir).join("member");
    let l = Layout {
        wal: member.join("wal"),
        db: member.join("db"),
        member,
        data_dir: PathBuf::from(&data_dir),
    };
    let fields = [
        ("path", snap.clone()),
        ("wal-dir", l.wal.display().to_string()),
        ("data-dir", data_dir.clone()),
    ];
    log_info(ctx.err, line!(), "restoring snapshot", &fields);
    let skip = p.bool("skip-hash-check");
    // Check before anything is created; the copy checks the hash again.
    if !skip {
        snapshot::check(Path::new(&snap)).map_err(|e| fail(snapshot_error(&snap, e)))?;
    }
    let created_data_dir = !l.data_dir.exists();
    if let Err(e) = make_member(Path::new(&snap), &l, skip) {
        // Leave no half-made member behind.
        let _ = std::fs::remove_dir_all(&l.member);
        if created_data_dir {
            let _ = std::fs::remove_dir_all(&l.data_dir);
        }
        return Err(fail(match e {
            MakeError::Snapshot(e) => snapshot_error(&snap, e),
            MakeError::Other(m) => m,
        }));
    }
    log_info(ctx.err, line!(), "restored snapshot", &fields);
    Ok(())
}

enum MakeError {
    Snapshot(SnapshotError),
    Other(String),
}

impl From<SnapshotError> for MakeError {
    fn from(e: SnapshotError) -> MakeError {
        MakeError::Snapshot(e)
    }
}

/// Creates the member dir, its empty WAL dir and its page file.
fn make_member(snap: &Path, l: &Layout, skip_hash_check: bool) -> Result<(), MakeError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let other = |what: &str, p: &Path, e: &dyn std::fmt::Display| {
        MakeError::Other(format!("{what} {}: {e}", p.display()))
    };
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true).mode(0o700);
    dirs.create(&l.wal)
        .map_err(|e| other("creating", &l.wal, &e))?;
    if snapshot::looks_like_snapshot(snap) {
        let check = if skip_hash_check {
            HashCheck::Skip
        } else {
            HashCheck::Verify
        };
        snapshot::extract_image_with(snap, &l.db, check)?;
    } else if skip_hash_check {
        // A page file copied from a data dir: the whole file is the image.
        let len = std::fs::metadata(snap)
            .map_err(|e| other("stat", snap, &e))?
            .len();
        snapshot::copy_prefix_atomically(snap, &l.db, len)?;
    } else {
        // `check` refused it before; the file changed since.
        snapshot::check(snap)?;
    }
    reset_applied_index(&l.db)?;
    for dir in [&l.member, &l.data_dir] {
        sync_dir(dir).map_err(|e| other("syncing directory", dir, &e))?;
    }
    if let Some(parent) = l.data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent).map_err(|e| other("syncing directory", parent, &e))?;
    }
    Ok(())
}

/// Checks the restored page file and sets its applied index to 0 (and
/// forgets the old cluster's membership), in one committed write transaction.
fn reset_applied_index(db_path: &Path) -> Result<(), MakeError> {
    let e = |e: cairn_storage::BtreeError| MakeError::Other(e.to_string());
    let db = Db::open_path(db_path, Options::default()).map_err(e)?;
    db.verify().map_err(e)?;
    let mut w = db.begin_write().map_err(e)?;
    w.create_keyspace(layout::KEYSPACE_META).map_err(e)?;
    w.put(
        layout::KEYSPACE_META,
        layout::META_APPLIED_INDEX,
        &layout::encode_u64(0),
    )
    .map_err(e)?;
    // The restored member bootstraps a new cluster from its flags: the old
    // cluster's membership and Raft position do not carry over.
    for key in [layout::META_APPLIED_TERM, layout::META_MEMBERS] {
        w.delete(layout::KEYSPACE_META, key).map_err(e)?;
    }
    w.commit().map_err(e)?;
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st() -> DbStatus {
        DbStatus {
            hash: 0xfe01cf57,
            revision: 10,
            total_key: 7,
            total_size: 2_105_344,
        }
    }

    #[test]
    fn status_prints_like_etcdctl() {
        assert_eq!(
            render_status(Format::Simple, &st()),
            "fe01cf57, 10, 7, 2.1 MB\n"
        );
        assert_eq!(
            render_status(Format::Json, &st()),
            "{\"hash\":4261531479,\"revision\":10,\"totalKey\":7,\"totalSize\":2105344}\n"
        );
        assert_eq!(
            render_status(Format::Fields, &st()),
            "\"Hash\" : 4261531479\n\"Revision\" : 10\n\"Keys\" : 7\n\"Size\" : 2105344\n"
        );
        let want = "\
+----------+----------+------------+------------+
|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |
+----------+----------+------------+------------+
| fe01cf57 |       10 |          7 |     2.1 MB |
+----------+----------+------------+------------+
";
        assert_eq!(render_status(Format::Table, &st()), want);
        // %x does not pad.
        let small = DbStatus {
            hash: 0xabc,
            ..st()
        };
        assert!(render_status(Format::Simple, &small).starts_with("abc, "));
    }

    #[test]
    fn urls_are_checked_like_etcd_types() {
        assert_eq!(
            parse_url("http://localhost:2380").unwrap().text(),
            "http://localhost:2380"
        );
        assert_eq!(
            parse_url("https://[::1]:2380").unwrap().text(),
            "https://[::1]:2380"
        );
        assert_eq!(
            parse_url("localhost:2380").unwrap_err(),
            "URL scheme must be http, https, unix, or unixs: localhost:2380"
        );
        assert_eq!(
            parse_url("http://localhost").unwrap_err(),
            "URL address does not have the form \"host:port\": http://localhost"
        );
        assert_eq!(
            parse_url("http://localhost:2380/x").unwrap_err(),
            "URL must not contain a path: http://localhost:2380/x"
        );
    }

    #[test]
    fn bootstrap_needs_the_member_with_matching_urls() {
        let cluster = parse_cluster("default=http://localhost:2380").unwrap();
        let ap = parse_urls("http://localhost:2380").unwrap();
        assert!(verify_bootstrap("default", &ap, &cluster).is_ok());
        assert_eq!(
            verify_bootstrap("n1", &ap, &cluster).unwrap_err(),
            "couldn't find local name \"n1\" in the initial cluster configuration"
        );
        let other = parse_urls("http://10.0.0.9:2380").unwrap();
        let e = verify_bootstrap("default", &other, &cluster).unwrap_err();
        assert!(
            e.starts_with(
                "--initial-cluster has default=http://localhost:2380 but missing from \
                 --initial-advertise-peer-urls=http://10.0.0.9:2380 (\"http://10.0.0.9:2380\"(resolved from"
            ),
            "{e}"
        );
        let two = parse_urls("http://localhost:2380,http://localhost:2381").unwrap();
        let e = verify_bootstrap("default", &two, &cluster).unwrap_err();
        assert_eq!(
            e,
            "--initial-advertise-peer-urls has http://localhost:2381 but missing from \
             --initial-cluster=default=http://localhost:2380,default=http://localhost:2381"
        );
        let dup = parse_cluster("a=http://h:1,b=http://h:1").unwrap();
        let ap = parse_urls("http://h:1").unwrap();
        assert_eq!(
            verify_bootstrap("a", &ap, &dup).unwrap_err(),
            "initial cluster a=http://h:1,b=http://h:1 has duplicate url"
        );
    }

    #[test]
    fn an_ip_and_its_name_match_after_resolution() {
        let cluster = parse_cluster("default=http://localhost:2380").unwrap();
        let ap = parse_urls("http://127.0.0.1:2380").unwrap();
        assert!(verify_bootstrap("default", &ap, &cluster).is_ok());
    }
}
