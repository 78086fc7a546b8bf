//! A follower that fell behind the leader's log installs the leader's
//! state: Raft hands it a snapshot (index, term, membership); the page
//! file at or past that index is pulled from the leader over the client
//! protocol (`SnapshotRequest`, the same pull as `cairnctl snapshot save`,
//! checked against its hash), made this member's page file, and the state
//! is read back from it. The WAL then records a snapshot marker, so a
//! restart starts the log after it.
//!
//! The pulled file may be newer than Raft's snapshot (the leader applied
//! more since): the entries between are already in the state, and applying
//! skips them (`raft_loop`), while Raft replays their membership changes
//! itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use cairn_net::{AsyncClient, ClientOptions};
use cairn_schemas::rpc;

use super::backend::{self, Cmd};
use super::handler::Node;
use super::members::Membership;
use crate::raft::SnapshotMeta;

/// How long one chunk of the pull may take (the first one includes the
/// leader writing its snapshot file).
const PULL_TIMEOUT: Duration = Duration::from_secs(30);

impl Node {
    /// Installs a leader's snapshot at or after `meta.index`. Errors leave
    /// the state as it was (the caller stops the member: going on would
    /// leave it behind its own log).
    pub async fn install_snapshot(self: &Rc<Self>, meta: &SnapshotMeta) -> Result<(), String> {
        let leader = self
            .raft
            .borrow()
            .leader()
            .ok_or("no leader to fetch the snapshot from")?;
        let addrs = self.client_addrs_of(leader)?;
        tracing::info!(
            index = meta.index,
            term = meta.term,
            leader = format!("{leader:x}"),
            "fell behind the leader's log: installing its snapshot"
        );
        let file = self.install_dir.join("install.snap");
        let image = self.install_dir.join("install.db");
        pull(&addrs, &file).await?;
        cairn_storage::snapshot::extract_image(&file, &image).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&file);
        // The applied index the image holds (read before handing it over).
        let db = cairn_storage::btree::Db::open_path(&image, Default::default())
            .map_err(|e| e.to_string())?;
        let r = db.begin_read().map_err(|e| e.to_string())?;
        let applied = r
            .get(
                cairn_storage::layout::KEYSPACE_META,
                cairn_storage::layout::META_APPLIED_INDEX,
            )
            .map_err(|e| e.to_string())?
            .and_then(|v| cairn_storage::layout::decode_u64(&v))
            .ok_or("the leader's snapshot has no applied index")?;
        drop(r);
        drop(db);
        if applied < meta.index {
            return Err(format!(
                "the leader's page file holds entries through {applied}, before its Raft snapshot at {}",
                meta.index
            ));
        }
        // Everything applied so far goes to the old file first (the new one
        // replaces it whole).
        self.flush_backend();
        let (tx, rx) = futures_channel::oneshot::channel();
        if !self.backend.send(Cmd::Install {
            image,
            applied_index: applied,
            reply: tx,
        }) {
            return Err("the page-file thread is gone".into());
        }
        rx.await.map_err(|_| "the page-file thread stopped")??;
        let loaded = backend::reload(&self.backend.db, &self.db_path, self.value_cache_bytes)
            .map_err(|e| e.to_string())?;
        let members = match &loaded.members {
            Some(b) => Membership::decode(b)?,
            None => return Err("the leader's snapshot holds no membership".into()),
        };
        let alarms = crate::alarm::AlarmSet::from_codes(&loaded.alarms)
            .ok_or("unknown alarm in the leader's snapshot")?;
        let mut store = loaded.store;
        store.record_changes(true);
        self.state.borrow_mut().install(
            store,
            (loaded.applied_index, loaded.applied_term),
            alarms,
            members,
        );
        self.flushed_index.set(loaded.applied_index);
        self.transport.set_members(self.state.borrow().members());
        tracing::info!(
            applied_index = loaded.applied_index,
            revision = self.state.borrow().store().current_revision(),
            "installed the leader's snapshot"
        );
        Ok(())
    }

    fn client_addrs_of(&self, id: u64) -> Result<Vec<SocketAddr>, String> {
        let state = self.state.borrow();
        let m = state
            .members()
            .get(id)
            .ok_or("the leader is not in this member's membership")?;
        let addrs: Vec<SocketAddr> = m
            .client_urls
            .iter()
            .filter_map(|u| crate::config::parse_url(u).ok())
            .collect();
        if addrs.is_empty() {
            return Err("the leader has not published its client URLs".into());
        }
        Ok(addrs)
    }
}

/// Pulls a snapshot file from `addrs` into `dest` (written whole, then
/// checked by the caller).
async fn pull(addrs: &[SocketAddr], dest: &PathBuf) -> Result<(), String> {
    let opts = ClientOptions {
        dial_timeout: Duration::from_secs(2),
        request_timeout: PULL_TIMEOUT,
        ..Default::default()
    };
    let client = AsyncClient::connect(addrs, opts)
        .await
        .map_err(|e| format!("connecting to the leader: {e}"))?;
    use std::io::Write as _;
    let mut out =
        std::fs::File::create(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let (mut id, mut offset) = (0u64, 0u64);
    loop {
        let body = rpc::RequestBodyT::SnapshotRequest(Box::new(rpc::SnapshotRequestT {
            snapshot_id: id,
            offset,
        }));
        let r = match client.call(&body).await.map_err(|e| e.to_string())? {
            rpc::ResponseBodyT::SnapshotResponse(r) => r,
            rpc::ResponseBodyT::Error(e) => return Err(e.message.unwrap_or_default()),
            _ => return Err("unexpected answer to a snapshot request".into()),
        };
        let data = r.data.unwrap_or_default();
        if r.offset != offset || (data.is_empty() && offset < r.total_bytes) {
            return Err(format!(
                "the leader sent offset {} when {offset} was asked",
                r.offset
            ));
        }
        id = r.snapshot_id;
        out.write_all(&data)
            .map_err(|e| format!("writing {}: {e}", dest.display()))?;
        offset += data.len() as u64;
        if offset >= r.total_bytes {
            break;
        }
    }
    out.sync_all()
        .map_err(|e| format!("syncing {}: {e}", dest.display()))
}
