//! Where a connection's responses go: an output buffer drained by the
//! connection's writer task, so many responses share one socket write.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use cairn_schemas::rpc;

use crate::codec::encode_error;
use crate::frame::encode_frame;

#[derive(Default)]
pub(crate) struct Outbox {
    buf: RefCell<Vec<u8>>,
    waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
    /// Set once the reader stopped: the writer ends after draining.
    finishing: Cell<bool>,
    /// Requests read but not answered yet (each gets exactly one response).
    inflight: Cell<usize>,
    /// The reader, waiting for `inflight` to drop below the limit.
    reader_waker: RefCell<Option<Waker>>,
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
    /// Queues the response payload for `request_id`.
    pub fn send(&self, request_id: u64, payload: &[u8]) {
        self.outbox.end_request();
        if self.outbox.closed.get() {
            return;
        }
        encode_frame(&mut self.outbox.buf.borrow_mut(), request_id, payload);
        self.outbox.wake();
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
