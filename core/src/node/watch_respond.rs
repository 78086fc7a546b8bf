//! Encoding `WatchResponse`s: created, events (fragmented when asked),
//! progress and canceled responses.

use cairn_schemas::rpc;
use flatbuffers::WIPOffset;

use crate::mvcc::EventKind;
use crate::watch::WatchEvent;

use super::respond::{header, kv, Fbb, HeaderInfo};

/// The fields of a `WatchResponse` besides its header and events.
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchFields<'a> {
    pub watch_id: i64,
    pub created: bool,
    pub canceled: bool,
    pub compact_revision: i64,
    pub cancel_reason: Option<&'a str>,
    pub fragment: bool,
}

/// Bytes a response holds besides its events (header, fields, tables).
pub const RESPONSE_OVERHEAD_BYTES: usize = 96;

/// An estimate of the bytes `e` adds to a response (with its prev_kv when
/// `with_prev`), for fragmenting.
pub fn event_size_bytes(e: &WatchEvent, with_prev: bool) -> usize {
    let prev = match (&e.prev_kv, with_prev) {
        (Some(p), true) => p.key.len() + p.value.len() + 64,
        _ => 0,
    };
    e.event.kv.key.len() + e.event.kv.value.len() + 80 + prev
}

fn event<'b>(b: &mut Fbb, e: &WatchEvent, with_prev: bool) -> WIPOffset<rpc::Event<'b>> {
    let kv_off = kv(b, &e.event.kv, false);
    let prev = match (&e.prev_kv, with_prev) {
        (Some(p), true) => Some(kv(b, p, false)),
        _ => None,
    };
    rpc::Event::create(
        b,
        &rpc::EventArgs {
            type_: match e.event.kind {
                EventKind::Put => rpc::EventType::Put,
                EventKind::Delete => rpc::EventType::Delete,
            },
            kv: Some(kv_off),
            prev_kv: prev,
        },
    )
}

/// Builds a `WatchResponse` into `b` and returns its bytes.
pub fn watch_response<'b>(
    b: &'b mut Fbb,
    h: &HeaderInfo,
    f: &WatchFields<'_>,
    events: &[&WatchEvent],
    with_prev: bool,
) -> &'b [u8] {
    b.reset();
    let events = if events.is_empty() {
        None
    } else {
        let offs: Vec<_> = events.iter().map(|e| event(b, e, with_prev)).collect();
        Some(b.create_vector(&offs))
    };
    let reason = f.cancel_reason.map(|r| b.create_string(r));
    let header = header(b, h);
    let w = rpc::WatchResponse::create(
        b,
        &rpc::WatchResponseArgs {
            header: Some(header),
            watch_id: f.watch_id,
            created: f.created,
            canceled: f.canceled,
            compact_revision: f.compact_revision,
            cancel_reason: reason,
            fragment: f.fragment,
            events,
        },
    );
    let resp = rpc::Response::create(
        b,
        &rpc::ResponseArgs {
            body_type: rpc::ResponseBody::WatchResponse,
            body: Some(w.as_union_value()),
        },
    );
    b.finish(resp, None);
    b.finished_data()
}
