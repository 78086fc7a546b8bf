//! One client connection: a reader loop that frames and verifies requests,
//! and a writer task that drains the [`ResponseSink`]'s buffer.

use std::rc::Rc;

use cairn_schemas::rpc::ErrorCode;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt, ReadHalf};
use glommio::net::TcpStream;

use super::sink::{Outbox, ResponseSink};
use super::Handler;
use crate::frame::{parse_head, Head, HEADER_LEN};

/// Limits applied to every client frame.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Largest request payload served (etcd's `--max-request-bytes`);
    /// larger frames get "etcdserver: request is too large".
    pub max_request_bytes: usize,
    /// Frames announcing more than this are not skipped but end the
    /// connection: no client sends them, garbage does.
    pub max_frame_bytes: usize,
}

impl ServerLimits {
    pub fn new(max_request_bytes: usize) -> ServerLimits {
        ServerLimits {
            max_request_bytes,
            max_frame_bytes: (max_request_bytes.saturating_mul(8)).max(64 << 20),
        }
    }
}

const READ_CHUNK_BYTES: usize = 64 << 10;

/// Requests one connection may have unanswered; past it the connection is
/// not read until responses go out (bounds the memory a client that
/// pipelines without end, or stops reading, can make the server hold).
pub const MAX_INFLIGHT_PER_CONNECTION: usize = 4096;

/// Serves one connection until the client closes it or breaks the protocol.
pub async fn serve_connection(stream: TcpStream, handler: Rc<dyn Handler>, limits: ServerLimits) {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = futures_lite::io::split(stream);
    let outbox = Rc::new(Outbox::default());
    let sink = ResponseSink {
        outbox: outbox.clone(),
    };
    let writer_outbox = outbox.clone();
    let writer = glommio::spawn_local(async move {
        let mut out = Vec::with_capacity(READ_CHUNK_BYTES);
        while writer_outbox.next_batch(&mut out).await {
            if wr.write_all(&out).await.is_err() {
                writer_outbox.close();
                break;
            }
            writer_outbox.written();
            out.clear();
            if writer_outbox.is_finishing() {
                // The reader stopped; still flush what handlers queued.
                continue;
            }
        }
        let _ = wr.close().await;
    });
    let why = read_loop(rd, &*handler, &sink, limits).await;
    if let Some(why) = why {
        tracing::debug!(reason = %why, "closing client connection");
    }
    // Nothing more will be read: the handler drops what it keeps for this
    // connection (its watches) before the writer drains.
    handler.connection_closed(&sink);
    outbox.finish();
    writer.await;
}

/// Returns why the connection ended abnormally, or None on a clean close.
async fn read_loop(
    mut rd: ReadHalf<TcpStream>,
    handler: &dyn Handler,
    sink: &ResponseSink,
    limits: ServerLimits,
) -> Option<String> {
    let mut buf: Vec<u8> = vec![0; READ_CHUNK_BYTES];
    let mut filled = 0usize;
    // Bytes of an oversized frame still to discard.
    let mut skip = 0usize;
    loop {
        let mut start = 0usize;
        loop {
            if skip > 0 {
                let n = skip.min(filled - start);
                skip -= n;
                start += n;
                if skip > 0 {
                    break;
                }
            }
            match parse_head(&buf[start..filled]) {
                Head::NeedHeader => break,
                Head::Invalid { len } => {
                    return Some(format!("invalid frame length {len}"));
                }
                Head::Frame {
                    request_id,
                    payload_len,
                } => {
                    if sink.outbox.inflight() >= MAX_INFLIGHT_PER_CONNECTION {
                        break;
                    }
                    if payload_len > limits.max_request_bytes {
                        sink.outbox.begin_request();
                        sink.send_error(
                            request_id,
                            ErrorCode::RequestTooLarge,
                            "etcdserver: request is too large",
                            0,
                        );
                        if payload_len > limits.max_frame_bytes {
                            return Some(format!("frame of {payload_len} bytes"));
                        }
                        start += HEADER_LEN;
                        skip = payload_len;
                        continue;
                    }
                    let end = start + HEADER_LEN + payload_len;
                    if end > filled {
                        if HEADER_LEN + payload_len > buf.len() {
                            buf.resize(HEADER_LEN + payload_len, 0);
                        }
                        break;
                    }
                    let payload = &buf[start + HEADER_LEN..end];
                    sink.outbox.begin_request();
                    match cairn_schemas::verify_request(payload) {
                        Ok(req) => handler.handle(request_id, req, payload, sink),
                        Err(e) => {
                            let msg = format!("malformed request: {e}");
                            sink.send_error(request_id, ErrorCode::InvalidArgument, &msg, 0);
                            return Some(msg);
                        }
                    }
                    start = end;
                }
            }
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if sink.is_closed() {
            return Some("write side closed".into());
        }
        if sink.outbox.inflight() >= MAX_INFLIGHT_PER_CONNECTION {
            // Frames may be waiting in the buffer: handle them before reading.
            sink.outbox.below(MAX_INFLIGHT_PER_CONNECTION).await;
            continue;
        }
        match rd.read(&mut buf[filled..]).await {
            Ok(0) => {
                return if filled > 0 || skip > 0 {
                    Some("connection closed mid-frame".into())
                } else {
                    None
                };
            }
            Ok(n) => filled += n,
            Err(e) => return Some(format!("read failed: {e}")),
        }
    }
}
