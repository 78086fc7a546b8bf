//! etcdctl's `simple` format: `OK`, key and value lines, counts.

use cairn_schemas::rpc;

use super::{kv_key, kv_value, EndpointStatus, Health};
use crate::ctl::gofmt;

pub(super) struct Simple {
    pub hex: bool,
    pub value_only: bool,
}

impl Simple {
    /// etcdctl's `printKV`: the key line (unless value-only), then the value line.
    fn kv(&self, out: &mut Vec<u8>, kv: &rpc::KeyValueT) {
        let (k, v) = (kv_key(kv), kv_value(kv));
        if self.hex {
            if !self.value_only {
                out.extend_from_slice(gofmt::hex_escape(k).as_bytes());
                out.push(b'\n');
            }
            out.extend_from_slice(gofmt::hex_escape(v).as_bytes());
        } else {
            if !self.value_only {
                out.extend_from_slice(k);
                out.push(b'\n');
            }
            out.extend_from_slice(v);
        }
        out.push(b'\n');
    }

    pub fn put(&self, r: &rpc::PutResponseT) -> Vec<u8> {
        let mut out = b"OK\n".to_vec();
        if let Some(prev) = &r.prev_kv {
            self.kv(&mut out, prev);
        }
        out
    }

    /// Each event's type line, its previous pair if any, then its pair;
    /// a compaction cancel names the compact revision.
    pub fn watch(&self, r: &rpc::WatchResponseT) -> Vec<u8> {
        let mut out = Vec::new();
        if r.compact_revision != 0 {
            out.extend_from_slice(
                format!("compacted revision {}\n", r.compact_revision).as_bytes(),
            );
        }
        for e in r.events.iter().flatten() {
            out.extend_from_slice(super::event_type(e).as_bytes());
            out.push(b'\n');
            if let Some(prev) = &e.prev_kv {
                self.kv(&mut out, prev);
            }
            self.kv(
                &mut out,
                e.kv.as_deref().unwrap_or(&rpc::KeyValueT::default()),
            );
        }
        out
    }

    pub fn get(&self, r: &rpc::RangeResponseT) -> Vec<u8> {
        let mut out = Vec::new();
        for kv in r.kvs.iter().flatten() {
            self.kv(&mut out, kv);
        }
        out
    }

    pub fn del(&self, r: &rpc::DeleteRangeResponseT) -> Vec<u8> {
        let mut out = format!("{}\n", r.deleted).into_bytes();
        for kv in r.prev_kvs.iter().flatten() {
            self.kv(&mut out, kv);
        }
        out
    }

    pub fn txn(&self, r: &rpc::TxnResponseT) -> Vec<u8> {
        let mut out = if r.succeeded {
            b"SUCCESS\n".to_vec()
        } else {
            b"FAILURE\n".to_vec()
        };
        for op in r.responses.iter().flatten() {
            out.push(b'\n');
            match &op.op {
                rpc::ResponseOpKindT::PutResponse(p) => out.extend(self.put(p)),
                rpc::ResponseOpKindT::RangeResponse(g) => out.extend(self.get(g)),
                rpc::ResponseOpKindT::DeleteRangeResponse(d) => out.extend(self.del(d)),
                other => out.extend(format!("unexpected response {other:?}\n").into_bytes()),
            }
        }
        out
    }
}

/// `endpoint health` lines (etcdctl writes them to stderr).
pub(super) fn health(hs: &[Health]) -> String {
    hs.iter()
        .map(|h| {
            if h.healthy {
                format!(
                    "{} is healthy: successfully committed proposal: took = {}\n",
                    h.endpoint,
                    gofmt::duration(h.took)
                )
            } else {
                format!(
                    "{} is unhealthy: failed to commit proposal: {}\n",
                    h.endpoint, h.error
                )
            }
        })
        .collect()
}

/// `endpoint status`: the table's rows joined with `, `.
pub(super) fn status(st: &[EndpointStatus]) -> String {
    super::status_rows(st)
        .iter()
        .map(|row| format!("{}\n", row.join(", ")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::super::{Format, Printer};
    use super::*;
    use std::time::Duration;

    fn text(p: super::super::Printed) -> String {
        String::from_utf8(p.stdout).unwrap()
    }

    #[test]
    fn put_prints_ok_then_prev_kv() {
        let p = Printer::new(Format::Simple, false);
        assert_eq!(
            text(
                p.put(&rpc::PutResponseT {
                    header: test_header(3),
                    prev_kv: None
                })
                .unwrap()
            ),
            "OK\n"
        );
        let r = rpc::PutResponseT {
            header: test_header(4),
            prev_kv: Some(Box::new(test_kv(b"foo", b"bar", 2, 3, 2))),
        };
        assert_eq!(text(p.put(&r).unwrap()), "OK\nfoo\nbar\n");
        let hex = Printer::new(Format::Simple, true);
        let r = rpc::PutResponseT {
            header: test_header(4),
            prev_kv: Some(Box::new(test_kv(b"foo", b"bar2", 2, 3, 2))),
        };
        assert_eq!(
            text(hex.put(&r).unwrap()),
            "OK\n\\x66\\x6f\\x6f\n\\x62\\x61\\x72\\x32\n"
        );
    }

    #[test]
    fn get_prints_key_and_value_lines() {
        let r = rpc::RangeResponseT {
            header: test_header(20),
            kvs: Some(vec![
                test_kv(b"k/a", b"va", 16, 16, 1),
                test_kv(b"nl", b"line1\nline2\n", 20, 20, 1),
            ]),
            more: false,
            count: 2,
        };
        assert_eq!(
            text(Printer::new(Format::Simple, false).get(&r).unwrap()),
            "k/a\nva\nnl\nline1\nline2\n\n"
        );
        let mut vo = Printer::new(Format::Simple, false);
        vo.value_only = true;
        assert_eq!(text(vo.get(&r).unwrap()), "va\nline1\nline2\n\n");
        let keys_only = rpc::RangeResponseT {
            kvs: Some(vec![test_kv(b"k/a", b"", 16, 16, 1)]),
            ..Default::default()
        };
        assert_eq!(
            text(Printer::new(Format::Simple, false).get(&keys_only).unwrap()),
            "k/a\n\n"
        );
        assert_eq!(
            text(
                Printer::new(Format::Simple, false)
                    .get(&rpc::RangeResponseT::default())
                    .unwrap()
            ),
            ""
        );
    }

    #[test]
    fn del_prints_count_then_prev_kvs() {
        let r = rpc::DeleteRangeResponseT {
            header: test_header(5),
            deleted: 1,
            prev_kvs: Some(vec![test_kv(b"k/b", b"vb", 1, 1, 1)]),
        };
        assert_eq!(
            text(Printer::new(Format::Simple, false).del(&r).unwrap()),
            "1\nk/b\nvb\n"
        );
        assert_eq!(
            text(
                Printer::new(Format::Simple, false)
                    .del(&rpc::DeleteRangeResponseT::default())
                    .unwrap()
            ),
            "0\n"
        );
    }

    #[test]
    fn txn_separates_responses_with_blank_lines() {
        // `etcdctl txn` of: put foo bar2 --prev-kv / get foo / del nothing /
        // get fo --prefix --keys-only / del zzz --prev-kv.
        let op = |k| rpc::ResponseOpT { op: k };
        let sub = |rev| {
            Some(Box::new(rpc::ResponseHeaderT {
                revision: rev,
                ..Default::default()
            }))
        };
        let r = rpc::TxnResponseT {
            header: test_header(40),
            succeeded: true,
            responses: Some(vec![
                op(rpc::ResponseOpKindT::PutResponse(Box::new(
                    rpc::PutResponseT {
                        header: sub(40),
                        prev_kv: Some(Box::new(test_kv(b"foo", b"bar2", 31, 39, 7))),
                    },
                ))),
                op(rpc::ResponseOpKindT::RangeResponse(Box::new(
                    rpc::RangeResponseT {
                        header: sub(40),
                        kvs: Some(vec![test_kv(b"foo", b"bar2", 31, 40, 8)]),
                        more: false,
                        count: 1,
                    },
                ))),
                op(rpc::ResponseOpKindT::DeleteRangeResponse(Box::new(
                    rpc::DeleteRangeResponseT {
                        header: sub(40),
                        ..Default::default()
                    },
                ))),
                op(rpc::ResponseOpKindT::RangeResponse(Box::new(
                    rpc::RangeResponseT {
                        header: sub(40),
                        kvs: Some(vec![test_kv(b"foo", b"", 31, 40, 8)]),
                        more: false,
                        count: 1,
                    },
                ))),
                op(rpc::ResponseOpKindT::DeleteRangeResponse(Box::new(
                    rpc::DeleteRangeResponseT {
                        header: sub(40),
                        ..Default::default()
                    },
                ))),
            ]),
        };
        let want = "SUCCESS\n\nOK\nfoo\nbar2\n\nfoo\nbar2\n\n0\n\nfoo\n\n\n0\n";
        assert_eq!(
            text(Printer::new(Format::Simple, false).txn(&r).unwrap()),
            want
        );
        let failed = rpc::TxnResponseT {
            header: test_header(41),
            succeeded: false,
            responses: None,
        };
        assert_eq!(
            text(Printer::new(Format::Simple, false).txn(&failed).unwrap()),
            "FAILURE\n"
        );
    }

    #[test]
    fn health_goes_to_stderr() {
        let hs = [
            Health {
                endpoint: "127.0.0.1:23790".into(),
                healthy: true,
                took: Duration::from_nanos(1_277_286),
                error: String::new(),
            },
            Health {
                endpoint: "127.0.0.1:23791".into(),
                healthy: false,
                took: Duration::from_secs(5),
                error: "context deadline exceeded".into(),
            },
        ];
        let p = Printer::new(Format::Simple, false).health(&hs);
        assert!(p.stdout.is_empty());
        assert_eq!(
            String::from_utf8(p.stderr).unwrap(),
            "127.0.0.1:23790 is healthy: successfully committed proposal: took = 1.277286ms\n\
             127.0.0.1:23791 is unhealthy: failed to commit proposal: context deadline exceeded\n"
        );
    }

    #[test]
    fn status_rows_are_comma_separated() {
        let st = test_status();
        let got = text(Printer::new(Format::Simple, false).status(&[st]));
        assert_eq!(
            got,
            "127.0.0.1:23790, 8e9e05c52164694d, 3.4.23, 29 kB, true, false, 2, 41, 41, \n"
        );
    }
}
