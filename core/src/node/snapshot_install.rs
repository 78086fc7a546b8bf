//! A follower that fell behind the leader's log installs the leader's
//! state: Raft hands it a snapshot (index, term, membership); a page
//! file at or past that index is pulled from the leader (or, failing that,
//! from another member: what a member applied is committed) over the client
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

/// Rounds over the members before giving up on a snapshot.
const INSTALL_ROUNDS: usize = 10;

impl Node {
    /// Installs a leader's snapshot at or after `meta.index`. The leader is
    /// asked first; if it cannot give one (it died, or its file is behind),
    /// every other member is tried, for a bounded number of rounds. Errors
    /// leave the state as it was (the caller stops the member: going on
    /// would leave it behind its own log).
    pub async fn install_snapshot(self: &Rc<Self>, meta: &SnapshotMeta) -> Result<(), String> {
        tracing::info!(
            index = meta.index,
            term = meta.term,
            "fell behind the leader's log: installing a snapshot of its state"
        );
        let mut last_error = String::from("no member to fetch a snapshot from");
        for round in 0..INSTALL_ROUNDS {
            if round > 0 {
                glommio::timer::sleep(Duration::from_millis(500)).await;
            }
            for source in self.snapshot_sources() {
                match self.fetch_image(source, meta.index).await {
                    Ok((image, applied)) => return self.install_image(image, applied).await,
                    Err(e) => {
                        tracing::warn!(source = format!("{source:x}"), error = %e, "cannot fetch a snapshot");
                        last_error = e;
                    }
                }
            }
        }
        Err(last_error)
    }

    /// The leader first, then the other members.
    fn snapshot_sources(&self) -> Vec<u64> {
        let leader = self.raft.borrow().leader();
        let mut ids: Vec<u64> = leader.into_iter().collect();
        let others = self.known_members();
        ids.extend(
            others
                .iter()
                .map(|m| m.id)
                .filter(|&id| id != self.member_id && Some(id) != leader),
        );
        ids
    }

    /// The applied membership or, for a member that joined and has applied
    /// nothing yet, the one its peers described when it asked.
    fn known_members(&self) -> Membership {
        let state = self.state.borrow();
        if state.members().is_empty() {
            if let Some(seed) = self.seed_members.borrow().as_ref() {
                return seed.clone();
            }
        }
        state.members().clone()
    }

    /// Pulls member `source`'s page file; returns the image's path and the
    /// applied index it holds (at least `index`).
    async fn fetch_image(&self, source: u64, index: u64) -> Result<(PathBuf, u64), String> {
        let addrs = self.client_addrs_of(source)?;
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
            .ok_or("the snapshot has no applied index")?;
        drop(r);
        drop(db);
        if applied < index {
            return Err(format!(
                "its page file holds entries through {applied}, before the Raft snapshot at {index}"
            ));
        }
        Ok((image, applied))
    }

    /// Makes `image` (through `applied`) this member's page file and state.
    async fn install_image(self: &Rc<Self>, image: PathBuf, applied: u64) -> Result<(), String> {
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
        let old_revision = self.state.borrow().store().current_revision();
        self.state.borrow_mut().install(
            store,
            (loaded.applied_index, loaded.applied_term),
            alarms,
            members,
            &loaded.leases,
        );
        self.flushed_index.set(loaded.applied_index);
        self.transport.set_members(self.state.borrow().members());
        self.watch_resync(old_revision);
        tracing::info!(
            applied_index = loaded.applied_index,
            revision = self.state.borrow().store().current_revision(),
            "installed the leader's snapshot"
        );
        Ok(())
    }

    fn client_addrs_of(&self, id: u64) -> Result<Vec<SocketAddr>, String> {
        let members = self.known_members();
        let m = members
            .get(id)
            .ok_or("the member is not in this member's membership")?;
        let addrs: Vec<SocketAddr> = m
            .client_urls
            .iter()
            .filter_map(|u| crate::config::parse_url(u).ok())
            .collect();
        if addrs.is_empty() {
            return Err("the member has not published its client URLs".into());
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
