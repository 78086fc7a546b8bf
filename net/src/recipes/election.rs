//! Leader election (clientv3's `concurrency.Election`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cairn_schemas::rpc;

use super::mutex::own_key;
use super::wait::{by_create, create_or_read, next_events, wait_deletes};
use super::{RecipeError, Session};
use crate::client::{prefix_range_end, put_request};
use crate::BlockingClient;

/// One session's candidacy in the election named by a key prefix.
pub struct Election<'s> {
    session: &'s Session,
    prefix: Vec<u8>,
    key: Vec<u8>,
    /// Create revision of `key` while campaigning or leading (0: neither).
    revision: i64,
}

fn if_ours(key: &[u8], revision: i64) -> Vec<rpc::CompareT> {
    vec![rpc::CompareT {
        result: rpc::CompareResult::Equal,
        target: rpc::CompareTarget::Create,
        key: Some(key.to_vec()),
        create_revision: revision,
        ..Default::default()
    }]
}

impl<'s> Election<'s> {
    pub fn new(session: &'s Session, name: &str) -> Election<'s> {
        let (prefix, key) = own_key(name, session.lease());
        Election {
            session,
            prefix,
            key,
            revision: 0,
        }
    }

    /// Puts this session's candidacy with `value` and waits (up to
    /// `timeout`, or forever) until it leads.
    pub fn campaign(&mut self, value: &[u8], timeout: Option<Duration>) -> Result<(), RecipeError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let (revision, existing) = create_or_read(self.session, &self.key, value)?;
        self.revision = revision;
        if existing.is_some_and(|kv| kv.value.as_deref() != Some(value)) {
            self.proclaim(value)?;
        }
        if let Err(e) = wait_deletes(self.session.client(), &self.prefix, revision - 1, deadline) {
            let _ = self.resign();
            return Err(e);
        }
        Ok(())
    }

    /// Changes the leader's value without a new election.
    pub fn proclaim(&mut self, value: &[u8]) -> Result<(), RecipeError> {
        if self.revision == 0 {
            return Err(RecipeError::NotLeader);
        }
        let r = self.session.client().txn(rpc::TxnRequestT {
            compare: Some(if_ours(&self.key, self.revision)),
            success: Some(vec![rpc::RequestOpT {
                op: rpc::RequestOpKindT::PutRequest(Box::new(rpc::PutRequestT {
                    lease: self.session.lease(),
                    ..put_request(&self.key, value)
                })),
            }]),
            failure: None,
        })?;
        if !r.succeeded {
            self.revision = 0;
            return Err(RecipeError::NotLeader);
        }
        Ok(())
    }

    /// Gives up leadership (or the candidacy).
    pub fn resign(&mut self) -> Result<(), RecipeError> {
        if self.revision == 0 {
            return Ok(());
        }
        self.session.client().txn(rpc::TxnRequestT {
            compare: Some(if_ours(&self.key, self.revision)),
            success: Some(vec![rpc::RequestOpT {
                op: rpc::RequestOpKindT::DeleteRangeRequest(Box::new(rpc::DeleteRangeRequestT {
                    key: Some(self.key.clone()),
                    ..Default::default()
                })),
            }]),
            failure: None,
        })?;
        self.revision = 0;
        Ok(())
    }

    /// This session's key in the election.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The current leader's key-value.
    pub fn leader(&self) -> Result<rpc::KeyValueT, RecipeError> {
        leader(self.session.client(), &self.prefix)
    }
}

/// The leader of the election with key prefix `prefix/` (its oldest key).
fn leader(c: &BlockingClient, prefix: &[u8]) -> Result<rpc::KeyValueT, RecipeError> {
    by_create(c, prefix, true, 0)?
        .0
        .ok_or(RecipeError::NoLeader)
}

/// Calls `f` with the leader of election `name` and with each change of
/// it (a new leader, or a proclaimed value), as clientv3's `Observe`,
/// until `f` returns false or `stop` is set (checked twice a second).
pub fn observe(
    c: &BlockingClient,
    name: &str,
    stop: &AtomicBool,
    mut f: impl FnMut(&rpc::KeyValueT) -> bool,
) -> Result<(), RecipeError> {
    let prefix = format!("{name}/").into_bytes();
    let stopped = || stop.load(Ordering::SeqCst);
    loop {
        let (first, mut revision) = by_create(c, &prefix, true, 0)?;
        let kv = match first {
            Some(kv) => kv,
            None => {
                // Nobody leads: the first key put under the prefix will.
                let mut w = c.watch(rpc::WatchCreateRequestT {
                    key: Some(prefix.clone()),
                    range_end: Some(prefix_range_end(&prefix)),
                    start_revision: revision + 1,
                    filters: Some(vec![rpc::WatchFilter::NoDelete]),
                    ..Default::default()
                })?;
                loop {
                    let Some(events) = next_events(&mut w, &stopped, None)? else {
                        return Ok(());
                    };
                    if let Some(kv) = events.into_iter().find_map(|e| e.kv) {
                        revision = kv.mod_revision;
                        break *kv;
                    }
                }
            }
        };
        if !f(&kv) {
            return Ok(());
        }
        // Follow the leader's key until it is deleted.
        let key = kv.key.clone().unwrap_or_default();
        let mut w = c.watch(rpc::WatchCreateRequestT {
            key: Some(key),
            start_revision: revision.max(kv.mod_revision) + 1,
            ..Default::default()
        })?;
        'follow: loop {
            let Some(events) = next_events(&mut w, &stopped, None)? else {
                return Ok(());
            };
            for e in events {
                if e.type_ == rpc::EventType::Delete {
                    break 'follow;
                }
                if let Some(kv) = e.kv {
                    if !f(&kv) {
                        return Ok(());
                    }
                }
            }
        }
    }
}
