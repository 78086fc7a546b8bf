//! Raft consensus (being written): a pure state machine driven by tick/step/propose/ready.
