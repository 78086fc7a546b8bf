//! placeholder (being written)
pub mod mvcc;
