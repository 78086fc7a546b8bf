//! The offline snapshot tools against page files built here with the
//! storage crate: `cairnctl snapshot status` (etcdctl's output shapes),
//! `cairnctl snapshot restore` (a member dir whose page file equals the
//! snapshot's but for the applied index), `cairn-dump verify` (healthy,
//! flipped byte, truncated, corrupted) and `cairn-dump db`.
//! Build first: `cargo build -p cairn-tools -p cairn-core --bins`.

use std::os::unix::fs::{FileExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use cairn_core::testkit::{run_bin, test_dir, TestNode};
use cairn_net::client::{get_request, put_request};
use cairn_storage::btree::{Db, Options};
use cairn_storage::layout::{self, Record};
use cairn_storage::snapshot;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 test path")
}

fn ctl(args: &[&str]) -> (i32, String, String) {
    run_bin("cairnctl", args, None)
}

fn dump(args: &[&str]) -> (i32, String, String) {
    run_bin("cairn-dump", args, None)
}

/// The history written to the test page file: (revision, key, record).
fn history() -> Vec<(i64, &'static [u8], Record<'static>)> {
    let put = |create_revision, version, value| Record::Put {
        create_revision,
        version,
        lease: 0,
        value,
    };
    vec![
        (2, b"foo", put(2, 1, b"bar")),
        (3, b"a1", put(3, 1, b"1")),
        (4, b"foo", put(2, 2, b"baz")),
        (5, b"a1", Record::Tombstone),
        (6, b"\xffbin", put(6, 1, b"\x00\x01\xfe")),
        (7, b"t1", put(7, 1, b"x")),
        (7, b"t2", put(7, 1, b"yy")),
    ]
}

const CURRENT_REVISION: i64 = 7;
const APPLIED_INDEX: u64 = 12;
/// Meta entries written: applied index, current and compact revision,
/// alarms, layout version.
const META_ENTRIES: u64 = 5;

/// A page file as the node keeps it, at `path`.
fn build_db(path: &Path) {
    let db = Db::open_path(path, Options::default()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace(layout::KEYSPACE_KEY).unwrap();
    w.create_keyspace(layout::KEYSPACE_META).unwrap();
    for (rev, key, rec) in history() {
        w.put(
            layout::KEYSPACE_KEY,
            &layout::history_key(rev, key),
            &rec.encode(),
        )
        .unwrap();
    }
    let meta = layout::KEYSPACE_META;
    w.put(
        meta,
        layout::META_APPLIED_INDEX,
        &layout::encode_u64(APPLIED_INDEX),
    )
    .unwrap();
    w.put(
        meta,
        layout::META_CURRENT_REVISION,
        &layout::encode_i64(CURRENT_REVISION),
    )
    .unwrap();
    w.put(meta, layout::META_COMPACT_REVISION, &layout::encode_i64(-1))
        .unwrap();
    w.put(meta, layout::META_ALARMS, &layout::encode_alarms(&[]))
        .unwrap();
    w.put(
        meta,
        layout::META_LAYOUT_VERSION,
        &layout::LAYOUT_VERSION.to_le_bytes(),
    )
    .unwrap();
    w.commit().unwrap();
}

/// A page file `db` and a snapshot of it `backup.snap` in a fresh dir.
struct Fixture {
    dir: PathBuf,
    db: PathBuf,
    snap: PathBuf,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir = test_dir(tag);
        let db = dir.join("db");
        build_db(&db);
        let snap = dir.join("backup.snap");
        let src = Db::open_read_only(&db, None, Options::default()).unwrap();
        src.compact_to(&snap, Options::default()).unwrap();
        drop(src);
        snapshot::seal(&snap).unwrap();
        Fixture { dir, db, snap }
    }

    /// A copy of the snapshot to damage.
    fn snap_copy(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::copy(&self.snap, &p).unwrap();
        p
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Every entry of a keyspace, in key order.
fn entries(path: &Path, keyspace: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = Db::open_read_only(path, None, Options::default()).unwrap();
    let r = db.begin_read().unwrap();
    let all = r.range(keyspace, ..).unwrap().map(|e| e.unwrap()).collect();
    all
}

/// go-humanize's `Bytes` (as etcdctl prints sizes).
fn humanize(n: u64) -> String {
    if n < 10 {
        return format!("{n} B");
    }
    let units = ["B", "kB", "MB", "GB"];
    let e = ((n as f64).ln() / 1000f64.ln()).floor() as usize;
    let v = ((n as f64) / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if v < 10.0 {
        format!("{v:.1} {}", units[e])
    } else {
        format!("{v:.0} {}", units[e])
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x5a], offset).unwrap();
}

#[test]
fn snapshot_status_prints_etcdctl_shapes() {
    let fx = Fixture::new("snap-status");
    let info = snapshot::check(&fx.snap).unwrap();
    let hash = info.hash as u32;
    let size = std::fs::metadata(&fx.snap).unwrap().len();
    assert_eq!(size, info.file_len_bytes);
    let keys = history().len() as u64 + META_ENTRIES;
    let cells = [
        format!("{hash:x}"),
        CURRENT_REVISION.to_string(),
        keys.to_string(),
        humanize(size),
    ];

    let (code, out, err) = ctl(&["snapshot", "status", s(&fx.snap)]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, format!("{}\n", cells.join(", ")));

    let (code, out, _) = ctl(&["snapshot", "status", s(&fx.snap), "-w", "json"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "{{\"hash\":{hash},\"revision\":{CURRENT_REVISION},\"totalKey\":{keys},\"totalSize\":{size}}}\n"
        )
    );

    let (code, out, _) = ctl(&["-w", "fields", "snapshot", "status", s(&fx.snap)]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "\"Hash\" : {hash}\n\"Revision\" : {CURRENT_REVISION}\n\"Keys\" : {keys}\n\"Size\" : {size}\n"
        )
    );

    // etcdctl's table: centred upper-case headers, right-aligned cells.
    let headers = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"];
    let widths: Vec<usize> = headers
        .iter()
        .zip(&cells)
        .map(|(h, c)| h.len().max(c.len()))
        .collect();
    let border: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let head: String = headers
        .iter()
        .zip(&widths)
        .map(|(h, w)| {
            let gap = w - h.len();
            format!("| {}{h}{} ", " ".repeat(gap / 2), " ".repeat(gap - gap / 2))
        })
        .collect::<String>()
        + "|\n";
    let row: String = cells
        .iter()
        .zip(&widths)
        .map(|(c, w)| format!("| {c:>w$} "))
        .collect::<String>()
        + "|\n";
    let (code, out, _) = ctl(&["snapshot", "status", s(&fx.snap), "-w", "table"]);
    assert_eq!(code, 0);
    assert_eq!(out, format!("{border}{head}{border}{row}{border}"));
}

#[test]
fn snapshot_status_refuses_missing_truncated_and_corrupt_files() {
    let fx = Fixture::new("snap-status-bad");
    let (code, out, err) = ctl(&["snapshot", "status"]);
    assert_eq!(code, 128, "{out}");
    assert_eq!(
        err,
        "Error: snapshot status requires exactly one argument\n"
    );

    let missing = fx.dir.join("nope.snap");
    let (code, _, err) = ctl(&["snapshot", "status", s(&missing)]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "Error: stat {}: no such file or directory\n",
            missing.display()
        )
    );

    let cut = fx.snap_copy("cut.snap");
    let len = std::fs::metadata(&cut).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let (code, out, err) = ctl(&["snapshot", "status", s(&cut)]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with(&format!(
            "Error: {}: not a Cairn snapshot (no trailer): truncated?",
            cut.display()
        )),
        "{err}"
    );

    let bad = fx.snap_copy("bad.snap");
    flip_byte(&bad, 3 * 4096 + 200);
    let (code, _, err) = ctl(&["snapshot", "status", s(&bad)]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!(
            "Error: {}: corrupt: image hash mismatch",
            bad.display()
        )),
        "{err}"
    );
}

#[test]
fn dump_verify_passes_on_a_healthy_page_file_and_snapshot() {
    let fx = Fixture::new("dump-verify-ok");
    let (code, out, err) = dump(&["verify", s(&fx.db)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.is_empty(), "{err}");
    assert!(
        out.starts_with(&format!("page file {}\n", fx.db.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  applied_index={APPLIED_INDEX} current_revision={CURRENT_REVISION} \
             compact_revision=-1 layout_version=1\n"
        )),
        "{out}"
    );
    assert!(out.contains("  keyspace \"key\": entries=7 "), "{out}");
    assert!(out.contains("  keyspace \"meta\": entries=5 "), "{out}");
    assert!(
        out.ends_with(&format!(
            "2 keyspaces, 12 entries, revision {CURRENT_REVISION}: OK\n"
        )),
        "{out}"
    );

    let info = snapshot::check(&fx.snap).unwrap();
    let (code, out, err) = dump(&["verify", s(&fx.snap)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!("snapshot {}\n", fx.snap.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  trailer: image_len={} hash={:016x} file_len={}\n",
            info.image_len_bytes, info.hash, info.file_len_bytes
        )),
        "{out}"
    );
    // A compact copy has no free pages.
    assert!(out.contains(" free=0\n"), "{out}");
    assert!(out.ends_with("12 entries, revision 7: OK\n"), "{out}");
}

#[test]
fn dump_verify_names_the_file_and_page_of_a_flipped_byte() {
    let fx = Fixture::new("dump-verify-flip");
    // A compact copy: every page past the two metas is reachable.
    let copy = fx.dir.join("copy.db");
    Db::open_read_only(&fx.db, None, Options::default())
        .unwrap()
        .compact_to(&copy, Options::default())
        .unwrap();
    flip_byte(&copy, 2 * 4096 + 100);
    let (code, out, err) = dump(&["verify", s(&copy)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.ends_with("FAILED\n"), "{out}");
    assert!(
        err.contains(&format!("page file {} corrupt at page 2", copy.display())),
        "{err}"
    );
    assert!(err.contains("(page 2 starts at byte offset 8192)"), "{err}");
    assert_eq!(err.lines().count(), 1, "one clear error: {err}");
}

#[test]
fn dump_verify_refuses_truncated_and_corrupted_snapshots() {
    let fx = Fixture::new("dump-verify-snap");
    let bad = fx.snap_copy("bad.snap");
    flip_byte(&bad, 2 * 4096 + 10);
    let (code, out, err) = dump(&["verify", s(&bad)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("snapshot ") && out.ends_with("FAILED\n"),
        "{out}"
    );
    assert!(
        err.starts_with(&format!(
            "cairn-dump: {}: corrupt: image hash mismatch",
            bad.display()
        )),
        "{err}"
    );

    // A damaged trailer is not taken for a damaged image.
    let trailer = fx.snap_copy("trailer.snap");
    let len = std::fs::metadata(&trailer).unwrap().len();
    flip_byte(&trailer, len - 20);
    let (code, _, err) = dump(&["verify", s(&trailer)]);
    assert_eq!(code, 1);
    assert!(err.contains("snapshot trailer checksum mismatch"), "{err}");

    // Cut short, the trailer is gone: checked as the page file it starts
    // with, which is shorter than its meta page says.
    let cut = fx.snap_copy("cut.snap");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let (code, out, err) = dump(&["verify", s(&cut)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("page file ") && out.ends_with("FAILED\n"),
        "{out}"
    );
    assert!(err.contains(&cut.display().to_string()), "{err}");
    assert!(err.contains("file holds"), "{err}");
}

#[test]
fn dump_db_prints_meta_and_history_decoded() {
    let fx = Fixture::new("dump-db");
    for path in [&fx.db, &fx.snap] {
        let (code, out, err) = dump(&["db", s(path), "--json"]);
        assert_eq!(code, 0, "{err}");
        let objects: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(objects.len() as u64, META_ENTRIES + 7, "{out}");
        let meta: Vec<&serde_json::Value> = objects[..5].iter().collect();
        assert!(meta.iter().all(|m| m["keyspace"] == "meta"), "{out}");
        let by_name = |n: &str| meta.iter().find(|m| m["name"] == n).unwrap()["value"].clone();
        assert_eq!(by_name("applied_index"), APPLIED_INDEX);
        assert_eq!(by_name("current_revision"), CURRENT_REVISION);
        assert_eq!(by_name("compact_revision"), -1);
        assert_eq!(by_name("layout_version"), 1);
        assert_eq!(by_name("alarms"), serde_json::json!([]));
        let hist = &objects[5..];
        for (o, (rev, key, rec)) in hist.iter().zip(history()) {
            assert_eq!(o["keyspace"], "key");
            assert_eq!(o["revision"], rev);
            let want_key = if key == b"\xffbin" {
                "\\xffbin"
            } else {
                std::str::from_utf8(key).unwrap()
            };
            assert_eq!(o["key"], want_key);
            match rec {
                Record::Put {
                    create_revision,
                    version,
                    value,
                    ..
                } => {
                    assert_eq!(o["type"], "put");
                    assert_eq!(o["create_revision"], create_revision);
                    assert_eq!(o["version"], version);
                    assert_eq!(o["value_len"], value.len());
                }
                Record::Tombstone => assert_eq!(o["type"], "tombstone"),
            }
        }
        assert_eq!(hist[0]["value"], "bar");
        assert_eq!(hist[4]["value_base64"], "AAH+");
    }

    let (code, out, _) = dump(&["db", s(&fx.db), "--keyspace", "key", "--limit", "2"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "key rev=2 key=\"foo\" put create_revision=2 version=1 lease=0 value_len=3 value=\"bar\"\n\
         key rev=3 key=\"a1\" put create_revision=3 version=1 lease=0 value_len=1 value=\"1\"\n"
    );
    let (code, out, _) = dump(&["db", s(&fx.db), "--keyspace", "meta"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "meta alarms=none\nmeta applied_index=12\nmeta compact_revision=-1\n\
         meta current_revision=7\nmeta layout_version=1\n"
    );
    let (code, _, err) = dump(&["db", s(&fx.db), "--keyspace", "lease"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no keyspace \"lease\" (it holds: key, meta)"),
        "{err}"
    );
}

#[test]
fn restore_makes_a_member_dir_with_applied_index_zero() {
    let fx = Fixture::new("snap-restore");
    let data = fx.dir.join("restored");
    let (code, out, err) = ctl(&["snapshot", "restore", s(&fx.snap), "--data-dir", s(&data)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    let logs: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).expect("zap JSON log lines"))
        .collect();
    assert_eq!(logs.len(), 2, "{err}");
    assert_eq!(logs[0]["msg"], "restoring snapshot");
    assert_eq!(logs[1]["msg"], "restored snapshot");
    assert_eq!(logs[1]["level"], "info");
    assert_eq!(logs[1]["data-dir"], s(&data));
    assert_eq!(logs[1]["path"], s(&fx.snap));

    let member = data.join("member");
    let wal = member.join("wal");
    for dir in [&member, &wal] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    assert_eq!(std::fs::read_dir(&wal).unwrap().count(), 0, "empty WAL dir");
    let db = member.join("db");
    assert_eq!(
        entries(&db, layout::KEYSPACE_KEY),
        entries(&fx.db, layout::KEYSPACE_KEY)
    );
    let meta = entries(&db, layout::KEYSPACE_META);
    let mut want = entries(&fx.db, layout::KEYSPACE_META);
    for (k, v) in want.iter_mut() {
        if k == layout::META_APPLIED_INDEX {
            *v = layout::encode_u64(0).to_vec();
        }
    }
    assert_eq!(meta, want);
    let (code, out, err) = dump(&["verify", s(&db)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("  applied_index=0 current_revision=7 "),
        "{out}"
    );
}

#[test]
fn restore_refuses_a_used_data_dir_an_unknown_name_and_a_bad_snapshot() {
    let fx = Fixture::new("snap-restore-bad");
    let used = fx.dir.join("used");
    std::fs::create_dir_all(used.join("member")).unwrap();
    let (code, out, err) = ctl(&["snapshot", "restore", s(&fx.snap), "--data-dir", s(&used)]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        err,
        format!("Error: data-dir \"{}\" exists\n", used.display())
    );
    assert_eq!(
        std::fs::read_dir(&used).unwrap().count(),
        1,
        "left as it was"
    );

    // An existing empty dir is fine.
    let empty = fx.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = ctl(&["snapshot", "restore", s(&fx.snap), "--data-dir", s(&empty)]);
    assert_eq!(code, 0, "{err}");
    assert!(empty.join("member").join("db").is_file());

    let fresh = fx.dir.join("fresh");
    let (code, _, err) = ctl(&[
        "snapshot",
        "restore",
        s(&fx.snap),
        "--data-dir",
        s(&fresh),
        "--name",
        "n1",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: couldn't find local name \"n1\" in the initial cluster configuration\n"
    );
    let (code, _, err) = ctl(&[
        "snapshot",
        "restore",
        s(&fx.snap),
        "--data-dir",
        s(&fresh),
        "--initial-advertise-peer-urls",
        "http://10.1.2.3:2380",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "Error: --initial-cluster has default=http://localhost:2380 but missing from \
             --initial-advertise-peer-urls=http://10.1.2.3:2380"
        ),
        "{err}"
    );
    assert!(!fresh.exists(), "nothing made on refusal");

    let bad = fx.snap_copy("bad.snap");
    flip_byte(&bad, 2 * 4096 + 1);
    let (code, _, err) = ctl(&["snapshot", "restore", s(&bad), "--data-dir", s(&fresh)]);
    assert_eq!(code, 1);
    assert!(err.contains("corrupt: image hash mismatch"), "{err}");
    assert!(!fresh.exists(), "nothing made on refusal");

    // A page file copied from a data dir needs --skip-hash-check.
    let (code, _, err) = ctl(&["snapshot", "restore", s(&fx.db), "--data-dir", s(&fresh)]);
    assert_eq!(code, 1);
    assert!(err.contains("not a Cairn snapshot (no trailer)"), "{err}");
    assert!(err.contains("--skip-hash-check"), "{err}");
    let (code, _, err) = ctl(&[
        "snapshot",
        "restore",
        s(&fx.db),
        "--data-dir",
        s(&fresh),
        "--skip-hash-check",
    ]);
    assert_eq!(code, 0, "{err}");
    let db = fresh.join("member").join("db");
    assert_eq!(
        entries(&db, layout::KEYSPACE_KEY),
        entries(&fx.db, layout::KEYSPACE_KEY)
    );
}

/// A snapshot of a node's page file (taken offline here), restored into a
/// fresh data dir, serves the same keys when cairnd starts on it.
#[test]
fn a_restored_data_dir_serves_the_snapshot() {
    let mut node = TestNode::start();
    let c = node.client();
    c.put(put_request(b"foo", b"bar")).unwrap();
    c.put(put_request(b"k2", b"v2")).unwrap();
    c.put(put_request(b"foo", b"baz")).unwrap();
    drop(c);
    node.stop();

    let dir = test_dir("snap-restore-node");
    let snap = dir.join("node.snap");
    let db = node.data_dir.join("member").join("db");
    Db::open_read_only(&db, None, Options::default())
        .unwrap()
        .compact_to(&snap, Options::default())
        .unwrap();
    snapshot::seal(&snap).unwrap();
    std::fs::remove_dir_all(&node.data_dir).unwrap();

    let peer = format!("http://127.0.0.1:{}", node.peer_port);
    let (code, _, err) = ctl(&[
        "snapshot",
        "restore",
        s(&snap),
        "--data-dir",
        s(&node.data_dir),
        "--name",
        &node.name,
        "--initial-cluster",
        &format!("{}={peer}", node.name),
        "--initial-advertise-peer-urls",
        &peer,
    ]);
    assert_eq!(code, 0, "{err}");
    node.restart();
    let r = node.client().range(get_request(b"foo")).unwrap();
    let kvs = r.kvs.unwrap_or_default();
    assert_eq!(kvs.len(), 1);
    assert_eq!(kvs[0].value.as_deref(), Some(&b"baz"[..]));
    assert_eq!(kvs[0].version, 2);
    let r = node.client().range(get_request(b"k2")).unwrap();
    assert_eq!(r.kvs.unwrap_or_default().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn restore_without_advertise_urls_takes_the_members_urls_from_the_cluster() {
    let fx = Fixture::new("snap-restore-adv");
    let data = fx.dir.join("r1");
    let cluster = "r1=http://127.0.0.1:23999";
    let args = [
        "snapshot",
        "restore",
        s(&fx.snap),
        "--data-dir",
        s(&data),
        "--name",
        "r1",
    ];
    let (code, _, err) = ctl(&[&args[..], &["--initial-cluster", cluster]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(data.join("member").join("db").exists());
    // Given explicitly, they must still match.
    let other = fx.dir.join("r2");
    let args = [
        "snapshot",
        "restore",
        s(&fx.snap),
        "--data-dir",
        s(&other),
        "--name",
        "r1",
    ];
    let extra = [
        "--initial-cluster",
        cluster,
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:1",
    ];
    let (code, _, err) = ctl(&[&args[..], &extra[..]].concat());
    assert_eq!(code, 1);
    assert!(
        err.contains("--initial-cluster has r1=http://127.0.0.1:23999"),
        "{err}"
    );
}
