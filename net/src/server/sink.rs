//! Where a connection's responses go: an output buffer drained by the
//! connection's writer task, so many responses share one socket write.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};

use cairn_schemas::rpc;

use crate::codec::encode_error;
use crate::frame::encode_frame;

/// Connection ids, unique in the process (for handlers that keep state
/// per connection, such as watches).
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Outbox {
    /// This connection's id ([`ResponseSink::connection_id`]).
    id: u64,
    buf: RefCell<Vec<u8>>,
    /// Bytes the writer took from `buf` and is writing now.
    writing: Cell<usize>,
    waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
    /// Set once the reader stopped: the writer ends after draining.
    finishing: Cell<bool>,
    /// Requests read but not answered yet (each gets exactly one response).
    inflight: Cell<usize>,
    /// The reader, waiting for `inflight` to drop below the limit.
    reader_waker: RefCell<Option<Waker>>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            buf: RefCell::default(),
            writing: Cell::new(0),
            waker: RefCell::default(),
            closed: Cell::new(false),
            finishing: Cell::new(false),
            inflight: Cell::new(0),
            reader_waker: RefCell::default(),
        }
    }
}

impl Outbox {
    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits for buffered bytes and swaps them into `out`. Returns false
    /// when the connection is done and nothing is left to write.
    pub(crate) async fn next_batch(&self, out: &mut Vec<u8>) -> bool {
        poll_fn(|cx| {
            if self.closed.get() {
                return Poll::Ready(false);
            }
            let mut buf = self.buf.borrow_mut();
            if !buf.is_empty() {
                std::mem::swap(&mut *buf, out);
                self.writing.set(out.len());
                return Poll::Ready(true);
            }
            if self.finishing.get() {
                return Poll::Ready(false);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The writer finished writing the batch `next_batch` gave it.
    pub(crate) fn written(&self) {
        self.writing.set(0);
    }

    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.wake();
    }

    pub(crate) fn finish(&self) {
        self.finishing.set(true);
        self.wake();
    }

    pub(crate) fn is_finishing(&self) -> bool {
        self.finishing.get()
    }

    /// Counts a request whose response is still to come.
    pub(crate) fn begin_request(&self) {
        self.inflight.set(self.inflight.get() + 1);
    }

    pub(crate) fn inflight(&self) -> usize {
        self.inflight.get()
    }

    fn end_request(&self) {
        let n = self.inflight.get().saturating_sub(1);
        self.inflight.set(n);
        if let Some(w) = self.reader_waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits until fewer than `limit` requests are unanswered (or the
    /// connection closed).
    pub(crate) async fn below(&self, limit: usize) {
        poll_fn(|cx| {
            if self.inflight.get() < limit || self.closed.get() {
                return Poll::Ready(());
            }
            *self.reader_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// A handle for sending responses on one connection. Cheap to clone; a
/// response sent after the connection closed is dropped.
#[derive(Clone)]
pub struct ResponseSink {
    pub(crate) outbox: Rc<Outbox>,
}

thread_local! {
    static ERROR_BUILDER: RefCell<flatbuffers::FlatBufferBuilder<'static>> =
        RefCell::new(flatbuffers::FlatBufferBuilder::with_capacity(256));
}

impl ResponseSink {
    /// Queues the response payload for `request_id`: its one response, or
    /// the first of a stream (see [`Self::push`]). Either way the request
    /// stops counting against the connection's in-flight bound.
    pub fn send(&self, request_id: u64, payload: &[u8]) {
        self.outbox.end_request();
        self.push(request_id, payload);
    }

    /// Queues one more frame of a stream on `request_id` (a watch's
    /// events) after [`Self::send`] answered the request. Streams do not
    /// count against the in-flight bound: whoever pushes bounds them, with
    /// [`Self::queued_bytes`] for a client that does not read.
    pub fn push(&self, request_id: u64, payload: &[u8]) {
        if self.outbox.closed.get() {
            return;
        }
        encode_frame(&mut self.outbox.buf.borrow_mut(), request_id, payload);
        self.outbox.wake();
    }

    /// Bytes queued on this connection and not yet written to the socket
    /// (what a client that stops reading makes the server hold).
    pub fn queued_bytes(&self) -> usize {
        self.outbox.buf.borrow().len() + self.outbox.writing.get()
    }

    /// This connection's id, unique in the process.
    pub fn connection_id(&self) -> u64 {
        self.outbox.id
    }

    /// Queues an `Error` response.
    pub fn send_error(
        &self,
        request_id: u64,
        code: rpc::ErrorCode,
        message: &str,
        compact_revision: i64,
    ) {
        ERROR_BUILDER.with(|b| {
            let mut b = b.borrow_mut();
            let payload = encode_error(&mut b, code, message, compact_revision);
            self.send(request_id, payload);
        });
    }

    /// True once the connection is gone (responses would be dropped).
    pub fn is_closed(&self) -> bool {
        self.outbox.closed.get()
    }
}
