//! Client operations on registers, their history, and a linearizability
//! check (Wing & Gong's search with Lowe's memoization, per key: registers
//! are independent, so each key's history is checked alone).

use std::collections::HashSet;

/// One operation on the register `key` (0 stands for "absent").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Put { key: u64, value: u64 },
    Get { key: u64 },
    Cas { key: u64, expect: u64, value: u64 },
}

impl Op {
    pub(crate) fn key(&self) -> u64 {
        match *self {
            Op::Put { key, .. } | Op::Get { key } | Op::Cas { key, .. } => key,
        }
    }

    /// Layout: `op_id: u64, kind: u8, key: u64, a: u64, b: u64`, LE.
    pub(crate) fn encode(&self, op_id: u64) -> Vec<u8> {
        let (kind, key, a, b) = match *self {
            Op::Put { key, value } => (1u8, key, value, 0),
            Op::Get { key } => (2, key, 0, 0),
            Op::Cas { key, expect, value } => (3, key, expect, value),
        };
        let mut out = Vec::with_capacity(33);
        out.extend_from_slice(&op_id.to_le_bytes());
        out.push(kind);
        for x in [key, a, b] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<(u64, Op)> {
        if bytes.len() != 33 {
            return None;
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let (key, a, b) = (word(9), word(17), word(25));
        let op = match bytes[8] {
            1 => Op::Put { key, value: a },
            2 => Op::Get { key },
            3 => Op::Cas {
                key,
                expect: a,
                value: b,
            },
            _ => return None,
        };
        Some((word(0), op))
    }
}

/// What an operation returned: the value read, or whether a CAS swapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Written,
    Read(u64),
    Swapped(bool),
}

/// Applies `op` to a register holding `value`.
pub(crate) fn apply(value: u64, op: Op) -> (u64, Outcome) {
    match op {
        Op::Put { value: v, .. } => (v, Outcome::Written),
        Op::Get { .. } => (value, Outcome::Read(value)),
        Op::Cas {
            expect, value: v, ..
        } if expect == value => (v, Outcome::Swapped(true)),
        Op::Cas { .. } => (value, Outcome::Swapped(false)),
    }
}

/// One client operation: invoked at step `invoke`; `response` is the step
/// and outcome it returned with, or `None` if the client never learned
/// (timeout, crash): it may have taken effect at any time after
/// `invoke`, or never.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) op: Op,
    pub(crate) invoke: u64,
    pub(crate) response: Option<(u64, Outcome)>,
}

/// Bound on the search, so a pathological history cannot hang CI
/// (`CAIRN_SIM_LIN_STATES_MAX` overrides it to dig into one seed).
fn search_states_max() -> usize {
    std::env::var("CAIRN_SIM_LIN_STATES_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000)
}

/// Checks that the records of one register are linearizable. Every record
/// must be linearized: the caller passes writes without a response only if
/// they took effect (their outcome stays unknown to the check).
pub(crate) fn check_register(records: &[Record]) -> Result<(), String> {
    let mut ops: Vec<&Record> = records.iter().collect();
    ops.sort_by_key(|r| r.invoke);
    if search(&ops)? {
        Ok(())
    } else {
        let shown: Vec<String> = ops
            .iter()
            .take(60)
            .map(|r| format!("{:?} @{} -> {:?}", r.op, r.invoke, r.response))
            .collect();
        Err(format!(
            "history of key {} ({} ops) is not linearizable; first ops:\n  {}",
            ops[0].op.key(),
            ops.len(),
            shown.join("\n  ")
        ))
    }
}

fn is_done(done: &[u64], i: usize) -> bool {
    done[i / 64] & (1 << (i % 64)) != 0
}

fn flip(done: &mut [u64], i: usize) {
    done[i / 64] ^= 1 << (i % 64);
}

/// The next op at or after `from` that may be linearized now from `value`
/// (no pending op returned before it began, and its outcome fits), with
/// the register value after it.
fn next_candidate(ops: &[&Record], done: &[u64], from: usize, value: u64) -> Option<(usize, u64)> {
    // Ops before the first pending one are all linearized.
    let lo = done
        .iter()
        .position(|&w| w != u64::MAX)
        .map_or(ops.len(), |w| w * 64 + done[w].trailing_ones() as usize);
    // The earliest response among pending ops; `ops` is sorted by
    // invocation, so no op invoked after the best so far can beat it.
    let mut horizon = u64::MAX;
    for (i, r) in ops.iter().enumerate().skip(lo) {
        if r.invoke >= horizon {
            break;
        }
        if !is_done(done, i) {
            if let Some((t, _)) = r.response {
                horizon = horizon.min(t);
            }
        }
    }
    (from.max(lo)..ops.len())
        .take_while(|&i| ops[i].invoke < horizon)
        .filter(|&i| !is_done(done, i))
        .find_map(|i| {
            let (next, outcome) = apply(value, ops[i].op);
            let fits = ops[i]
                .response
                .is_none_or(|(_, expected)| expected == outcome);
            fits.then_some((i, next))
        })
}

/// Depth-first search for an order, with an explicit stack (histories
/// can be thousands of ops deep) and a memo of (linearized set, value)
/// states already explored.
fn search(ops: &[&Record]) -> Result<bool, String> {
    let mut done = vec![0u64; ops.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, u64)> = HashSet::new();
    let mut path: Vec<(usize, u64)> = Vec::new(); // (op, value before it)
    let states_max = search_states_max();
    let (mut value, mut from) = (0u64, 0usize);
    loop {
        if path.len() == ops.len() {
            return Ok(true);
        }
        match next_candidate(ops, &done, from, value) {
            Some((i, next)) => {
                flip(&mut done, i);
                if seen.insert((done.clone(), next)) {
                    path.push((i, value));
                    value = next;
                    from = 0;
                } else {
                    flip(&mut done, i);
                    from = i + 1;
                }
                if seen.len() > states_max {
                    return Err(format!(
                        "linearizability search exceeded {states_max} states"
                    ));
                }
            }
            None => {
                let Some((i, before)) = path.pop() else {
                    return Ok(false);
                };
                flip(&mut done, i);
                value = before;
                from = i + 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(op: Op, invoke: u64, response: Option<(u64, Outcome)>) -> Record {
        Record {
            op,
            invoke,
            response,
        }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            rec(Op::Put { key: 1, value: 5 }, 0, Some((1, Outcome::Written))),
            rec(Op::Get { key: 1 }, 2, Some((3, Outcome::Read(5)))),
            rec(
                Op::Cas {
                    key: 1,
                    expect: 5,
                    value: 6,
                },
                4,
                Some((5, Outcome::Swapped(true))),
            ),
            rec(Op::Get { key: 1 }, 6, Some((7, Outcome::Read(6)))),
        ];
        assert!(check_register(&h).is_ok());
    }

    #[test]
    fn stale_read_after_completed_write_is_not_linearizable() {
        let h = vec![
            rec(Op::Put { key: 1, value: 5 }, 0, Some((1, Outcome::Written))),
            rec(Op::Get { key: 1 }, 2, Some((3, Outcome::Read(0)))),
        ];
        assert!(check_register(&h).is_err());
    }

    #[test]
    fn indeterminate_write_may_take_effect_late() {
        let late = vec![
            rec(Op::Put { key: 1, value: 5 }, 0, None),
            rec(Op::Get { key: 1 }, 2, Some((3, Outcome::Read(0)))),
            rec(Op::Get { key: 1 }, 4, Some((5, Outcome::Read(5)))),
        ];
        assert!(check_register(&late).is_ok());
        let never_seen = vec![
            rec(Op::Put { key: 1, value: 5 }, 0, None),
            rec(Op::Get { key: 1 }, 2, Some((3, Outcome::Read(0)))),
        ];
        assert!(
            check_register(&never_seen).is_ok(),
            "it may take effect after the last read"
        );
        let flip_flop = vec![
            rec(Op::Put { key: 1, value: 5 }, 0, None),
            rec(Op::Get { key: 1 }, 2, Some((3, Outcome::Read(5)))),
            rec(Op::Get { key: 1 }, 4, Some((5, Outcome::Read(0)))),
        ];
        assert!(check_register(&flip_flop).is_err());
    }

    #[test]
    fn op_encoding_roundtrips() {
        let op = Op::Cas {
            key: 3,
            expect: 4,
            value: 5,
        };
        assert_eq!(Op::decode(&op.encode(77)), Some((77, op)));
        assert_eq!(Op::decode(b"short"), None);
    }
}
