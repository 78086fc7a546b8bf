//! Building request payloads and reading response payloads with the
//! FlatBuffers object API (owned `*T` types), for the client stub.

use cairn_schemas::rpc;
use flatbuffers::FlatBufferBuilder;

use crate::error::ClientError;

/// Serializes `body` as a `Request` into `builder` (reset first) and returns
/// the finished bytes.
pub fn encode_request<'b>(
    builder: &'b mut FlatBufferBuilder<'static>,
    body: &rpc::RequestBodyT,
) -> &'b [u8] {
    builder.reset();
    let req = rpc::RequestT { body: body.clone() };
    let off = req.pack(builder);
    builder.finish(off, None);
    builder.finished_data()
}

/// Verifies a response payload and unpacks it; an `Error` body becomes
/// [`ClientError::Server`].
pub fn decode_response(payload: &[u8]) -> Result<rpc::ResponseBodyT, ClientError> {
    let resp = cairn_schemas::verify_response(payload)
        .map_err(|e| ClientError::Protocol(format!("malformed response: {e}")))?;
    match resp.unpack().body {
        rpc::ResponseBodyT::Error(e) => Err(ClientError::from_error_table(&e)),
        rpc::ResponseBodyT::NONE => Err(ClientError::Protocol("response without a body".into())),
        body => Ok(body),
    }
}

/// Serializes an `Error` response into `builder` (reset first).
pub fn encode_error<'b>(
    builder: &'b mut FlatBufferBuilder<'static>,
    code: rpc::ErrorCode,
    message: &str,
    compact_revision: i64,
) -> &'b [u8] {
    builder.reset();
    let message = builder.create_string(message);
    let err = rpc::Error::create(
        builder,
        &rpc::ErrorArgs {
            code,
            message: Some(message),
            compact_revision,
        },
    );
    let resp = rpc::Response::create(
        builder,
        &rpc::ResponseArgs {
            body_type: rpc::ResponseBody::Error,
            body: Some(err.as_union_value()),
        },
    );
    builder.finish(resp, None);
    builder.finished_data()
}
