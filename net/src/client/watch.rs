//! Watch streams on a [`BlockingClient`] (etcd's `Watch` service).
//!
//! A `WatchCreateRequest` sent with request id R opens a stream: every
//! `WatchResponse` of that watch comes back on R, the first one `created`,
//! the last one `canceled` (schemas/PROTOCOL.md, "Watches"). Any number of
//! watches share the connection with ordinary requests.
//!
//! The reader thread hands each stream's frames to a channel of
//! [`STREAM_BUFFER_RESPONSES`]; when a stream's owner does not read and
//! that channel is full, the reader waits, and the connection stops being
//! read: the server then buffers a bounded amount and lets the watch catch
//! up later from its history, so nothing is lost, but the connection's
//! other responses wait too. Give a watch you may not read promptly its
//! own client.

use std::time::Duration;

use cairn_schemas::rpc;
use crossbeam::channel::{bounded, Receiver, RecvTimeoutError};

use super::blocking::{lock, BlockingClient, Reply, Shared};
use super::typed::expect_watch;
use crate::codec::{decode_response, encode_request};
use crate::error::ClientError;

/// Responses a watch stream buffers on the client before the connection's
/// reader waits for its owner.
pub const STREAM_BUFFER_RESPONSES: usize = 1024;

/// One open watch. Iterate it for the watch's responses (events, progress
/// notifications); the iteration ends after the `canceled` response.
/// Dropping a stream that has not ended cancels the watch.
pub struct WatchStream<'c> {
    client: &'c BlockingClient,
    request_id: u64,
    watch_id: i64,
    rx: Receiver<Reply>,
    created: rpc::WatchResponseT,
    /// The created response was also the last (the server refused the
    /// watch): the iteration yields it once.
    refused: Option<rpc::WatchResponseT>,
    ended: bool,
}

/// Whether a stream frame is its stream's last: an error, or a
/// `WatchResponse` with `canceled` set.
fn ends_stream(payload: &[u8]) -> bool {
    match cairn_schemas::verify_response(payload) {
        Ok(resp) => match resp.body_as_watch_response() {
            Some(w) => w.canceled(),
            None => true,
        },
        Err(_) => true,
    }
}

/// Hands a frame on request id `id` to its stream, if one is open; called
/// by the reader thread for frames no single request waits for.
pub(super) fn dispatch(shared: &Shared, id: u64, payload: Vec<u8>) {
    let Some(tx) = lock(&shared.streams).get(&id).cloned() else {
        // A stream that ended or was dropped: late frames are dropped.
        return;
    };
    let last = ends_stream(&payload);
    if last {
        lock(&shared.streams).remove(&id);
    }
    // Blocks while the stream is full (see the module docs); fails once
    // the stream was dropped.
    if tx.send(Ok(payload)).is_err() {
        lock(&shared.streams).remove(&id);
    }
}

fn decode_watch(reply: Reply) -> Result<rpc::WatchResponseT, ClientError> {
    expect_watch(decode_response(&reply?)?)
}

impl BlockingClient {
    /// Opens a watch and waits (up to the request timeout) for the server
    /// to create it.
    pub fn watch(&self, req: rpc::WatchCreateRequestT) -> Result<WatchStream<'_>, ClientError> {
        let mut b = flatbuffers::FlatBufferBuilder::new();
        let payload = encode_request(
            &mut b,
            &rpc::RequestBodyT::WatchCreateRequest(Box::new(req)),
        );
        let id = self.next_request_id();
        let (tx, rx) = bounded(STREAM_BUFFER_RESPONSES);
        lock(&self.shared.streams).insert(id, tx);
        if let Err(e) = self.write_frame(id, payload) {
            lock(&self.shared.streams).remove(&id);
            return Err(e);
        }
        let first = match rx.recv_timeout(self.options().request_timeout) {
            Ok(reply) => decode_watch(reply),
            Err(RecvTimeoutError::Timeout) => Err(ClientError::Timeout),
            Err(RecvTimeoutError::Disconnected) => {
                Err(ClientError::Closed("connection closed".into()))
            }
        };
        let created = match first {
            Ok(c) => c,
            Err(e) => {
                lock(&self.shared.streams).remove(&id);
                return Err(e);
            }
        };
        let refused = created.canceled.then(|| created.clone());
        Ok(WatchStream {
            client: self,
            request_id: id,
            watch_id: created.watch_id,
            rx,
            created,
            refused,
            ended: false,
        })
    }

    /// Cancels watch `watch_id` of this connection; its stream then ends
    /// with a `canceled` response.
    pub fn watch_cancel(&self, watch_id: i64) -> Result<rpc::WatchResponseT, ClientError> {
        let body =
            rpc::RequestBodyT::WatchCancelRequest(Box::new(rpc::WatchCancelRequestT { watch_id }));
        expect_watch(self.call(&body)?)
    }

    /// Asks for a progress notification: answered (`watch_id` -1, the
    /// header's revision) once every watch of this connection has been
    /// sent all events up to that revision.
    pub fn watch_progress(&self) -> Result<rpc::WatchResponseT, ClientError> {
        let body = rpc::RequestBodyT::WatchProgressRequest(Box::default());
        expect_watch(self.call(&body)?)
    }
}

impl WatchStream<'_> {
    /// The id the server gave the watch (or the one asked for).
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// The request id the stream's responses come back on.
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// The `created` response (its header holds the revision the watch
    /// started at).
    pub fn created(&self) -> &rpc::WatchResponseT {
        &self.created
    }

    /// True once the stream yielded its last response.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Cancels the watch; its remaining responses, then the `canceled`
    /// one, can still be read.
    pub fn cancel(&self) -> Result<(), ClientError> {
        if self.ended || self.refused.is_some() {
            return Ok(());
        }
        self.client.watch_cancel(self.watch_id).map(|_| ())
    }

    /// The next response within `timeout`: `Ok(None)` once the stream
    /// ended, `Err(Timeout)` when nothing came.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<rpc::WatchResponseT>, ClientError> {
        if let Some(r) = self.refused.take() {
            self.ended = true;
            return Ok(Some(r));
        }
        if self.ended {
            return Ok(None);
        }
        let reply = match self.rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => return Err(ClientError::Timeout),
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                return Err(ClientError::Closed("connection closed".into()));
            }
        };
        match decode_watch(reply) {
            Ok(r) => {
                self.ended = r.canceled;
                Ok(Some(r))
            }
            Err(e) => {
                self.ended = true;
                Err(e)
            }
        }
    }
}

impl Iterator for WatchStream<'_> {
    type Item = Result<rpc::WatchResponseT, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.recv_timeout(Duration::from_secs(3600)) {
                Ok(Some(r)) => return Some(Ok(r)),
                Ok(None) => return None,
                Err(ClientError::Timeout) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl Drop for WatchStream<'_> {
    fn drop(&mut self) {
        lock(&self.client.shared.streams).remove(&self.request_id);
        if self.ended || self.refused.is_some() || self.client.is_closed() {
            return;
        }
        // Cancel without waiting: the answer finds no waiter and is dropped.
        let mut b = flatbuffers::FlatBufferBuilder::with_capacity(64);
        let body = rpc::RequestBodyT::WatchCancelRequest(Box::new(rpc::WatchCancelRequestT {
            watch_id: self.watch_id,
        }));
        let payload = encode_request(&mut b, &body);
        let id = self.client.next_request_id();
        let _ = self.client.write_frame(id, payload);
    }
}
