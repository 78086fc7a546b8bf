//! Several endpoints: connect to the first that accepts, and move a failed
//! request to the next endpoint when resending it cannot apply it twice.
//!
//! The policy (also in `schemas/PROTOCOL.md`, "Client stub"):
//!
//! - Connecting tries the endpoints in order, starting after the one that
//!   failed last, and takes the first that accepts a TCP connection. A
//!   request whose connection could not be established was never sent, so
//!   any request — a write too — goes to the next endpoint.
//! - Once sent, only reads are resent ([`may_resend`]): `Range`, `Status`,
//!   `MemberList`, `Alarm` with action `Get`, and the lease calls that
//!   grant and revoke nothing (keep-alive, time-to-live, leases): a
//!   renewal applied twice only renews twice. They are resent after a
//!   broken connection or an `Unavailable`, `NoLeader` or `Timeout` answer
//!   ([`is_retryable`]), to the next endpoint, while the request's time
//!   budget (the client's `request_timeout`) lasts and at most once per
//!   endpoint.
//! - Writes (put, delete, txn, compaction, member changes, move-leader,
//!   alarm changes, defragment) and snapshot chunks are never resent once
//!   written to a connection: a broken connection or a timeout leaves it
//!   unknown whether they applied, and applying a put or a member add twice
//!   is visible. Their error goes back to the caller.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_schemas::rpc;

use super::typed::*;
use super::{BlockingClient, ClientOptions};
use crate::error::ClientError;

/// Whether `body` may be sent again after it was sent once and failed:
/// true only for requests that change nothing.
pub fn may_resend(body: &rpc::RequestBodyT) -> bool {
    match body {
        rpc::RequestBodyT::RangeRequest(_)
        | rpc::RequestBodyT::StatusRequest(_)
        | rpc::RequestBodyT::MemberListRequest(_)
        | rpc::RequestBodyT::LeaseKeepAliveRequest(_)
        | rpc::RequestBodyT::LeaseTimeToLiveRequest(_)
        | rpc::RequestBodyT::LeaseLeasesRequest(_) => true,
        rpc::RequestBodyT::AlarmRequest(a) => a.action == rpc::AlarmAction::Get,
        _ => false,
    }
}

/// Whether `e` says this endpoint could not serve the request, so another
/// endpoint may: the connection broke or could not be made, or the member
/// answered that it cannot serve now (no leader, shutting down, timed out).
pub fn is_retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Closed(_) | ClientError::Io(_) | ClientError::Connect { .. } => true,
        ClientError::Server { code, .. } => matches!(
            *code,
            rpc::ErrorCode::Unavailable | rpc::ErrorCode::NoLeader | rpc::ErrorCode::Timeout
        ),
        ClientError::Timeout | ClientError::Protocol(_) | ClientError::InvalidRequest(_) => false,
    }
}

struct Current {
    client: Option<BlockingClient>,
    /// Index in `endpoints` of `client`, or of the next endpoint to try.
    index: usize,
}

/// A blocking client over a list of endpoints with the failover policy
/// above. One connection at a time; it is replaced when it fails.
pub struct FailoverClient {
    endpoints: Vec<SocketAddr>,
    opts: ClientOptions,
    current: Mutex<Current>,
}

impl FailoverClient {
    /// Connects to the first endpoint that accepts a connection.
    pub fn connect(
        endpoints: &[SocketAddr],
        opts: ClientOptions,
    ) -> Result<FailoverClient, ClientError> {
        let c = FailoverClient {
            endpoints: endpoints.to_vec(),
            opts,
            current: Mutex::new(Current {
                client: None,
                index: 0,
            }),
        };
        c.connected(&mut c.lock())?;
        Ok(c)
    }

    /// The endpoint the current connection goes to, if connected.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.lock().client.as_ref().map(|c| c.endpoint())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        // A poisoned lock only means a caller panicked; the state is valid.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ensures `cur` holds an open connection: keeps the current one, or
    /// tries every endpoint once starting at `cur.index`.
    fn connected<'c>(&self, cur: &'c mut Current) -> Result<&'c BlockingClient, ClientError> {
        if cur.client.as_ref().is_some_and(|c| c.is_closed()) {
            cur.client = None;
            cur.index += 1;
        }
        if cur.client.is_none() {
            let n = self.endpoints.len();
            let order: Vec<SocketAddr> = (0..n)
                .map(|i| self.endpoints[(cur.index + i) % n.max(1)])
                .collect();
            let client = BlockingClient::connect(&order, self.opts.clone())?;
            let at = order.iter().position(|a| *a == client.endpoint());
            cur.index = (cur.index + at.unwrap_or(0)) % n.max(1);
            cur.client = Some(client);
        }
        match cur.client.as_ref() {
            Some(c) => Ok(c),
            None => unreachable!("a client was just stored"),
        }
    }

    /// Sends one request with the failover policy; returns its body.
    pub fn call(&self, body: &rpc::RequestBodyT) -> Result<rpc::ResponseBodyT, ClientError> {
        let deadline = Instant::now() + self.opts.request_timeout;
        let resend = may_resend(body);
        let mut cur = self.lock();
        // Bound: one attempt per endpoint.
        let mut attempts = 0usize;
        loop {
            attempts += 1;
            let (result, endpoint) = {
                let client = self.connected(&mut cur)?;
                let left = deadline.saturating_duration_since(Instant::now());
                let r = client.call_within(body, left.max(Duration::from_millis(1)));
                (r, client.endpoint())
            };
            match result {
                Err(e)
                    if resend
                        && is_retryable(&e)
                        && attempts < self.endpoints.len()
                        && Instant::now() < deadline =>
                {
                    tracing::debug!(%endpoint, error = %e, "resending a read to the next endpoint");
                    cur.client = None;
                    cur.index += 1;
                }
                other => return other,
            }
        }
    }

    super::typed::sync_typed_calls!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use crate::codec::encode_error;
    use crate::frame::{encode_frame, parse_head, Head, HEADER_LEN};

    fn alarm(action: rpc::AlarmAction) -> rpc::RequestBodyT {
        rpc::RequestBodyT::AlarmRequest(Box::new(rpc::AlarmRequestT {
            action,
            ..Default::default()
        }))
    }

    #[test]
    fn only_reads_are_resent() {
        use rpc::RequestBodyT as B;
        let reads = [
            B::RangeRequest(Box::default()),
            B::StatusRequest(Box::default()),
            member_list_request(true),
            alarm(rpc::AlarmAction::Get),
        ];
        for r in &reads {
            assert!(may_resend(r), "{r:?} is a read");
        }
        let writes = [
            B::PutRequest(Box::default()),
            B::DeleteRangeRequest(Box::default()),
            B::TxnRequest(Box::default()),
            B::CompactionRequest(Box::default()),
            B::DefragmentRequest(Box::default()),
            B::SnapshotRequest(Box::default()),
            alarm(rpc::AlarmAction::Activate),
            alarm(rpc::AlarmAction::Deactivate),
            member_add_request(vec!["http://127.0.0.1:1".into()], false),
            member_remove_request(1),
            member_update_request(1, vec![]),
            member_promote_request(1),
            move_leader_request(1),
        ];
        for w in &writes {
            assert!(!may_resend(w), "{w:?} must not be resent");
        }
    }

    #[test]
    fn only_unavailable_answers_and_broken_connections_are_retryable() {
        let server = |code| ClientError::Server {
            code,
            message: String::new(),
            compact_revision: 0,
        };
        for code in [
            rpc::ErrorCode::Unavailable,
            rpc::ErrorCode::NoLeader,
            rpc::ErrorCode::Timeout,
        ] {
            assert!(is_retryable(&server(code)), "{code:?}");
        }
        for code in [
            rpc::ErrorCode::Compacted,
            rpc::ErrorCode::InvalidArgument,
            rpc::ErrorCode::MemberNotFound,
            rpc::ErrorCode::NotLeader,
            rpc::ErrorCode::NoSpace,
        ] {
            assert!(!is_retryable(&server(code)), "{code:?}");
        }
        assert!(is_retryable(&ClientError::Closed("reset".into())));
        assert!(is_retryable(&ClientError::Connect {
            endpoints: String::new(),
            reason: String::new()
        }));
        // Our own deadline: the whole budget is spent, nothing is left to retry in.
        assert!(!is_retryable(&ClientError::Timeout));
    }

    /// A port on 127.0.0.1 where nothing listens (bound, then closed).
    fn dead_endpoint() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    }

    /// A fake member: answers every request on every connection with an
    /// `Error` of `code` (or, for `None`, closes the connection once it has
    /// read the request); counts the requests it saw.
    fn fake_member(code: Option<rpc::ErrorCode>) -> (SocketAddr, std::sync::Arc<Mutex<u32>>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let seen = std::sync::Arc::new(Mutex::new(0u32));
        let count = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { return };
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut head = [0u8; HEADER_LEN];
                    while s.read_exact(&mut head).is_ok() {
                        let Head::Frame {
                            request_id,
                            payload_len,
                        } = parse_head(&head)
                        else {
                            return;
                        };
                        let mut payload = vec![0u8; payload_len];
                        if s.read_exact(&mut payload).is_err() {
                            return;
                        }
                        *count.lock().unwrap() += 1;
                        let Some(code) = code else { return };
                        let mut b = flatbuffers::FlatBufferBuilder::new();
                        let body = encode_error(&mut b, code, "etcdserver: no leader", 0);
                        let mut frame = Vec::new();
                        encode_frame(&mut frame, request_id, body);
                        if s.write_all(&frame).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    fn opts() -> ClientOptions {
        ClientOptions {
            dial_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(3),
            ..Default::default()
        }
    }

    #[test]
    fn connecting_skips_a_dead_first_endpoint() {
        let live = TcpListener::bind("127.0.0.1:0").expect("bind");
        let live_addr = live.local_addr().expect("addr");
        let dead = dead_endpoint();
        let c = BlockingClient::connect(&[dead, live_addr], opts()).expect("connects");
        assert_eq!(c.endpoint(), live_addr);
        let f = FailoverClient::connect(&[dead, live_addr], opts()).expect("connects");
        assert_eq!(f.endpoint(), Some(live_addr));
        let err = FailoverClient::connect(&[dead], opts())
            .err()
            .expect("no member");
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    }

    #[test]
    fn a_read_moves_on_after_no_leader_and_a_write_does_not() {
        let (a, seen_a) = fake_member(Some(rpc::ErrorCode::NoLeader));
        let (b, seen_b) = fake_member(Some(rpc::ErrorCode::NoLeader));
        let f = FailoverClient::connect(&[a, b], opts()).expect("connects");
        let e = f.range(get_request(b"k")).unwrap_err();
        assert_eq!(e.code(), Some(rpc::ErrorCode::NoLeader));
        // Tried on both endpoints, once each.
        assert_eq!((*seen_a.lock().unwrap(), *seen_b.lock().unwrap()), (1, 1));
        let e = f.put(put_request(b"k", b"v")).unwrap_err();
        assert_eq!(e.code(), Some(rpc::ErrorCode::NoLeader));
        // Sent once, to the endpoint the client was on (b), never resent.
        assert_eq!((*seen_a.lock().unwrap(), *seen_b.lock().unwrap()), (1, 2));
    }

    #[test]
    fn a_read_moves_on_after_a_broken_connection_and_a_write_does_not() {
        let (a, seen_a) = fake_member(None);
        let (b, seen_b) = fake_member(Some(rpc::ErrorCode::Compacted));
        let f = FailoverClient::connect(&[a, b], opts()).expect("connects");
        let e = f.range(get_request(b"k")).unwrap_err();
        assert_eq!(e.code(), Some(rpc::ErrorCode::Compacted), "answered by b");
        assert_eq!((*seen_a.lock().unwrap(), *seen_b.lock().unwrap()), (1, 1));
        let f = FailoverClient::connect(&[a, b], opts()).expect("connects");
        let e = f.put(put_request(b"k", b"v")).unwrap_err();
        assert!(matches!(e, ClientError::Closed(_)), "{e:?}");
        // The put reached a, which may have applied it: not sent to b.
        assert_eq!((*seen_a.lock().unwrap(), *seen_b.lock().unwrap()), (2, 1));
    }

    #[test]
    fn a_read_is_not_resent_after_a_definite_answer() {
        let (a, seen_a) = fake_member(Some(rpc::ErrorCode::Compacted));
        let (b, seen_b) = fake_member(Some(rpc::ErrorCode::Compacted));
        let f = FailoverClient::connect(&[a, b], opts()).expect("connects");
        let e = f.range(get_request(b"k")).unwrap_err();
        assert_eq!(e.code(), Some(rpc::ErrorCode::Compacted));
        assert_eq!((*seen_a.lock().unwrap(), *seen_b.lock().unwrap()), (1, 0));
    }
}
