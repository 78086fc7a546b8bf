//! An async client for code running on a glommio executor. Any number of
//! tasks on that executor share one pipelined connection: a caller appends
//! its frame to the write buffer, the first caller to find no flush in
//! progress writes out everything buffered, and a reader task hands each
//! response to its waiting caller.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use cairn_schemas::rpc;
use futures_channel::oneshot;
use futures_lite::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use glommio::net::TcpStream;
use std::time::{Duration, Instant};

use super::typed::*;
use super::ClientOptions;
use crate::codec::{decode_response, encode_request};
use crate::error::ClientError;
use crate::frame::{encode_frame, FrameError, FrameReader};

type Reply = Result<Vec<u8>, ClientError>;

/// What a stream's frames are handed to, on the reader task, in order.
/// Returns false to close the stream (its later frames are dropped).
pub type StreamHandler = Box<dyn FnMut(&[u8]) -> bool>;

struct Inner {
    writer: RefCell<Option<WriteHalf<TcpStream>>>,
    wbuf: RefCell<Vec<u8>>,
    flushing: Cell<bool>,
    /// Requests in flight: where the reply goes and when it times out.
    pending: RefCell<HashMap<u64, (oneshot::Sender<Reply>, Instant)>>,
    /// Open streams (watches): every frame on their request id.
    streams: RefCell<HashMap<u64, StreamHandler>>,
    next_id: Cell<u64>,
    closed: RefCell<Option<String>>,
    builder: RefCell<flatbuffers::FlatBufferBuilder<'static>>,
    fd: i32,
    opts: ClientOptions,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Wakes the reader task (it holds the read half) so it ends.
        // SAFETY: fd belongs to the stream whose halves are still alive here.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
    }
}

/// An async client over one connection; clone it to share between tasks of
/// the same executor.
#[derive(Clone)]
pub struct AsyncClient {
    inner: Rc<Inner>,
}

impl AsyncClient {
    /// Connects to the first endpoint that answers, in order.
    pub async fn connect(
        endpoints: &[SocketAddr],
        opts: ClientOptions,
    ) -> Result<AsyncClient, ClientError> {
        let mut last = String::from("no endpoints");
        for ep in endpoints {
            match TcpStream::connect_timeout(ep, opts.dial_timeout).await {
                Ok(s) => return Self::from_stream(s, opts),
                Err(e) => last = e.to_string(),
            }
        }
        let list: Vec<String> = endpoints.iter().map(|e| e.to_string()).collect();
        Err(ClientError::Connect {
            endpoints: list.join(","),
            reason: last,
        })
    }

    fn from_stream(stream: TcpStream, opts: ClientOptions) -> Result<AsyncClient, ClientError> {
        stream
            .set_nodelay(true)
            .map_err(|e| ClientError::Io(e.into()))?;
        let fd = stream.as_raw_fd();
        let (rd, wr) = futures_lite::io::split(stream);
        let inner = Rc::new(Inner {
            writer: RefCell::new(Some(wr)),
            wbuf: RefCell::new(Vec::with_capacity(64 << 10)),
            flushing: Cell::new(false),
            pending: RefCell::new(HashMap::new()),
            streams: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            closed: RefCell::new(None),
            builder: RefCell::new(flatbuffers::FlatBufferBuilder::with_capacity(1024)),
            fd,
            opts,
        });
        let weak = Rc::downgrade(&inner);
        let max = inner.opts.max_response_bytes;
        glommio::spawn_local(async move {
            let reason = read_loop(rd, &weak, max).await;
            if let Some(inner) = weak.upgrade() {
                inner.fail_all(reason);
            }
        })
        .detach();
        glommio::spawn_local(expire_timed_out(Rc::downgrade(&inner))).detach();
        Ok(AsyncClient { inner })
    }

    /// Sends one raw request payload and returns the raw response payload.
    pub async fn call_raw(&self, payload: &[u8]) -> Result<Vec<u8>, ClientError> {
        let inner = &self.inner;
        if let Some(reason) = inner.closed.borrow().as_ref() {
            return Err(ClientError::Closed(reason.clone()));
        }
        if payload.len() > u32::MAX as usize - 64 {
            return Err(ClientError::InvalidRequest("request is too large".into()));
        }
        let id = inner.next_id.get();
        inner.next_id.set(id + 1);
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + inner.opts.request_timeout;
        inner.pending.borrow_mut().insert(id, (tx, deadline));
        encode_frame(&mut inner.wbuf.borrow_mut(), id, payload);
        if !inner.flushing.get() {
            inner.flush().await;
        }
        // No timer per request: `expire_timed_out` answers late ones.
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Closed("connection closed".into())),
        }
    }

    /// Sends a request that opens a stream (a `WatchCreateRequest`): every
    /// frame that comes back on its request id, the first included, goes
    /// to `on_frame` on the connection's reader task, until it returns
    /// false. Returns the request id. The handler runs on the reader's
    /// path: it must be quick and never wait.
    pub async fn open_stream_raw(
        &self,
        payload: &[u8],
        on_frame: StreamHandler,
    ) -> Result<u64, ClientError> {
        let inner = &self.inner;
        if let Some(reason) = inner.closed.borrow().as_ref() {
            return Err(ClientError::Closed(reason.clone()));
        }
        let id = inner.next_id.get();
        inner.next_id.set(id + 1);
        inner.streams.borrow_mut().insert(id, on_frame);
        encode_frame(&mut inner.wbuf.borrow_mut(), id, payload);
        if !inner.flushing.get() {
            inner.flush().await;
        }
        Ok(id)
    }

    /// Sends one request built with the object API.
    pub async fn call(&self, body: &rpc::RequestBodyT) -> Result<rpc::ResponseBodyT, ClientError> {
        let payload = {
            let mut b = self.inner.builder.borrow_mut();
            encode_request(&mut b, body).to_vec()
        };
        let resp = self.call_raw(&payload).await?;
        decode_response(&resp)
    }

    pub async fn range(&self, r: rpc::RangeRequestT) -> Result<rpc::RangeResponseT, ClientError> {
        expect_range(
            self.call(&rpc::RequestBodyT::RangeRequest(Box::new(r)))
                .await?,
        )
    }
    pub async fn put(&self, r: rpc::PutRequestT) -> Result<rpc::PutResponseT, ClientError> {
        expect_put(
            self.call(&rpc::RequestBodyT::PutRequest(Box::new(r)))
                .await?,
        )
    }
    pub async fn delete_range(
        &self,
        r: rpc::DeleteRangeRequestT,
    ) -> Result<rpc::DeleteRangeResponseT, ClientError> {
        expect_delete_range(
            self.call(&rpc::RequestBodyT::DeleteRangeRequest(Box::new(r)))
                .await?,
        )
    }
    pub async fn txn(&self, r: rpc::TxnRequestT) -> Result<rpc::TxnResponseT, ClientError> {
        expect_txn(
            self.call(&rpc::RequestBodyT::TxnRequest(Box::new(r)))
                .await?,
        )
    }
    pub async fn compact(
        &self,
        r: rpc::CompactionRequestT,
    ) -> Result<rpc::CompactionResponseT, ClientError> {
        expect_compaction(
            self.call(&rpc::RequestBodyT::CompactionRequest(Box::new(r)))
                .await?,
        )
    }
    pub async fn alarm(&self, r: rpc::AlarmRequestT) -> Result<rpc::AlarmResponseT, ClientError> {
        expect_alarm(
            self.call(&rpc::RequestBodyT::AlarmRequest(Box::new(r)))
                .await?,
        )
    }
    pub async fn status(&self) -> Result<rpc::StatusResponseT, ClientError> {
        expect_status(
            self.call(&rpc::RequestBodyT::StatusRequest(Box::default()))
                .await?,
        )
    }
    /// The cluster's members; `linearizable` asks for the leader's view.
    pub async fn member_list(
        &self,
        linearizable: bool,
    ) -> Result<rpc::MemberListResponseT, ClientError> {
        expect_member_list(self.call(&member_list_request(linearizable)).await?)
    }
    /// Adds a member with `peer_urls` (a learner if `is_learner`).
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<rpc::MemberAddResponseT, ClientError> {
        expect_member_add(
            self.call(&member_add_request(peer_urls, is_learner))
                .await?,
        )
    }
    pub async fn member_remove(&self, id: u64) -> Result<rpc::MemberRemoveResponseT, ClientError> {
        expect_member_remove(self.call(&member_remove_request(id)).await?)
    }
    /// Replaces member `id`'s peer URLs.
    pub async fn member_update(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> Result<rpc::MemberUpdateResponseT, ClientError> {
        expect_member_update(self.call(&member_update_request(id, peer_urls)).await?)
    }
    /// Promotes learner `id` to a voting member.
    pub async fn member_promote(
        &self,
        id: u64,
    ) -> Result<rpc::MemberPromoteResponseT, ClientError> {
        expect_member_promote(self.call(&member_promote_request(id)).await?)
    }
    /// Asks the leader (this endpoint must be it) to hand leadership to
    /// `target_id`.
    pub async fn move_leader(
        &self,
        target_id: u64,
    ) -> Result<rpc::MoveLeaderResponseT, ClientError> {
        expect_move_leader(self.call(&move_leader_request(target_id)).await?)
    }
}

impl Inner {
    /// Writes out everything buffered, including frames appended while a
    /// write is in flight.
    async fn flush(&self) {
        self.flushing.set(true);
        // Let the other tasks that are ready now (typically every client a
        // batch of responses just woke) append their frames first, so that
        // one send carries them all: on loopback each send also runs the
        // receiver's TCP path, so sends per request dominate the CPU cost.
        futures_lite::future::yield_now().await;
        let mut out = Vec::new();
        let Some(mut writer) = self.writer.borrow_mut().take() else {
            self.flushing.set(false);
            return;
        };
        loop {
            std::mem::swap(&mut out, &mut self.wbuf.borrow_mut());
            if out.is_empty() {
                break;
            }
            if let Err(e) = writer.write_all(&out).await {
                self.fail_all(format!("write failed: {e}"));
                break;
            }
            out.clear();
        }
        // Keep the larger buffer for the next round.
        let mut wbuf = self.wbuf.borrow_mut();
        if wbuf.is_empty() && wbuf.capacity() < out.capacity() {
            std::mem::swap(&mut *wbuf, &mut out);
        }
        *self.writer.borrow_mut() = Some(writer);
        self.flushing.set(false);
    }

    fn fail_all(&self, reason: String) {
        *self.closed.borrow_mut() = Some(reason.clone());
        for (_, (tx, _)) in self.pending.borrow_mut().drain() {
            let _ = tx.send(Err(ClientError::Closed(reason.clone())));
        }
    }
}

/// Answers requests past their deadline with `Timeout`, checking a few
/// times per timeout period; one task per connection instead of a timer
/// per request. Ends when the client is dropped.
async fn expire_timed_out(inner: std::rc::Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(i) => {
            (i.opts.request_timeout / 8).clamp(Duration::from_millis(1), Duration::from_millis(250))
        }
        None => return,
    };
    loop {
        glommio::timer::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.borrow().is_some() {
            return;
        }
        let now = Instant::now();
        let mut pending = inner.pending.borrow_mut();
        let late: Vec<u64> = pending
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some((tx, _)) = pending.remove(&id) {
                let _ = tx.send(Err(ClientError::Timeout));
            }
        }
    }
}

async fn read_loop(rd: ReadHalf<TcpStream>, inner: &std::rc::Weak<Inner>, max: usize) -> String {
    let mut reader = FrameReader::new(rd, max);
    loop {
        let (request_id, payload) = match reader.next().await {
            Ok(frame) => frame,
            Err(FrameError::Closed) => return "server closed the connection".into(),
            Err(FrameError::TooLarge { payload_bytes, .. }) => {
                return format!(
                    "response of {payload_bytes} bytes exceeds the client limit of {max}"
                )
            }
            Err(FrameError::InvalidLength { .. }) => return "invalid frame from server".into(),
            Err(e) => return e.to_string(),
        };
        let Some(inner) = inner.upgrade() else {
            return "client dropped".into();
        };
        let tx = inner.pending.borrow_mut().remove(&request_id);
        if let Some((tx, _)) = tx {
            let _ = tx.send(Ok(payload.to_vec()));
            continue;
        }
        // Taken out while it runs, so that it may open other streams.
        let handler = inner.streams.borrow_mut().remove(&request_id);
        if let Some(mut on_frame) = handler {
            if on_frame(payload) {
                inner.streams.borrow_mut().insert(request_id, on_frame);
            }
        }
    }
}
