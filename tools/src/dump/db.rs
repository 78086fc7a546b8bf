//! `cairn-dump db PATH [--keyspace NAME] [--limit N] [--json]`: print what
//! a page file (or a snapshot's image) holds, decoded with
//! `cairn_storage::layout`: the meta entries first, then the history
//! records in key order (revision, then key), then any other keyspace raw.
//!
//! ```text
//! meta applied_index=12
//! meta current_revision=10
//! key rev=2 key="foo" put create_revision=2 version=1 lease=0 value_len=3 value="bar"
//! key rev=4 key="foo" tombstone
//! ```
//!
//! Text values are cut after 100 bytes; with `--json` (one object per
//! line) keys are escaped like `wal`'s and values carried whole: as
//! `"value"` when printable UTF-8, else as `"value_base64"`. `--limit`
//! bounds the entries printed per keyspace.
//!
//! Only the pages read are checked (`verify` checks them all); a damaged
//! page or a record that does not decode is reported on stderr and the exit
//! code is [`DAMAGED`], after whatever could be printed.

use std::io::Write;

use cairn_storage::btree::ReadTxn;
use cairn_storage::layout;
use serde_json::Value;

use super::pagefile::{self, Image};
use super::{DAMAGED, OK, USAGE};

/// Which entries to print and how.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selection {
    /// Only this keyspace.
    pub keyspace: Option<String>,
    /// At most this many entries per keyspace.
    pub limit: Option<u64>,
    /// One JSON object per line.
    pub json: bool,
}

/// Lists the opened image.
pub(crate) fn run(img: &Image, sel: &Selection, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let fail = |err: &mut dyn Write, code, msg: String| {
        let _ = writeln!(err, "cairn-dump: {msg}");
        code
    };
    let r = match img.db.begin_read() {
        Ok(r) => r,
        Err(e) => return fail(err, DAMAGED, e.to_string()),
    };
    let names = match r.keyspaces() {
        Ok(n) => n,
        Err(e) => return fail(err, DAMAGED, e.to_string()),
    };
    let order = match &sel.keyspace {
        Some(k) if !names.contains(k) => {
            let msg = format!(
                "{}: no keyspace {k:?} (it holds: {})",
                img.path.display(),
                names.join(", ")
            );
            return fail(err, USAGE, msg);
        }
        Some(k) => vec![k.clone()],
        None => listing_order(names),
    };
    let mut lister = Lister {
        sel,
        out,
        invalid: 0,
        out_closed: false,
    };
    for name in &order {
        if let Err(e) = lister.keyspace(&r, name) {
            return fail(err, DAMAGED, e);
        }
    }
    if lister.invalid > 0 {
        let msg = format!(
            "{}: {} entries do not decode (marked invalid above)",
            img.path.display(),
            lister.invalid
        );
        return fail(err, DAMAGED, msg);
    }
    OK
}

/// `meta` first (the summary), then `key`, then the others by name.
fn listing_order(mut names: Vec<String>) -> Vec<String> {
    let rank = |n: &str| match n {
        layout::KEYSPACE_META => 0,
        layout::KEYSPACE_KEY => 1,
        _ => 2,
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    names
}

struct Lister<'a> {
    sel: &'a Selection,
    out: &'a mut dyn Write,
    invalid: u64,
    out_closed: bool,
}

impl Lister<'_> {
    fn keyspace(&mut self, r: &ReadTxn, name: &str) -> Result<(), String> {
        let range = r.range(name, ..).map_err(|e| e.to_string())?;
        let mut printed = 0u64;
        for entry in range {
            if self.out_closed || self.sel.limit.is_some_and(|l| printed >= l) {
                break;
            }
            let (k, v) = entry.map_err(|e| e.to_string())?;
            let line = self.line(name, &k, &v);
            // A closed pipe (`| head`) ends the output.
            match writeln!(self.out, "{line}") {
                Ok(()) => printed += 1,
                Err(_) => self.out_closed = true,
            }
        }
        Ok(())
    }

    fn line(&mut self, keyspace: &str, k: &[u8], v: &[u8]) -> String {
        match keyspace {
            layout::KEYSPACE_META if self.sel.json => pagefile::meta_json(k, v).to_string(),
            layout::KEYSPACE_META => pagefile::meta_text(k, v),
            layout::KEYSPACE_KEY if self.sel.json => {
                let j: Result<Value, Value> = pagefile::history_json(k, v);
                self.invalid += u64::from(j.is_err());
                j.unwrap_or_else(|e| e).to_string()
            }
            layout::KEYSPACE_KEY => {
                let t = pagefile::history_text(k, v);
                self.invalid += u64::from(t.is_err());
                t.unwrap_or_else(|e| e)
            }
            other if self.sel.json => pagefile::other_json(other, k, v).to_string(),
            other => pagefile::other_text(other, k, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_comes_first_then_history_then_the_rest() {
        let names = vec!["zz".into(), "meta".into(), "aa".into(), "key".into()];
        assert_eq!(listing_order(names), vec!["meta", "key", "aa", "zz"]);
    }
}
