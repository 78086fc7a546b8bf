//! A linearizability checker for recorded histories of single-key
//! registers: `put(key, value)` with values unique per history, and
//! `get(key) -> value | none`.
//!
//! Each key is checked on its own (linearizability is compositional). For
//! one key the checker searches for a total order of the operations that
//! respects real time (an operation that returned before another was
//! invoked comes first) and the register's semantics (a get reads the last
//! put before it). The search is Wing & Gong's, with Lowe's memoization of
//! (set of operations placed, register value) as in Knossos and Porcupine:
//!
//! ```text
//! events sorted by time:  call(a) call(b) ret(a) call(c) ret(b) ...
//! loop: take the first call that can go next (model accepts it, state not
//!       seen before) and lift it out with its return; meeting a return
//!       whose call is not placed yet means a dead end: undo the last
//!       placement and try the call after it.
//! ```
//!
//! Outcomes: an `Ok` operation took effect between its invoke and its
//! completion. A `Failed` one did not take effect at all (the server said
//! so; a read of its value is a violation). An `Unknown` one (timed out,
//! connection lost) may have taken effect at any time after its invoke, or
//! never: it has no return event. Failed and unknown gets say nothing and
//! are left out; so is an unknown put whose value nobody read (leaving it
//! out is always a valid choice).
//!
//! The search is bounded ([`Limits`]); a history it cannot decide within
//! the bounds is reported as such, never as linearizable.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

/// What an operation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `put(key, value)`; values are unique within a history.
    Put(String),
    /// `get(key)` and what it read (meaningful only when `Ok`).
    Get(Option<String>),
}

/// How an operation ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Definitely did not take effect.
    Failed,
    /// May or may not have taken effect (timeout, connection lost).
    Unknown,
}

/// One recorded operation.
#[derive(Clone, Debug)]
pub struct Op {
    /// The client (thread) that ran it.
    pub client: usize,
    /// The member it was sent to (for messages).
    pub via: String,
    pub key: String,
    pub kind: OpKind,
    pub invoke: Instant,
    pub complete: Instant,
    pub outcome: Outcome,
}

/// Bounds of the search, per key.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Placements tried (each costs one step).
    pub steps_max: u64,
    /// Distinct (placed set, value) states remembered.
    pub cache_entries_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            steps_max: 20_000_000,
            cache_entries_max: 2_000_000,
        }
    }
}

/// What a successful check saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub keys: usize,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Operations that took part in the search (all keys).
    pub searched: usize,
    /// Placements tried (all keys).
    pub steps: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} keys, {} ops ok, {} failed, {} unknown; {} searched in {} steps",
            self.keys, self.ok, self.failed, self.unknown, self.searched, self.steps
        )
    }
}

/// Why a history is not (or could not be shown to be) linearizable.
#[derive(Clone, Debug)]
pub struct Violation {
    pub key: String,
    /// What is wrong, naming the operations (`#n` is the index in the
    /// history given to [`check`]).
    pub reason: String,
    /// The search ran out of its bounds (undecided, not proven wrong).
    pub undecided: bool,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.undecided {
            "could not be decided"
        } else {
            "is not linearizable"
        };
        write!(f, "history of key {:?} {what}: {}", self.key, self.reason)
    }
}

impl std::error::Error for Violation {}

/// Checks every key of `history` with the default [`Limits`].
pub fn check(history: &[Op]) -> Result<Summary, Violation> {
    check_with(history, Limits::default())
}

/// Checks every key of `history`.
pub fn check_with(history: &[Op], limits: Limits) -> Result<Summary, Violation> {
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, op) in history.iter().enumerate() {
        by_key.entry(op.key.as_str()).or_default().push(i);
    }
    let base = history.iter().map(|o| o.invoke).min();
    let fmt = Describe { history, base };
    let mut summary = Summary {
        keys: by_key.len(),
        ..Summary::default()
    };
    for op in history {
        match op.outcome {
            Outcome::Ok => summary.ok += 1,
            Outcome::Failed => summary.failed += 1,
            Outcome::Unknown => summary.unknown += 1,
        }
    }
    let mut keys: Vec<&str> = by_key.keys().copied().collect();
    keys.sort_unstable();
    for key in keys {
        let ops = &by_key[key];
        let (searched, steps) = check_key(&fmt, key, ops, limits)?;
        summary.searched += searched;
        summary.steps += steps;
    }
    Ok(summary)
}

/// Formats operations for messages, times relative to the first invoke.
struct Describe<'h> {
    history: &'h [Op],
    base: Option<Instant>,
}

impl Describe<'_> {
    fn at(&self, t: Instant) -> f64 {
        self.base
            .map_or(Duration::ZERO, |b| t.saturating_duration_since(b))
            .as_secs_f64()
    }

    fn op(&self, i: usize) -> String {
        let o = &self.history[i];
        let what = match &o.kind {
            OpKind::Put(v) => format!("put {v:?}"),
            OpKind::Get(_) if o.outcome != Outcome::Ok => "get".to_string(),
            OpKind::Get(Some(v)) => format!("get -> {v:?}"),
            OpKind::Get(None) => "get -> none".to_string(),
        };
        let outcome = match o.outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        };
        format!(
            "#{i} {what} (client {} via {}, {:.3}s..{:.3}s, {outcome})",
            o.client,
            o.via,
            self.at(o.invoke),
            self.at(o.complete)
        )
    }
}

fn violation(key: &str, reason: String) -> Violation {
    Violation {
        key: key.to_string(),
        reason,
        undecided: false,
    }
}

/// Reads that no search can explain: a value no put wrote, the value of a
/// failed put, and a read that an acknowledged put had already overwritten
/// (the usual stale read or lost write, named plainly before searching).
fn precheck(d: &Describe<'_>, key: &str, ops: &[usize]) -> Result<(), Violation> {
    let h = d.history;
    let writer: HashMap<&str, usize> = ops
        .iter()
        .filter_map(|&i| match &h[i].kind {
            OpKind::Put(v) => Some((v.as_str(), i)),
            OpKind::Get(_) => None,
        })
        .collect();
    let ok_puts: Vec<usize> = ops
        .iter()
        .copied()
        .filter(|&i| matches!(h[i].kind, OpKind::Put(_)) && h[i].outcome == Outcome::Ok)
        .collect();
    for &g in ops {
        let OpKind::Get(read) = &h[g].kind else {
            continue;
        };
        if h[g].outcome != Outcome::Ok {
            continue;
        }
        let source = match read {
            None => None,
            Some(v) => match writer.get(v.as_str()) {
                None => {
                    return Err(violation(
                        key,
                        format!("{} read {v:?}, which no put wrote", d.op(g)),
                    ))
                }
                Some(&p) if h[p].outcome == Outcome::Failed => {
                    return Err(violation(
                        key,
                        format!(
                            "{} read the value of {}, a put that failed",
                            d.op(g),
                            d.op(p)
                        ),
                    ))
                }
                Some(&p) if h[p].invoke > h[g].complete => {
                    return Err(violation(
                        key,
                        format!(
                            "{} read the value of {}, invoked after the read returned",
                            d.op(g),
                            d.op(p)
                        ),
                    ))
                }
                Some(&p) => Some(p),
            },
        };
        // An acknowledged put that began after the read value's put had
        // returned (or any acknowledged put, for a read of nothing), and
        // returned before the read began, hides that value from the read.
        let hidden_by = ok_puts.iter().copied().find(|&q| {
            Some(q) != source
                && h[q].complete < h[g].invoke
                && source.is_none_or(|p| h[p].outcome == Outcome::Ok && h[p].complete < h[q].invoke)
        });
        if let Some(q) = hidden_by {
            let read = match source {
                Some(p) => format!("the value of {}", d.op(p)),
                None => "nothing".to_string(),
            };
            return Err(violation(
                key,
                format!(
                    "stale read or lost acknowledged write: {} read {read}, but {} was \
                     acknowledged after that and before the read began",
                    d.op(g),
                    d.op(q)
                ),
            ));
        }
    }
    Ok(())
}

/// One operation in the search: value ids (0 = none) instead of strings.
#[derive(Clone, Copy)]
struct SOp {
    /// Index in the history.
    index: usize,
    put: Option<u32>,
    read: u32,
}

const NONE: usize = usize::MAX;

/// The event list, doubly linked so placements can be lifted and undone.
struct Events {
    /// `(op, is_call)` per node; node 0 is the head sentinel.
    node: Vec<(usize, bool)>,
    prev: Vec<usize>,
    next: Vec<usize>,
    /// The return node of each op (NONE for unknown outcomes).
    ret: Vec<usize>,
}

impl Events {
    fn build(times: &[(Instant, Option<Instant>)]) -> Events {
        let mut evs: Vec<(Instant, u8, usize)> = Vec::with_capacity(times.len() * 2);
        for (op, (inv, ret)) in times.iter().enumerate() {
            // At equal times a call sorts before a return: the two are then
            // taken as concurrent, the permissive reading.
            evs.push((*inv, 0, op));
            if let Some(r) = ret {
                evs.push((*r, 1, op));
            }
        }
        evs.sort();
        let n = evs.len() + 1;
        let mut node = vec![(NONE, false); n];
        let mut ret = vec![NONE; times.len()];
        for (k, (_, kind, op)) in evs.iter().enumerate() {
            node[k + 1] = (*op, *kind == 0);
            if *kind == 1 {
                ret[*op] = k + 1;
            }
        }
        let prev = (0..n).map(|k| k.wrapping_sub(1)).collect();
        let next = (0..n)
            .map(|k| if k + 1 < n { k + 1 } else { NONE })
            .collect();
        Events {
            node,
            prev,
            next,
            ret,
        }
    }

    fn unlink(&mut self, k: usize) {
        let (p, n) = (self.prev[k], self.next[k]);
        self.next[p] = n;
        if n != NONE {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, k: usize) {
        let (p, n) = (self.prev[k], self.next[k]);
        self.next[p] = k;
        if n != NONE {
            self.prev[n] = k;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(call);
        let r = self.ret[self.node[call].0];
        if r != NONE {
            self.unlink(r);
        }
    }

    fn unlift(&mut self, call: usize) {
        let r = self.ret[self.node[call].0];
        if r != NONE {
            self.relink(r);
        }
        self.relink(call);
    }
}

/// Where the search got furthest, for the message of a violation.
struct Deepest {
    placed: usize,
    state: u32,
    /// The op whose return was met before it could be placed.
    stuck: usize,
    /// The calls pending at that point.
    pending: Vec<usize>,
}

fn check_key(
    d: &Describe<'_>,
    key: &str,
    ops: &[usize],
    limits: Limits,
) -> Result<(usize, u64), Violation> {
    precheck(d, key, ops)?;
    let h = d.history;
    let read_values: HashSet<&str> = ops
        .iter()
        .filter(|&&i| h[i].outcome == Outcome::Ok)
        .filter_map(|&i| match &h[i].kind {
            OpKind::Get(Some(v)) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut sops = Vec::new();
    let mut times = Vec::new();
    for &i in ops {
        let o = &h[i];
        let keep = match (&o.kind, o.outcome) {
            (_, Outcome::Failed) | (OpKind::Get(_), Outcome::Unknown) => false,
            (OpKind::Put(v), Outcome::Unknown) => read_values.contains(v.as_str()),
            (_, Outcome::Ok) => true,
        };
        if !keep {
            continue;
        }
        let next_id = ids.len() as u32 + 1;
        let (put, read) = match &o.kind {
            OpKind::Put(v) => (Some(*ids.entry(v.as_str()).or_insert(next_id)), 0),
            OpKind::Get(None) => (None, 0),
            OpKind::Get(Some(v)) => (None, *ids.entry(v.as_str()).or_insert(next_id)),
        };
        sops.push(SOp {
            index: i,
            put,
            read,
        });
        let ret = (o.outcome == Outcome::Ok).then_some(o.complete);
        times.push((o.invoke, ret));
    }
    let searched = sops.len();
    let steps = search(d, key, &sops, &times, &ids, limits)?;
    Ok((searched, steps))
}

fn search(
    d: &Describe<'_>,
    key: &str,
    sops: &[SOp],
    times: &[(Instant, Option<Instant>)],
    ids: &HashMap<&str, u32>,
    limits: Limits,
) -> Result<u64, Violation> {
    let mut ev = Events::build(times);
    let words = sops.len().div_ceil(64);
    let mut placed = vec![0u64; words];
    let mut placed_n = 0usize;
    let mut state = 0u32;
    let mut cache: HashSet<(Vec<u64>, u32)> = HashSet::new();
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut deepest: Option<Deepest> = None;
    let mut steps = 0u64;
    let mut entry = ev.next[0];
    while ev.next[0] != NONE {
        steps += 1;
        if steps > limits.steps_max || cache.len() > limits.cache_entries_max {
            return Err(Violation {
                key: key.to_string(),
                reason: format!(
                    "the search of {} ops ran past its bounds ({steps} steps, {} states)",
                    sops.len(),
                    cache.len()
                ),
                undecided: true,
            });
        }
        if entry == NONE {
            // Only calls without returns (unknown puts) are left, and none
            // can go next: cannot happen (a put always can), but treat it
            // as the dead end it would be.
            entry = backtrack_point(&mut ev, &mut stack, &mut placed, &mut placed_n, &mut state)
                .ok_or_else(|| violation(key, "no order places every operation".into()))?;
            continue;
        }
        let (op, is_call) = ev.node[entry];
        if is_call {
            let s = sops[op];
            let next_state = match s.put {
                Some(v) => Some(v),
                None => (s.read == state).then_some(state),
            };
            if let Some(ns) = next_state {
                placed[op / 64] |= 1 << (op % 64);
                if cache.insert((placed.clone(), ns)) {
                    stack.push((entry, state));
                    state = ns;
                    placed_n += 1;
                    ev.lift(entry);
                    entry = ev.next[0];
                    continue;
                }
                placed[op / 64] &= !(1 << (op % 64));
            }
            entry = ev.next[entry];
        } else {
            if deepest.as_ref().is_none_or(|b| placed_n >= b.placed) {
                deepest = Some(Deepest {
                    placed: placed_n,
                    state,
                    stuck: op,
                    pending: pending_calls(&ev),
                });
            }
            match backtrack_point(&mut ev, &mut stack, &mut placed, &mut placed_n, &mut state) {
                Some(next) => entry = next,
                None => return Err(explain(d, key, sops, ids, deepest)),
            }
        }
    }
    Ok(steps)
}

/// Undoes the last placement; returns the node to try after it.
fn backtrack_point(
    ev: &mut Events,
    stack: &mut Vec<(usize, u32)>,
    placed: &mut [u64],
    placed_n: &mut usize,
    state: &mut u32,
) -> Option<usize> {
    let (call, prev_state) = stack.pop()?;
    let op = ev.node[call].0;
    placed[op / 64] &= !(1 << (op % 64));
    *placed_n -= 1;
    *state = prev_state;
    ev.unlift(call);
    Some(ev.next[call])
}

/// The calls before the first return in the list (those that could go next).
fn pending_calls(ev: &Events) -> Vec<usize> {
    let mut out = Vec::new();
    let mut k = ev.next[0];
    while k != NONE && ev.node[k].1 {
        out.push(ev.node[k].0);
        k = ev.next[k];
    }
    out
}

fn explain(
    d: &Describe<'_>,
    key: &str,
    sops: &[SOp],
    ids: &HashMap<&str, u32>,
    deepest: Option<Deepest>,
) -> Violation {
    let Some(b) = deepest else {
        return violation(key, "no order places every operation".into());
    };
    let name: HashMap<u32, &str> = ids.iter().map(|(v, id)| (*id, *v)).collect();
    let holds = match b.state {
        0 => "nothing".to_string(),
        v => {
            let writer = sops.iter().find(|s| s.put == Some(v));
            let by = writer.map_or(String::new(), |w| format!(", written by {}", d.op(w.index)));
            format!("{:?}{by}", name.get(&v).copied().unwrap_or("?"))
        }
    };
    let mut lines = vec![format!(
        "after the longest linearizable prefix ({} of {} ops) the register holds {holds}; \
         then {} had returned, but no order of the pending ops places it:",
        b.placed,
        sops.len(),
        d.op(sops[b.stuck].index)
    )];
    for &p in b.pending.iter().take(12) {
        lines.push(format!("  pending {}", d.op(sops[p].index)));
    }
    if b.pending.len() > 12 {
        lines.push(format!("  ... and {} more", b.pending.len() - 12));
    }
    violation(key, lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history builder: times in milliseconds from a common base.
    struct H {
        base: Instant,
        ops: Vec<Op>,
    }

    impl H {
        fn new() -> H {
            H {
                base: Instant::now(),
                ops: Vec::new(),
            }
        }
        fn op(&mut self, key: &str, kind: OpKind, ms: (u64, u64), outcome: Outcome) -> &mut H {
            self.ops.push(Op {
                client: self.ops.len(),
                via: "n1".into(),
                key: key.into(),
                kind,
                invoke: self.base + Duration::from_millis(ms.0),
                complete: self.base + Duration::from_millis(ms.1),
                outcome,
            });
            self
        }
        fn put(&mut self, key: &str, v: &str, ms: (u64, u64)) -> &mut H {
            self.op(key, OpKind::Put(v.into()), ms, Outcome::Ok)
        }
        fn get(&mut self, key: &str, v: Option<&str>, ms: (u64, u64)) -> &mut H {
            self.op(key, OpKind::Get(v.map(String::from)), ms, Outcome::Ok)
        }
    }

    fn fails(h: &H, needles: &[&str]) -> String {
        let e = check(&h.ops).expect_err("history should not be linearizable");
        let msg = e.to_string();
        eprintln!("{msg}");
        assert!(!e.undecided, "{msg}");
        for n in needles {
            assert!(msg.contains(n), "message lacks {n:?}: {msg}");
        }
        msg
    }

    #[test]
    fn concurrent_overlapping_history_is_linearizable() {
        let mut h = H::new();
        h.get("a", None, (0, 5))
            .put("a", "1", (10, 30))
            // Overlaps the put: may read either.
            .get("a", None, (12, 14))
            .get("a", Some("1"), (15, 20))
            .put("a", "2", (40, 60))
            .put("a", "3", (41, 59))
            // 2 and 3 overlap: either order, but reads must agree on one.
            .get("a", Some("2"), (61, 62))
            .get("a", Some("2"), (63, 64))
            .get("b", None, (0, 100))
            .put("b", "x", (50, 150))
            .get("b", Some("x"), (60, 70));
        let s = check(&h.ops).unwrap();
        assert_eq!(s.keys, 2);
        assert_eq!(s.ok, 11);
    }

    #[test]
    fn unknown_puts_may_apply_late_or_never() {
        let mut h = H::new();
        h.op("a", OpKind::Put("1".into()), (0, 5), Outcome::Unknown)
            .get("a", None, (10, 12))
            // Applied long after the client gave up.
            .get("a", Some("1"), (20, 22))
            .op("a", OpKind::Put("2".into()), (30, 35), Outcome::Unknown)
            .op("a", OpKind::Put("3".into()), (31, 33), Outcome::Failed)
            .op("a", OpKind::Get(None), (40, 45), Outcome::Unknown)
            .get("a", Some("1"), (50, 52));
        check(&h.ops).unwrap();
    }

    #[test]
    fn a_stale_read_is_caught() {
        let mut h = H::new();
        h.put("k", "1", (0, 10))
            .put("k", "2", (20, 30))
            .get("k", Some("2"), (35, 40))
            .get("k", Some("1"), (45, 50));
        fails(
            &h,
            &["\"k\"", "#3 get -> \"1\"", "#1 put \"2\"", "stale read"],
        );
    }

    #[test]
    fn a_read_of_a_value_never_written_is_caught() {
        let mut h = H::new();
        h.put("k", "1", (0, 10)).get("k", Some("zz"), (20, 30));
        fails(&h, &["\"k\"", "#1 get -> \"zz\"", "no put wrote"]);
        let mut h = H::new();
        h.op("k", OpKind::Put("1".into()), (0, 10), Outcome::Failed)
            .get("k", Some("1"), (20, 30));
        fails(&h, &["#1 get -> \"1\"", "#0 put \"1\"", "failed"]);
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let mut h = H::new();
        h.get("k", None, (0, 5))
            .put("k", "1", (10, 20))
            .get("k", None, (30, 40));
        fails(&h, &["\"k\"", "#2 get -> none", "#1 put \"1\"", "lost"]);
    }

    #[test]
    fn an_order_only_the_search_rejects_is_caught() {
        // Each read alone is explainable; together they need 1 before 2
        // and 2 before 1, with every put concurrent with every read.
        let mut h = H::new();
        h.put("k", "1", (0, 100))
            .put("k", "2", (0, 100))
            .get("k", Some("1"), (10, 20))
            .get("k", Some("2"), (30, 40))
            .get("k", Some("1"), (50, 60));
        let msg = fails(
            &h,
            &["\"k\"", "longest linearizable prefix", "#4 get -> \"1\""],
        );
        assert!(msg.contains("pending"), "{msg}");
    }

    #[test]
    fn the_search_is_bounded() {
        // Many concurrent puts and reads that no order explains, which the
        // search proves only after trying many subsets: a tiny bound gives up.
        let mut h = H::new();
        for i in 0..12 {
            h.put("k", &format!("v{i}"), (0, 100));
        }
        h.get("k", Some("v0"), (10, 20));
        h.get("k", Some("v1"), (30, 40));
        h.get("k", Some("v0"), (50, 60));
        let e = check_with(
            &h.ops,
            Limits {
                steps_max: 50,
                cache_entries_max: 1000,
            },
        )
        .unwrap_err();
        assert!(e.undecided, "{e}");
        assert!(e.to_string().contains("could not be decided"), "{e}");
    }
}
