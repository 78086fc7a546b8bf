//! Cairn's wire schemas: the FlatBuffers tables of the client API
//! (`fbs/rpc.fbs`), the peer protocol between members (`fbs/peer.fbs`),
//! and the Rust code `flatc` generated from them.
//!
//! The generated code lives in `src/generated/` and is checked in:
//! building Cairn never needs `flatc`. After editing a schema, run
//! `schemas/regen.sh`, which installs the matching `flatc` if needed.
//!
//! Every buffer that came from outside the process must be checked with
//! [`verify_request`] / [`verify_response`] (the FlatBuffers verifier, with
//! Cairn's depth and table limits) before any field is read.
//!
//! ```
//! use cairn_schemas::rpc;
//! let mut b = flatbuffers::FlatBufferBuilder::new();
//! let key = b.create_vector(b"foo");
//! let put = rpc::PutRequest::create(&mut b, &rpc::PutRequestArgs { key: Some(key), ..Default::default() });
//! let req = rpc::Request::create(&mut b, &rpc::RequestArgs {
//!     body_type: rpc::RequestBody::PutRequest, body: Some(put.as_union_value()) });
//! b.finish(req, None);
//! let r = cairn_schemas::verify_request(b.finished_data()).unwrap();
//! assert_eq!(r.body_as_put_request().unwrap().key().unwrap().bytes(), b"foo");
//! ```

extern crate alloc;

#[allow(clippy::all, unused_imports, dead_code, non_camel_case_types, unsafe_op_in_unsafe_fn, mismatched_lifetime_syntaxes)]
#[rustfmt::skip]
mod generated {
    pub mod peer_generated;
    pub mod rpc_generated;
}

/// The generated tables of `fbs/rpc.fbs`.
pub use generated::rpc_generated::cairn::rpc;

/// The generated tables of `fbs/peer.fbs` (member to member).
pub use generated::peer_generated::cairn::peer;

/// Nesting depth allowed in a verified buffer. A txn nests
/// Request > TxnRequest > RequestOp > TxnRequest ...; each level costs about
/// three tables, so 64 allows ~20 levels of nested txns.
pub const MAX_DEPTH: usize = 64;

/// Tables allowed in one verified buffer. Bounded so that a small frame
/// cannot make the verifier walk an exponential structure.
pub const MAX_TABLES: usize = 1 << 20;

fn verifier_options(len: usize) -> flatbuffers::VerifierOptions {
    flatbuffers::VerifierOptions {
        max_depth: MAX_DEPTH,
        max_tables: MAX_TABLES,
        max_apparent_size: len.saturating_mul(2).max(1 << 16),
        ignore_missing_null_terminator: false,
    }
}

/// Verifies `buf` as a `Request` table with Cairn's limits.
pub fn verify_request(buf: &[u8]) -> Result<rpc::Request<'_>, flatbuffers::InvalidFlatbuffer> {
    flatbuffers::root_with_opts::<rpc::Request>(&verifier_options(buf.len()), buf)
}

/// Verifies `buf` as a peer `Frame` table with Cairn's limits.
pub fn verify_peer_frame(buf: &[u8]) -> Result<peer::Frame<'_>, flatbuffers::InvalidFlatbuffer> {
    flatbuffers::root_with_opts::<peer::Frame>(&verifier_options(buf.len()), buf)
}

/// Verifies `buf` as a `Response` table with Cairn's limits.
pub fn verify_response(buf: &[u8]) -> Result<rpc::Response<'_>, flatbuffers::InvalidFlatbuffer> {
    flatbuffers::root_with_opts::<rpc::Response>(&verifier_options(buf.len()), buf)
}
