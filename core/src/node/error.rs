//! Errors answered to clients, with etcd's texts.

use cairn_schemas::rpc::ErrorCode;

use crate::mvcc::MvccError;

/// An error response: a code, etcd's message, and for `Compacted` the
/// compact revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
    pub compact_revision: i64,
}

impl RequestError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RequestError {
        RequestError {
            code,
            message: message.into(),
            compact_revision: 0,
        }
    }

    pub fn invalid(message: impl Into<String>) -> RequestError {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

impl From<MvccError> for RequestError {
    fn from(e: MvccError) -> RequestError {
        let message = e.to_string();
        match e {
            MvccError::Compacted { compact_revision } => RequestError {
                code: ErrorCode::Compacted,
                message,
                compact_revision,
            },
            MvccError::FutureRevision => RequestError::new(ErrorCode::FutureRevision, message),
            MvccError::TooManyOps => RequestError::new(ErrorCode::TooManyOps, message),
            MvccError::DuplicateKey => RequestError::new(ErrorCode::DuplicateKey, message),
            MvccError::ValueUnreadable { .. } => RequestError::new(ErrorCode::Internal, message),
            _ => RequestError::new(ErrorCode::InvalidArgument, message),
        }
    }
}
