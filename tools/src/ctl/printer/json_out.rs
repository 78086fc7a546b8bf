//! etcdctl's `json` format: Go's encoding/json of etcd's response structs.
//! Field names are the protobuf `json` tags (snake_case for KV responses,
//! camelCase for StatusResponse), zero values are omitted, and txn
//! responses nest as `{"Response":{"ResponsePut":{...}}}`.

use cairn_schemas::rpc;

use super::{EndpointStatus, Health};
use crate::ctl::gofmt;
use crate::ctl::json::{array, string, Obj};

fn header(o: &mut Obj, h: &Option<Box<rpc::ResponseHeaderT>>) {
    if let Some(h) = h {
        let mut ho = Obj::new();
        ho.uint("cluster_id", h.cluster_id)
            .uint("member_id", h.member_id)
            .int("revision", h.revision)
            .uint("raft_term", h.raft_term);
        o.raw("header", &ho.finish());
    }
}

fn kv(kv: &rpc::KeyValueT) -> String {
    let mut o = Obj::new();
    o.bytes("key", kv.key.as_deref().unwrap_or_default())
        .int("create_revision", kv.create_revision)
        .int("mod_revision", kv.mod_revision)
        .int("version", kv.version)
        .bytes("value", kv.value.as_deref().unwrap_or_default())
        .int("lease", kv.lease);
    o.finish()
}

fn kvs(o: &mut Obj, name: &str, list: &Option<Vec<rpc::KeyValueT>>) {
    if let Some(list) = list.as_ref().filter(|l| !l.is_empty()) {
        o.raw(name, &array(&list.iter().map(kv).collect::<Vec<_>>()));
    }
}

fn range_obj(r: &rpc::RangeResponseT) -> String {
    let mut o = Obj::new();
    header(&mut o, &r.header);
    kvs(&mut o, "kvs", &r.kvs);
    o.flag("more", r.more).int("count", r.count);
    o.finish()
}

fn put_obj(r: &rpc::PutResponseT) -> String {
    let mut o = Obj::new();
    header(&mut o, &r.header);
    if let Some(prev) = &r.prev_kv {
        o.raw("prev_kv", &kv(prev));
    }
    o.finish()
}

fn delete_obj(r: &rpc::DeleteRangeResponseT) -> String {
    let mut o = Obj::new();
    header(&mut o, &r.header);
    o.int("deleted", r.deleted);
    kvs(&mut o, "prev_kvs", &r.prev_kvs);
    o.finish()
}

fn txn_obj(r: &rpc::TxnResponseT) -> String {
    let mut o = Obj::new();
    header(&mut o, &r.header);
    o.flag("succeeded", r.succeeded);
    if let Some(ops) = r.responses.as_ref().filter(|l| !l.is_empty()) {
        let items: Vec<String> = ops
            .iter()
            .map(|op| {
                let (name, body) = match &op.op {
                    rpc::ResponseOpKindT::RangeResponse(x) => ("ResponseRange", range_obj(x)),
                    rpc::ResponseOpKindT::PutResponse(x) => ("ResponsePut", put_obj(x)),
                    rpc::ResponseOpKindT::DeleteRangeResponse(x) => {
                        ("ResponseDeleteRange", delete_obj(x))
                    }
                    rpc::ResponseOpKindT::TxnResponse(x) => ("ResponseTxn", txn_obj(x)),
                    rpc::ResponseOpKindT::NONE => return "{}".to_string(),
                };
                format!("{{\"Response\":{{\"{name}\":{body}}}}}")
            })
            .collect();
        o.raw("responses", &array(&items));
    }
    o.finish()
}

/// clientv3's `WatchResponse` through encoding/json: exported Go field
/// names, the header and events with their protobuf tags, `Events` always
/// a list.
pub(super) fn watch(r: &rpc::WatchResponseT) -> String {
    let mut hdr = Obj::new();
    if let Some(h) = &r.header {
        hdr.uint("cluster_id", h.cluster_id)
            .uint("member_id", h.member_id)
            .int("revision", h.revision)
            .uint("raft_term", h.raft_term);
    }
    let events: Vec<String> = r
        .events
        .iter()
        .flatten()
        .map(|e| {
            let mut o = Obj::new();
            o.int("type", i64::from(e.type_ == rpc::EventType::Delete));
            if let Some(k) = &e.kv {
                o.raw("kv", &kv(k));
            }
            if let Some(p) = &e.prev_kv {
                o.raw("prev_kv", &kv(p));
            }
            o.finish()
        })
        .collect();
    let mut o = Obj::new();
    o.raw("Header", &hdr.finish())
        .raw("Events", &array(&events))
        .raw("CompactRevision", &r.compact_revision.to_string())
        .raw("Canceled", if r.canceled { "true" } else { "false" })
        .raw("Created", if r.created { "true" } else { "false" });
    format!("{}\n", o.finish())
}

pub(super) fn range(r: &rpc::RangeResponseT) -> String {
    range_obj(r) + "\n"
}

pub(super) fn put(r: &rpc::PutResponseT) -> String {
    put_obj(r) + "\n"
}

pub(super) fn delete(r: &rpc::DeleteRangeResponseT) -> String {
    delete_obj(r) + "\n"
}

pub(super) fn txn(r: &rpc::TxnResponseT) -> String {
    txn_obj(r) + "\n"
}

pub(super) fn health(hs: &[Health]) -> String {
    let items: Vec<String> = hs
        .iter()
        .map(|h| {
            let mut o = Obj::new();
            o.str("endpoint", &h.endpoint)
                .raw("health", if h.healthy { "true" } else { "false" });
            o.str("took", &gofmt::duration(h.took))
                .str_nonempty("error", &h.error);
            o.finish()
        })
        .collect();
    array(&items) + "\n"
}

pub(super) fn status(st: &[EndpointStatus]) -> String {
    let items: Vec<String> = st
        .iter()
        .map(|e| {
            let s = &e.status;
            let mut so = Obj::new();
            header(&mut so, &s.header);
            so.str_nonempty("version", s.version.as_deref().unwrap_or_default())
                .int("dbSize", s.db_size)
                .uint("leader", s.leader)
                .uint("raftIndex", s.raft_index)
                .uint("raftTerm", s.raft_term)
                .uint("raftAppliedIndex", s.raft_applied_index);
            if let Some(errs) = s.errors.as_ref().filter(|e| !e.is_empty()) {
                so.raw(
                    "errors",
                    &array(&errs.iter().map(|e| string(e)).collect::<Vec<_>>()),
                );
            }
            so.int("dbSizeInUse", s.db_size_in_use)
                .flag("isLearner", s.is_learner);
            let mut o = Obj::new();
            o.str("Endpoint", &e.endpoint).raw("Status", &so.finish());
            o.finish()
        })
        .collect();
    array(&items) + "\n"
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::*;
    use std::time::Duration;

    #[test]
    fn get_json_matches_etcdctl() {
        let r = rpc::RangeResponseT {
            header: test_header(20),
            kvs: Some(vec![
                test_kv(b"k/a", b"va", 16, 16, 1),
                test_kv(b"k/b", b"vb", 17, 17, 1),
            ]),
            more: true,
            count: 4,
        };
        let want = r#"{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":20,"raft_term":2},"kvs":[{"key":"ay9h","create_revision":16,"mod_revision":16,"version":1,"value":"dmE="},{"key":"ay9i","create_revision":17,"mod_revision":17,"version":1,"value":"dmI="}],"more":true,"count":4}
"#;
        assert_eq!(range(&r), want);
        let empty = rpc::RangeResponseT {
            header: test_header(20),
            ..Default::default()
        };
        assert_eq!(
            range(&empty),
            "{\"header\":{\"cluster_id\":14841639068965178418,\"member_id\":10276657743932975437,\"revision\":20,\"raft_term\":2}}\n"
        );
    }

    #[test]
    fn put_and_del_json_match_etcdctl() {
        let r = rpc::PutResponseT {
            header: test_header(5),
            prev_kv: Some(Box::new(test_kv(b"foo", b"bar2", 2, 4, 3))),
        };
        assert_eq!(
            put(&r),
            "{\"header\":{\"cluster_id\":14841639068965178418,\"member_id\":10276657743932975437,\"revision\":5,\"raft_term\":2},\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":2,\"mod_revision\":4,\"version\":3,\"value\":\"YmFyMg==\"}}\n"
        );
        let d = rpc::DeleteRangeResponseT {
            header: test_header(23),
            deleted: 2,
            prev_kvs: Some(vec![
                test_kv(b"k/c", b"vc", 18, 18, 1),
                test_kv(b"k/d", b"vd", 19, 19, 1),
            ]),
        };
        assert_eq!(
            delete(&d),
            "{\"header\":{\"cluster_id\":14841639068965178418,\"member_id\":10276657743932975437,\"revision\":23,\"raft_term\":2},\"deleted\":2,\"prev_kvs\":[{\"key\":\"ay9j\",\"create_revision\":18,\"mod_revision\":18,\"version\":1,\"value\":\"dmM=\"},{\"key\":\"ay9k\",\"create_revision\":19,\"mod_revision\":19,\"version\":1,\"value\":\"dmQ=\"}]}\n"
        );
    }

    #[test]
    fn txn_json_nests_responses_like_etcdctl() {
        let sub = || {
            Some(Box::new(rpc::ResponseHeaderT {
                revision: 40,
                ..Default::default()
            }))
        };
        let r = rpc::TxnResponseT {
            header: test_header(40),
            succeeded: true,
            responses: Some(vec![
                rpc::ResponseOpT {
                    op: rpc::ResponseOpKindT::PutResponse(Box::new(rpc::PutResponseT {
                        header: sub(),
                        prev_kv: Some(Box::new(test_kv(b"foo", b"bar2", 31, 39, 7))),
                    })),
                },
                rpc::ResponseOpT {
                    op: rpc::ResponseOpKindT::RangeResponse(Box::new(rpc::RangeResponseT {
                        header: sub(),
                        kvs: Some(vec![test_kv(b"foo", b"", 31, 40, 8)]),
                        more: false,
                        count: 1,
                    })),
                },
                rpc::ResponseOpT {
                    op: rpc::ResponseOpKindT::DeleteRangeResponse(Box::new(
                        rpc::DeleteRangeResponseT {
                            header: sub(),
                            ..Default::default()
                        },
                    )),
                },
            ]),
        };
        let want = r#"{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":40,"raft_term":2},"succeeded":true,"responses":[{"Response":{"ResponsePut":{"header":{"revision":40},"prev_kv":{"key":"Zm9v","create_revision":31,"mod_revision":39,"version":7,"value":"YmFyMg=="}}}},{"Response":{"ResponseRange":{"header":{"revision":40},"kvs":[{"key":"Zm9v","create_revision":31,"mod_revision":40,"version":8}],"count":1}}},{"Response":{"ResponseDeleteRange":{"header":{"revision":40}}}}]}
"#;
        assert_eq!(txn(&r), want);
    }

    #[test]
    fn endpoint_json_matches_etcdctl() {
        let hs = [
            Health {
                endpoint: "127.0.0.1:23790".into(),
                healthy: true,
                took: Duration::from_nanos(4_088_951),
                error: String::new(),
            },
            Health {
                endpoint: "127.0.0.1:23791".into(),
                healthy: false,
                took: Duration::from_nanos(5_001_434_931),
                error: "context deadline exceeded".into(),
            },
        ];
        assert_eq!(
            health(&hs),
            "[{\"endpoint\":\"127.0.0.1:23790\",\"health\":true,\"took\":\"4.088951ms\"},{\"endpoint\":\"127.0.0.1:23791\",\"health\":false,\"took\":\"5.001434931s\",\"error\":\"context deadline exceeded\"}]\n"
        );
        let st = test_status();
        assert_eq!(
            status(&[st]),
            "[{\"Endpoint\":\"127.0.0.1:23790\",\"Status\":{\"header\":{\"cluster_id\":14841639068965178418,\"member_id\":10276657743932975437,\"revision\":30,\"raft_term\":2},\"version\":\"3.4.23\",\"dbSize\":28672,\"leader\":10276657743932975437,\"raftIndex\":41,\"raftTerm\":2,\"raftAppliedIndex\":41,\"dbSizeInUse\":24576}}]\n"
        );
        assert_eq!(status(&[]), "[]\n");
    }
}
