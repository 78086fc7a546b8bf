//! etcdctl's `fields` format: one `"Name" : value` line per field, strings
//! quoted with Go's `%q`.

use std::fmt::Write as _;

use cairn_schemas::rpc;

use super::{kv_key, kv_value, EndpointStatus, Health};
use crate::ctl::gofmt::{self, quote};

fn hdr(out: &mut String, h: &Option<Box<rpc::ResponseHeaderT>>) {
    let h = h.as_deref().cloned().unwrap_or_default();
    let _ = writeln!(out, "\"ClusterID\" : {}", h.cluster_id);
    let _ = writeln!(out, "\"MemberID\" : {}", h.member_id);
    let _ = writeln!(out, "\"Revision\" : {}", h.revision);
    let _ = writeln!(out, "\"RaftTerm\" : {}", h.raft_term);
}

fn kv(out: &mut String, pfx: &str, kv: &rpc::KeyValueT) {
    let _ = writeln!(out, "\"{pfx}Key\" : {}", quote(kv_key(kv)));
    let _ = writeln!(out, "\"{pfx}CreateRevision\" : {}", kv.create_revision);
    let _ = writeln!(out, "\"{pfx}ModRevision\" : {}", kv.mod_revision);
    let _ = writeln!(out, "\"{pfx}Version\" : {}", kv.version);
    let _ = writeln!(out, "\"{pfx}Value\" : {}", quote(kv_value(kv)));
    let _ = writeln!(out, "\"{pfx}Lease\" : {}", kv.lease);
}

fn put_into(out: &mut String, r: &rpc::PutResponseT) {
    hdr(out, &r.header);
    if let Some(prev) = &r.prev_kv {
        kv(out, "Prev", prev);
    }
}

fn get_into(out: &mut String, r: &rpc::RangeResponseT) {
    hdr(out, &r.header);
    for x in r.kvs.iter().flatten() {
        kv(out, "", x);
    }
    let _ = writeln!(out, "\"More\" : {}", r.more);
    let _ = writeln!(out, "\"Count\" : {}", r.count);
}

fn del_into(out: &mut String, r: &rpc::DeleteRangeResponseT) {
    hdr(out, &r.header);
    let _ = writeln!(out, "\"Deleted\" : {}", r.deleted);
    for x in r.prev_kvs.iter().flatten() {
        kv(out, "Prev", x);
    }
}

pub(super) fn watch(r: &rpc::WatchResponseT) -> String {
    let mut out = String::new();
    hdr(&mut out, &r.header);
    for e in r.events.iter().flatten() {
        let _ = writeln!(out, "\"Type\" : {}", super::event_type(e));
        if let Some(prev) = &e.prev_kv {
            kv(&mut out, "Prev", prev);
        }
        kv(
            &mut out,
            "",
            e.kv.as_deref().unwrap_or(&rpc::KeyValueT::default()),
        );
    }
    out
}

pub(super) fn put(r: &rpc::PutResponseT) -> String {
    let mut out = String::new();
    put_into(&mut out, r);
    out
}

pub(super) fn get(r: &rpc::RangeResponseT) -> String {
    let mut out = String::new();
    get_into(&mut out, r);
    out
}

pub(super) fn del(r: &rpc::DeleteRangeResponseT) -> String {
    let mut out = String::new();
    del_into(&mut out, r);
    out
}

pub(super) fn txn(r: &rpc::TxnResponseT) -> String {
    let mut out = String::new();
    hdr(&mut out, &r.header);
    let _ = writeln!(out, "\"Succeeded\" : {}", r.succeeded);
    for op in r.responses.iter().flatten() {
        match &op.op {
            rpc::ResponseOpKindT::DeleteRangeResponse(d) => del_into(&mut out, d),
            rpc::ResponseOpKindT::PutResponse(p) => put_into(&mut out, p),
            rpc::ResponseOpKindT::RangeResponse(g) => get_into(&mut out, g),
            other => {
                let _ = writeln!(
                    out,
                    "\"Unknown\" : {}",
                    quote(format!("{other:?}").as_bytes())
                );
            }
        }
    }
    out
}

pub(super) fn health(hs: &[Health]) -> String {
    let mut out = String::new();
    for h in hs {
        let _ = writeln!(out, "\"Endpoint\" : {}", quote(h.endpoint.as_bytes()));
        let _ = writeln!(out, "\"Health\" : {}", h.healthy);
        let _ = writeln!(out, "\"Took\" : {}", gofmt::duration(h.took));
        let _ = writeln!(out, "\"Error\" : {}", h.error);
        out.push('\n');
    }
    out
}

pub(super) fn status(st: &[EndpointStatus]) -> String {
    let mut out = String::new();
    for e in st {
        let s = &e.status;
        hdr(&mut out, &s.header);
        let _ = writeln!(
            out,
            "\"Version\" : {}",
            quote(s.version.as_deref().unwrap_or_default().as_bytes())
        );
        let _ = writeln!(out, "\"DBSize\" : {}", s.db_size);
        let _ = writeln!(out, "\"Leader\" : {}", s.leader);
        let _ = writeln!(out, "\"IsLearner\" : {}", s.is_learner);
        let _ = writeln!(out, "\"RaftIndex\" : {}", s.raft_index);
        let _ = writeln!(out, "\"RaftTerm\" : {}", s.raft_term);
        let _ = writeln!(out, "\"RaftAppliedIndex\" : {}", s.raft_applied_index);
        // Go's fmt.Println of a []string: `[a b]`.
        let _ = writeln!(
            out,
            "\"Errors\" : [{}]",
            s.errors.clone().unwrap_or_default().join(" ")
        );
        let _ = writeln!(out, "\"Endpoint\" : {}", quote(e.endpoint.as_bytes()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::*;
    use std::time::Duration;

    #[test]
    fn put_fields_match_etcdctl() {
        let r = rpc::PutResponseT {
            header: test_header(10),
            prev_kv: Some(Box::new(test_kv(b"foo", b"bar4", 2, 9, 8))),
        };
        let want = "\"ClusterID\" : 14841639068965178418\n\"MemberID\" : 10276657743932975437\n\"Revision\" : 10\n\"RaftTerm\" : 2\n\
\"PrevKey\" : \"foo\"\n\"PrevCreateRevision\" : 2\n\"PrevModRevision\" : 9\n\"PrevVersion\" : 8\n\"PrevValue\" : \"bar4\"\n\"PrevLease\" : 0\n";
        assert_eq!(put(&r), want);
    }

    #[test]
    fn get_fields_quote_like_go() {
        let r = rpc::RangeResponseT {
            header: test_header(49),
            kvs: Some(vec![test_kv(b"bin", b"\x01\xff\xe2\x82\xac", 49, 49, 1)]),
            more: false,
            count: 1,
        };
        let want = "\"ClusterID\" : 14841639068965178418\n\"MemberID\" : 10276657743932975437\n\"Revision\" : 49\n\"RaftTerm\" : 2\n\
\"Key\" : \"bin\"\n\"CreateRevision\" : 49\n\"ModRevision\" : 49\n\"Version\" : 1\n\"Value\" : \"\\x01\\xff€\"\n\"Lease\" : 0\n\
\"More\" : false\n\"Count\" : 1\n";
        assert_eq!(get(&r), want);
    }

    #[test]
    fn del_fields_match_etcdctl() {
        let r = rpc::DeleteRangeResponseT {
            header: test_header(28),
            deleted: 2,
            prev_kvs: None,
        };
        let want = "\"ClusterID\" : 14841639068965178418\n\"MemberID\" : 10276657743932975437\n\"Revision\" : 28\n\"RaftTerm\" : 2\n\"Deleted\" : 2\n";
        assert_eq!(del(&r), want);
    }

    #[test]
    fn endpoint_fields_match_etcdctl() {
        let h = Health {
            endpoint: "127.0.0.1:23790".into(),
            healthy: true,
            took: Duration::from_nanos(1_005_520),
            error: String::new(),
        };
        assert_eq!(health(&[h]), "\"Endpoint\" : \"127.0.0.1:23790\"\n\"Health\" : true\n\"Took\" : 1.00552ms\n\"Error\" : \n\n");
        let st = test_status();
        let want = "\"ClusterID\" : 14841639068965178418\n\"MemberID\" : 10276657743932975437\n\"Revision\" : 30\n\"RaftTerm\" : 2\n\
\"Version\" : \"3.4.23\"\n\"DBSize\" : 28672\n\"Leader\" : 10276657743932975437\n\"IsLearner\" : false\n\"RaftIndex\" : 41\n\
\"RaftTerm\" : 2\n\"RaftAppliedIndex\" : 41\n\"Errors\" : []\n\"Endpoint\" : \"127.0.0.1:23790\"\n\n";
        assert_eq!(status(&[st]), want);
    }
}
