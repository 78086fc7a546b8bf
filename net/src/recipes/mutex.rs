//! A distributed lock (clientv3's `concurrency.Mutex`).

use std::time::{Duration, Instant};

use cairn_schemas::rpc;

use super::wait::{by_create, create_or_read, wait_deletes};
use super::{RecipeError, Session};
use crate::client::get_request;

/// A lock named by a key prefix; held while this session's key under it
/// is the oldest.
pub struct Mutex<'s> {
    session: &'s Session,
    prefix: Vec<u8>,
    key: Vec<u8>,
    revision: i64,
}

/// `prefix/` and `prefix/LEASE` (etcd's layout).
pub(super) fn own_key(prefix: &str, lease: i64) -> (Vec<u8>, Vec<u8>) {
    let prefix = format!("{prefix}/");
    let key = format!("{prefix}{lease:x}");
    (prefix.into_bytes(), key.into_bytes())
}

impl<'s> Mutex<'s> {
    /// A lock on `name` (keys under `name/`) for `session`.
    pub fn new(session: &'s Session, name: &str) -> Mutex<'s> {
        let (prefix, key) = own_key(name, session.lease());
        Mutex {
            session,
            prefix,
            key,
            revision: 0,
        }
    }

    /// Takes the lock, waiting (up to `timeout`, or forever) for the
    /// holders before this session.
    pub fn lock(&mut self, timeout: Option<Duration>) -> Result<(), RecipeError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let c = self.session.client();
        let (revision, _) = create_or_read(self.session, &self.key, b"")?;
        self.revision = revision;
        let (owner, _) = by_create(c, &self.prefix, true, 0)?;
        let owner_rev = owner.as_ref().map_or(0, |kv| kv.create_revision);
        if owner.is_none() || owner_rev == revision {
            return Ok(());
        }
        if let Err(e) = wait_deletes(c, &self.prefix, revision - 1, deadline) {
            // Give up our place rather than hold it unseen.
            let _ = self.unlock();
            return Err(e);
        }
        // The session may have expired while waiting: the key must still
        // be ours.
        let r = c.range(get_request(&self.key))?;
        if r.kvs.is_none_or(|k| k.is_empty()) {
            return Err(RecipeError::SessionExpired);
        }
        Ok(())
    }

    /// Releases the lock (deletes this session's key).
    pub fn unlock(&mut self) -> Result<(), RecipeError> {
        self.session
            .client()
            .delete_range(rpc::DeleteRangeRequestT {
                key: Some(self.key.clone()),
                ..Default::default()
            })?;
        self.revision = 0;
        Ok(())
    }

    /// The key this session holds (or waits with).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Its create revision (0 before `lock`).
    pub fn revision(&self) -> i64 {
        self.revision
    }
}
