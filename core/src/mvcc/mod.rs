//! MVCC (being written)
