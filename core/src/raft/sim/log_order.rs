//! A linear-time linearizability check for one register whose writes go
//! through the Raft log. Every written value is unique, and the state
//! machine applies puts and compare-and-swaps in log order, so a correct
//! system is linearizable *with the log order*: the check asks whether
//! some linearization orders the logged operations by index, puts each
//! read between the write it observed and the next change, and respects
//! real time. That is a precedence graph over operations and time events;
//! the history passes iff the graph is acyclic.
//!
//! Sound in the direction that matters: a history that fails here has no
//! linearization consistent with what the state machine did. It scales to
//! thousands of operations, where the general search (`history.rs`) is
//! exponential; the simulator runs both on small histories.

use std::collections::HashMap;

use super::history::{apply, Op, Outcome, Record};

/// `indexes[i]` is the log index at which `records[i]` was applied
/// (`None` for reads). Every record must have a response.
pub(crate) fn check(records: &[Record], indexes: &[Option<u64>]) -> Result<(), String> {
    let n = records.len();
    let mut log: Vec<usize> = (0..n).filter(|&i| indexes[i].is_some()).collect();
    log.sort_by_key(|&i| indexes[i]);
    // Replay in log order: outcomes must match, and note who wrote what.
    let (mut value, mut writer) = (0u64, HashMap::new());
    let mut changes: Vec<usize> = Vec::new(); // positions in `log`
    for (pos, &i) in log.iter().enumerate() {
        let (next, outcome) = apply(value, records[i].op);
        let reported = records[i].response.expect("every record has a response").1;
        if reported != outcome {
            return Err(format!(
                "op {:?} reported {reported:?} but log order gives {outcome:?}",
                records[i].op
            ));
        }
        if next != value {
            writer.insert(next, pos);
            changes.push(pos);
        }
        value = next;
    }
    // Nodes: ops 0..n, then the 2n invocation/response events in time order.
    let mut times: Vec<(u64, usize, bool)> = Vec::with_capacity(2 * n);
    for (i, r) in records.iter().enumerate() {
        times.push((r.invoke, i, true));
        times.push((r.response.expect("response").0, i, false));
    }
    times.sort_unstable();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); 3 * n];
    for (k, &(_, i, is_invoke)) in times.iter().enumerate() {
        let event = n + k;
        if k + 1 < times.len() {
            edges[event].push(event + 1);
        }
        if is_invoke {
            edges[event].push(i); // the op takes effect after it is invoked
        } else {
            edges[i].push(event); // and before it returns
        }
    }
    for w in log.windows(2) {
        edges[w[0]].push(w[1]);
    }
    let next_change = |pos: Option<usize>| {
        let first_after = changes.partition_point(|&c| pos.is_some_and(|p| c <= p));
        changes.get(first_after).map(|&c| log[c])
    };
    for (i, r) in records.iter().enumerate() {
        let Op::Get { .. } = r.op else { continue };
        let Some((_, Outcome::Read(v))) = r.response else {
            continue;
        };
        let pos = if v == 0 {
            None
        } else {
            let &pos = writer
                .get(&v)
                .ok_or_else(|| format!("read of {v}, a value never written"))?;
            edges[log[pos]].push(i);
            Some(pos)
        };
        if let Some(w) = next_change(pos) {
            edges[i].push(w);
        }
    }
    if acyclic(&edges) {
        Ok(())
    } else {
        Err(format!(
            "history of key {} ({n} ops) has no linearization in log order",
            records[0].op.key()
        ))
    }
}

/// Kahn's algorithm.
fn acyclic(edges: &[Vec<usize>]) -> bool {
    let mut indegree = vec![0usize; edges.len()];
    for out in edges {
        for &t in out {
            indegree[t] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..edges.len()).filter(|&v| indegree[v] == 0).collect();
    let mut visited = 0;
    while let Some(v) = ready.pop() {
        visited += 1;
        for &t in &edges[v] {
            indegree[t] -= 1;
            if indegree[t] == 0 {
                ready.push(t);
            }
        }
    }
    visited == edges.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(op: Op, invoke: u64, response: (u64, Outcome)) -> Record {
        Record {
            op,
            invoke,
            response: Some(response),
        }
    }

    #[test]
    fn concurrent_read_may_see_either_side_of_a_write() {
        let h = vec![
            rec(Op::Put { key: 1, value: 5 }, 1, (4, Outcome::Written)),
            rec(Op::Get { key: 1 }, 2, (3, Outcome::Read(0))),
            rec(Op::Get { key: 1 }, 5, (6, Outcome::Read(5))),
        ];
        assert!(check(&h, &[Some(10), None, None]).is_ok());
    }

    #[test]
    fn stale_read_is_caught() {
        let h = vec![
            rec(Op::Put { key: 1, value: 5 }, 1, (2, Outcome::Written)),
            rec(Op::Get { key: 1 }, 3, (4, Outcome::Read(0))),
        ];
        assert!(check(&h, &[Some(10), None]).is_err());
    }

    #[test]
    fn log_order_against_real_time_is_caught() {
        // B was invoked after A returned, yet the log put B first.
        let h = vec![
            rec(Op::Put { key: 1, value: 5 }, 1, (2, Outcome::Written)),
            rec(Op::Put { key: 1, value: 6 }, 3, (4, Outcome::Written)),
        ];
        assert!(check(&h, &[Some(11), Some(10)]).is_err());
        assert!(check(&h, &[Some(10), Some(11)]).is_ok());
    }

    #[test]
    fn cas_outcome_must_match_log_order() {
        let h = vec![
            rec(Op::Put { key: 1, value: 5 }, 1, (2, Outcome::Written)),
            rec(
                Op::Cas {
                    key: 1,
                    expect: 5,
                    value: 7,
                },
                3,
                (4, Outcome::Swapped(false)),
            ),
        ];
        assert!(check(&h, &[Some(1), Some(2)]).is_err());
    }
}
