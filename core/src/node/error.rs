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

    /// The request waited its whole deadline (no leader, lost forward).
    pub fn timeout() -> RequestError {
        Self::new(ErrorCode::Timeout, "etcdserver: request timed out")
    }

    pub fn no_leader() -> RequestError {
        Self::new(ErrorCode::NoLeader, "etcdserver: no leader")
    }

    pub fn leader_changed() -> RequestError {
        Self::new(ErrorCode::LeaderChanged, "etcdserver: leader changed")
    }

    pub fn member_not_found() -> RequestError {
        Self::new(ErrorCode::MemberNotFound, "etcdserver: member not found")
    }

    pub fn stopped() -> RequestError {
        Self::new(ErrorCode::Unavailable, "etcdserver: server stopped")
    }

    /// Worth trying again while the request's deadline lasts: the leader
    /// is unknown or busy, or a previous membership change has not applied.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::NoLeader | ErrorCode::LeaderChanged | ErrorCode::Unavailable
        )
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
