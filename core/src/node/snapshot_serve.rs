//! Maintenance requests answered by the backend thread: snapshots (served
//! in chunks the client pulls) and defragmentation.
//!
//! A snapshot starts with `snapshot_id` 0: the applied changes are flushed
//! to the backend, which then writes a compact, sealed copy of that commit
//! to `member/snap/<id>.snap`. The file is read back in chunks of
//! [`CHUNK_BYTES`] by offset and removed after its last chunk went out,
//! or — if the client vanished — when a later snapshot starts and it sat
//! unread for [`ABANDONED_AFTER`].

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_net::server::ResponseSink;
use cairn_schemas::rpc;

use super::backend::{Cmd, SnapshotFile};
use super::handler::Node;
use super::respond::{self, Fbb, SnapshotChunk};

/// Bytes of snapshot per response.
pub const CHUNK_BYTES: u64 = 1 << 20;
/// An unread snapshot file is removed after this long.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(600);

struct Served {
    file: SnapshotFile,
    last_read: Instant,
}

/// The snapshot files of this member being read by clients.
pub struct Snapshots {
    dir: PathBuf,
    served: HashMap<u64, Served>,
    next_id: u64,
}

impl Snapshots {
    pub fn new(dir: PathBuf) -> Snapshots {
        // Ids need only be unique within this process; starting from the
        // clock keeps a reconnecting client from reading another's file.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Snapshots {
            dir,
            served: HashMap::new(),
            next_id: xxhash_rust::xxh3::xxh3_64(&seed.to_le_bytes()) | 1,
        }
    }

    fn new_path(&mut self) -> (u64, PathBuf) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(2);
        (id, self.dir.join(format!("{id:016x}.snap")))
    }

    fn remove_abandoned(&mut self) {
        let now = Instant::now();
        self.served.retain(|_, s| {
            let keep = now.duration_since(s.last_read) < ABANDONED_AFTER;
            if !keep {
                let _ = std::fs::remove_file(&s.file.path);
            }
            keep
        });
    }
}

fn send_error(sink: &ResponseSink, request_id: u64, message: &str) {
    sink.send_error(request_id, rpc::ErrorCode::Internal, message, 0);
}

/// Serves one SnapshotRequest.
pub async fn snapshot(
    node: Rc<Node>,
    request_id: u64,
    snapshot_id: u64,
    offset: u64,
    sink: ResponseSink,
) {
    let id = if snapshot_id == 0 {
        match start(&node).await {
            Ok(id) => id,
            Err(e) => return send_error(&sink, request_id, &e),
        }
    } else {
        snapshot_id
    };
    let chunk = {
        let mut snaps = node.snapshots.borrow_mut();
        let Some(s) = snaps.served.get_mut(&id) else {
            return sink.send_error(
                request_id,
                rpc::ErrorCode::InvalidArgument,
                "cairn: no such snapshot (finished, or abandoned for 10 minutes)",
                0,
            );
        };
        s.last_read = Instant::now();
        read_chunk(&s.file, offset).map(|data| (data, s.file.size_bytes, s.file.revision))
    };
    let (data, total_bytes, revision) = match chunk {
        Ok(c) => c,
        Err(e) => return send_error(&sink, request_id, &e),
    };
    if offset + data.len() as u64 >= total_bytes {
        if let Some(s) = node.snapshots.borrow_mut().served.remove(&id) {
            let _ = std::fs::remove_file(&s.file.path);
        }
    }
    let h = node.state.borrow().header_info();
    let mut b = Fbb::with_capacity(data.len() + 256);
    respond::snapshot(
        &mut b,
        &h,
        &SnapshotChunk {
            snapshot_id: id,
            total_bytes,
            offset,
            data: &data,
            revision,
        },
    );
    sink.send(request_id, b.finished_data());
}

/// Flushes the applied state and has the backend write a snapshot of it.
async fn start(node: &Rc<Node>) -> Result<u64, String> {
    let (id, path) = {
        let mut snaps = node.snapshots.borrow_mut();
        snaps.remove_abandoned();
        snaps.new_path()
    };
    node.flush_backend();
    let (tx, rx) = futures_channel::oneshot::channel();
    if !node.backend.send(Cmd::Snapshot { path, reply: tx }) {
        return Err("cairn: the backend is stopping".into());
    }
    let file = rx
        .await
        .map_err(|_| "cairn: the backend stopped".to_string())?
        .map_err(|e| format!("cairn: snapshot failed: {e}"))?;
    node.snapshots.borrow_mut().served.insert(
        id,
        Served {
            file,
            last_read: Instant::now(),
        },
    );
    Ok(id)
}

fn read_chunk(file: &SnapshotFile, offset: u64) -> Result<Vec<u8>, String> {
    if offset > file.size_bytes {
        return Err(format!(
            "cairn: snapshot offset {offset} is past its end ({} bytes)",
            file.size_bytes
        ));
    }
    let len = CHUNK_BYTES.min(file.size_bytes - offset) as usize;
    let mut data = vec![0u8; len];
    std::fs::File::open(&file.path)
        .and_then(|f| f.read_exact_at(&mut data, offset))
        .map_err(|e| format!("cairn: reading {}: {e}", file.path.display()))?;
    Ok(data)
}

/// Serves one DefragmentRequest: flush, then the backend rewrites the file.
pub async fn defragment(node: Rc<Node>, request_id: u64, sink: ResponseSink) {
    node.flush_backend();
    let (tx, rx) = futures_channel::oneshot::channel();
    if !node.backend.send(Cmd::Defrag(tx)) {
        return send_error(&sink, request_id, "cairn: the backend is stopping");
    }
    match rx.await {
        Ok(Ok(r)) => {
            tracing::debug!(
                before_bytes = r.before_bytes,
                after_bytes = r.after_bytes,
                "defragment answered"
            );
            let h = node.state.borrow().header_info();
            let mut b = Fbb::with_capacity(256);
            respond::defragment(&mut b, &h);
            sink.send(request_id, b.finished_data());
        }
        Ok(Err(e)) => send_error(&sink, request_id, &format!("cairn: defragment failed: {e}")),
        Err(_) => send_error(&sink, request_id, "cairn: the backend stopped"),
    }
}
