//! Cairn's networking: the frame format, the server side of a client
//! connection, the client stub users embed, and the member-to-member
//! transport ([`peer`]).
//!
//! Invariants: every byte from a socket is untrusted. A frame's payload is
//! read by the FlatBuffers verifier (with Cairn's depth and table limits)
//! before any field is touched; a frame over the size limit gets an error
//! response; anything that is not a frame closes that one connection.

pub mod client;
pub mod codec;
pub mod error;
pub mod frame;
pub mod peer;
pub mod recipes;
pub mod server;

pub use client::{AsyncClient, BlockingClient, ClientOptions, WatchStream};
pub use error::ClientError;
