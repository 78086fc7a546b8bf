//! A synchronous client: callers on any thread share one pipelined
//! connection; a reader thread hands each response to its caller.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cairn_schemas::rpc;
use crossbeam::channel::{bounded, RecvTimeoutError, Sender};

use super::typed::*;
use super::ClientOptions;
use crate::codec::{decode_response, encode_request};
use crate::error::ClientError;
use crate::frame::{encode_frame, parse_head, Head, HEADER_LEN};

pub(super) type Reply = Result<Vec<u8>, ClientError>;

pub(super) struct Shared {
    pending: Mutex<HashMap<u64, Sender<Reply>>>,
    /// Open watch streams: every frame on their request id goes to the
    /// stream, until the one that ends it (see `super::watch`).
    pub(super) streams: Mutex<HashMap<u64, Sender<Reply>>>,
    closed: AtomicBool,
}

/// A blocking client over one TCP connection. Cheap to share by reference
/// between threads; requests from many threads are pipelined.
pub struct BlockingClient {
    stream: Mutex<TcpStream>,
    pub(super) shared: Arc<Shared>,
    next_id: AtomicU64,
    opts: ClientOptions,
    endpoint: SocketAddr,
    reader: Option<thread::JoinHandle<()>>,
}

impl BlockingClient {
    /// Connects to the first endpoint that answers, in order.
    pub fn connect(
        endpoints: &[SocketAddr],
        opts: ClientOptions,
    ) -> Result<BlockingClient, ClientError> {
        let mut last = String::from("no endpoints");
        for ep in endpoints {
            match TcpStream::connect_timeout(ep, opts.dial_timeout) {
                Ok(s) => return Self::from_stream(s, *ep, opts),
                Err(e) => last = e.to_string(),
            }
        }
        let list: Vec<String> = endpoints.iter().map(|e| e.to_string()).collect();
        Err(ClientError::Connect {
            endpoints: list.join(","),
            reason: last,
        })
    }

    fn from_stream(
        stream: TcpStream,
        endpoint: SocketAddr,
        opts: ClientOptions,
    ) -> Result<BlockingClient, ClientError> {
        stream.set_nodelay(true)?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let rd = stream.try_clone()?;
        let sh = shared.clone();
        let max = opts.max_response_bytes;
        let reader = thread::Builder::new()
            .name("cairn-client-reader".into())
            .spawn(move || read_loop(rd, sh, max))?;
        Ok(BlockingClient {
            stream: Mutex::new(stream),
            shared,
            next_id: AtomicU64::new(1),
            opts,
            endpoint,
            reader: Some(reader),
        })
    }

    /// The endpoint this client is connected to.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    /// Whether the connection is known to be closed (the server closed it
    /// or reading failed): a request sent now would fail without being sent.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// The client's options.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// A new request id.
    pub(super) fn next_request_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes one frame; the caller registered where its answer goes.
    pub(super) fn write_frame(&self, id: u64, payload: &[u8]) -> Result<(), ClientError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed("connection is closed".into()));
        }
        if payload.len() > u32::MAX as usize - 64 {
            return Err(ClientError::InvalidRequest("request is too large".into()));
        }
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        encode_frame(&mut frame, id, payload);
        lock(&self.stream)
            .write_all(&frame)
            .map_err(|e| ClientError::Closed(e.to_string()))
    }

    /// Sends one raw request payload (a FlatBuffers `Request`) and returns
    /// the raw response payload.
    pub fn call_raw(&self, payload: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.call_raw_within(payload, self.opts.request_timeout)
    }

    /// [`Self::call_raw`] with its own timeout instead of the client's.
    pub fn call_raw_within(
        &self,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed("connection is closed".into()));
        }
        if payload.len() > u32::MAX as usize - 64 {
            return Err(ClientError::InvalidRequest("request is too large".into()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = bounded(1);
        lock(&self.shared.pending).insert(id, tx);
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        encode_frame(&mut frame, id, payload);
        let write = lock(&self.stream).write_all(&frame);
        if let Err(e) = write {
            lock(&self.shared.pending).remove(&id);
            return Err(ClientError::Closed(e.to_string()));
        }
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                lock(&self.shared.pending).remove(&id);
                Err(ClientError::Timeout)
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(ClientError::Closed("connection closed".into()))
            }
        }
    }

    /// Sends one request and returns its response body (errors mapped).
    pub fn call(&self, body: &rpc::RequestBodyT) -> Result<rpc::ResponseBodyT, ClientError> {
        self.call_within(body, self.opts.request_timeout)
    }

    /// [`Self::call`] with its own timeout instead of the client's.
    pub fn call_within(
        &self,
        body: &rpc::RequestBodyT,
        timeout: Duration,
    ) -> Result<rpc::ResponseBodyT, ClientError> {
        let mut b = flatbuffers::FlatBufferBuilder::new();
        let payload = encode_request(&mut b, body);
        let resp = self.call_raw_within(payload, timeout)?;
        decode_response(&resp)
    }

    super::typed::sync_typed_calls!();
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        let _ = lock(&self.stream).shutdown(Shutdown::Both);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another caller panicked; the map is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_loop(mut stream: TcpStream, shared: Arc<Shared>, max_response_bytes: usize) {
    let reason = match read_frames(&mut stream, &shared, max_response_bytes) {
        Ok(()) => "server closed the connection".to_string(),
        Err(e) => e,
    };
    shared.closed.store(true, Ordering::Release);
    for (_, tx) in lock(&shared.pending).drain() {
        let _ = tx.send(Err(ClientError::Closed(reason.clone())));
    }
    let streams: Vec<Sender<Reply>> = lock(&shared.streams).drain().map(|(_, tx)| tx).collect();
    for tx in streams {
        // A stream whose reader stopped reading may be full: never block here.
        let _ = tx.try_send(Err(ClientError::Closed(reason.clone())));
    }
}

fn read_frames(stream: &mut TcpStream, shared: &Shared, max: usize) -> Result<(), String> {
    let mut head = [0u8; HEADER_LEN];
    loop {
        if !read_exact_or_eof(stream, &mut head)? {
            return Ok(());
        }
        let (id, len) = match parse_head(&head) {
            Head::Frame {
                request_id,
                payload_len,
            } => (request_id, payload_len),
            _ => return Err("invalid frame from server".into()),
        };
        if len > max {
            return Err(format!(
                "response of {len} bytes exceeds the client limit of {max}"
            ));
        }
        let mut payload = vec![0u8; len];
        if !read_exact_or_eof(stream, &mut payload)? {
            return Err("connection closed mid-frame".into());
        }
        if let Some(tx) = lock(&shared.pending).remove(&id) {
            let _ = tx.send(Ok(payload));
            continue;
        }
        super::watch::dispatch(shared, id, payload);
    }
}

/// Ok(false) on a clean EOF before the first byte.
fn read_exact_or_eof(stream: &mut TcpStream, buf: &mut [u8]) -> Result<bool, String> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err("connection closed mid-frame".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(true)
}
