//! The client stub's error type.

use cairn_schemas::rpc;

/// Why a request failed, as seen by a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error. `message` is etcd's text where
    /// etcd has one, e.g. "etcdserver: mvcc: required revision has been compacted".
    #[error("{message}")]
    Server {
        code: rpc::ErrorCode,
        message: String,
        compact_revision: i64,
    },
    /// No answer within the request timeout. The request may still apply.
    #[error("context deadline exceeded")]
    Timeout,
    /// Could not connect to any endpoint.
    #[error("failed to connect to {endpoints}: {reason}")]
    Connect { endpoints: String, reason: String },
    /// The connection broke; in-flight requests may or may not have applied.
    #[error("connection closed: {0}")]
    Closed(String),
    /// An I/O error on the connection.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent something that is not a valid Cairn response.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The request cannot be sent as given (too large, invalid argument).
    #[error("{0}")]
    InvalidRequest(String),
}

impl ClientError {
    pub(crate) fn from_error_table(e: &rpc::ErrorT) -> ClientError {
        ClientError::Server {
            code: e.code,
            message: e.message.clone().unwrap_or_default(),
            compact_revision: e.compact_revision,
        }
    }

    /// The server's error code, if the server answered with an error.
    pub fn code(&self) -> Option<rpc::ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl Clone for ClientError {
    fn clone(&self) -> Self {
        match self {
            ClientError::Server {
                code,
                message,
                compact_revision,
            } => ClientError::Server {
                code: *code,
                message: message.clone(),
                compact_revision: *compact_revision,
            },
            ClientError::Timeout => ClientError::Timeout,
            ClientError::Connect { endpoints, reason } => ClientError::Connect {
                endpoints: endpoints.clone(),
                reason: reason.clone(),
            },
            ClientError::Closed(s) => ClientError::Closed(s.clone()),
            ClientError::Io(e) => ClientError::Io(std::io::Error::new(e.kind(), e.to_string())),
            ClientError::Protocol(s) => ClientError::Protocol(s.clone()),
            ClientError::InvalidRequest(s) => ClientError::InvalidRequest(s.clone()),
        }
    }
}
