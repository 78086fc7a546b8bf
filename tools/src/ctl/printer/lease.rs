//! `lease grant|revoke|timetolive|list|keep-alive` in etcdctl 3.4's
//! formats. etcdctl prints the clientv3 structs here, whose JSON differs
//! from the protobuf responses: the header's fields are flattened into
//! the object and the fields carry no `omitempty` (grant, keep-alive,
//! list, time-to-live), except revoke, which prints the protobuf response.
//! No lease command has a table (exit 4, after the request).

use std::fmt::Write as _;

use base64::Engine as _;
use cairn_schemas::rpc;

use super::{Format, Printed};
use crate::ctl::exit::Exit;
use crate::ctl::gofmt::quote;
use crate::ctl::json::{array, Obj};

fn no_table() -> Exit {
    Exit::bad_feature("table not supported as output format")
}

type Header = Option<Box<rpc::ResponseHeaderT>>;

/// The header's fields flattened into `o` (Go's embedded `*ResponseHeader`).
fn flat_header(o: &mut Obj, h: &Header) {
    if let Some(h) = h {
        o.uint("cluster_id", h.cluster_id)
            .uint("member_id", h.member_id)
            .int("revision", h.revision)
            .uint("raft_term", h.raft_term);
    }
}

fn fields_header(out: &mut String, h: &Header) {
    let h = h.as_deref().cloned().unwrap_or_default();
    let _ = writeln!(out, "\"ClusterID\" : {}", h.cluster_id);
    let _ = writeln!(out, "\"MemberID\" : {}", h.member_id);
    let _ = writeln!(out, "\"Revision\" : {}", h.revision);
    let _ = writeln!(out, "\"RaftTerm\" : {}", h.raft_term);
}

fn line(s: String) -> Printed {
    Printed::out((s + "\n").into_bytes())
}

/// `lease grant`.
pub fn grant(format: Format, r: &rpc::LeaseGrantResponseT) -> Result<Printed, Exit> {
    Ok(match format {
        Format::Simple => line(format!("lease {:016x} granted with TTL({}s)", r.id, r.ttl)),
        Format::Json => {
            let mut o = Obj::new();
            flat_header(&mut o, &r.header);
            o.raw("ID", &r.id.to_string())
                .raw("TTL", &r.ttl.to_string())
                .str("Error", "");
            line(o.finish())
        }
        Format::Fields => {
            let mut out = String::new();
            fields_header(&mut out, &r.header);
            let _ = writeln!(out, "\"ID\" : {}", r.id);
            let _ = writeln!(out, "\"TTL\" : {}", r.ttl);
            Printed::out(out.into_bytes())
        }
        Format::Table => return Err(no_table()),
    })
}

/// `lease revoke ID`.
pub fn revoke(format: Format, id: i64, r: &rpc::LeaseRevokeResponseT) -> Result<Printed, Exit> {
    Ok(match format {
        Format::Simple => line(format!("lease {id:016x} revoked")),
        Format::Json => {
            let mut o = Obj::new();
            if let Some(h) = &r.header {
                let mut ho = Obj::new();
                flat_header(&mut ho, &Some(h.clone()));
                o.raw("header", &ho.finish());
            }
            line(o.finish())
        }
        Format::Fields => {
            let mut out = String::new();
            fields_header(&mut out, &r.header);
            Printed::out(out.into_bytes())
        }
        Format::Table => return Err(no_table()),
    })
}

/// One keep-alive response.
pub fn keep_alive(format: Format, r: &rpc::LeaseKeepAliveResponseT) -> Result<Printed, Exit> {
    Ok(match format {
        Format::Simple => line(format!(
            "lease {:016x} keepalived with TTL({})",
            r.id, r.ttl
        )),
        Format::Json => {
            let mut o = Obj::new();
            flat_header(&mut o, &r.header);
            o.raw("ID", &r.id.to_string())
                .raw("TTL", &r.ttl.to_string());
            line(o.finish())
        }
        Format::Fields => {
            let mut out = String::new();
            fields_header(&mut out, &r.header);
            let _ = writeln!(out, "\"ID\" : {}", r.id);
            let _ = writeln!(out, "\"TTL\" : {}", r.ttl);
            Printed::out(out.into_bytes())
        }
        Format::Table => return Err(no_table()),
    })
}

/// What `lease keep-alive` prints when the lease is gone (simple only).
pub fn keep_alive_ended(format: Format, id: i64) -> Printed {
    match format {
        Format::Simple => line(format!("lease {id:016x} expired or revoked.")),
        _ => Printed::default(),
    }
}

fn keys_of(r: &rpc::LeaseTimeToLiveResponseT) -> Vec<&[u8]> {
    r.keys
        .iter()
        .flatten()
        .map(|k| k.key.as_deref().unwrap_or_default())
        .collect()
}

/// `lease timetolive ID [--keys]`.
pub fn time_to_live(
    format: Format,
    r: &rpc::LeaseTimeToLiveResponseT,
    with_keys: bool,
) -> Result<Printed, Exit> {
    Ok(match format {
        Format::Simple => {
            if r.granted_ttl == 0 && r.ttl == -1 {
                return Ok(line(format!("lease {:016x} already expired", r.id)));
            }
            let mut s = format!(
                "lease {:016x} granted with TTL({}s), remaining({}s)",
                r.id, r.granted_ttl, r.ttl
            );
            if with_keys {
                let keys: Vec<String> = keys_of(r)
                    .iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect();
                let _ = write!(s, ", attached keys([{}])", keys.join(" "));
            }
            line(s)
        }
        Format::Json => {
            let mut o = Obj::new();
            flat_header(&mut o, &r.header);
            let keys = keys_of(r);
            let keys = if keys.is_empty() {
                "null".to_string()
            } else {
                let enc = base64::engine::general_purpose::STANDARD;
                array(
                    &keys
                        .iter()
                        .map(|k| format!("\"{}\"", enc.encode(k)))
                        .collect::<Vec<_>>(),
                )
            };
            o.raw("id", &r.id.to_string())
                .raw("ttl", &r.ttl.to_string())
                .raw("granted-ttl", &r.granted_ttl.to_string())
                .raw("keys", &keys);
            line(o.finish())
        }
        Format::Fields => {
            let mut out = String::new();
            fields_header(&mut out, &r.header);
            let _ = writeln!(out, "\"ID\" : {}", r.id);
            let _ = writeln!(out, "\"TTL\" : {}", r.ttl);
            let _ = writeln!(out, "\"GrantedTTL\" : {}", r.granted_ttl);
            for k in keys_of(r) {
                let _ = writeln!(out, "\"Key\" : {}", quote(k));
            }
            Printed::out(out.into_bytes())
        }
        Format::Table => return Err(no_table()),
    })
}

/// `lease list`.
pub fn list(format: Format, r: &rpc::LeaseLeasesResponseT) -> Result<Printed, Exit> {
    let ids = r.ids.as_deref().unwrap_or_default();
    Ok(match format {
        Format::Simple => {
            let mut s = format!("found {} leases\n", ids.len());
            for id in ids {
                let _ = writeln!(s, "{id:016x}");
            }
            Printed::out(s.into_bytes())
        }
        Format::Json => {
            let mut o = Obj::new();
            flat_header(&mut o, &r.header);
            let items: Vec<String> = ids.iter().map(|id| format!("{{\"id\":{id}}}")).collect();
            o.raw("leases", &array(&items));
            line(o.finish())
        }
        Format::Fields => {
            let mut out = String::new();
            fields_header(&mut out, &r.header);
            for id in ids {
                let _ = writeln!(out, "\"ID\" : {id}");
            }
            Printed::out(out.into_bytes())
        }
        Format::Table => return Err(no_table()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(revision: i64) -> Header {
        Some(Box::new(rpc::ResponseHeaderT {
            cluster_id: 15118495548433857066,
            member_id: 13668033151171901709,
            revision,
            raft_term: 2,
        }))
    }

    fn out(p: Printed) -> String {
        String::from_utf8(p.stdout).unwrap()
    }

    // Golden strings from etcdctl 3.4.23 against etcd 3.4.23.
    #[test]
    fn grant_matches_etcdctl() {
        let r = rpc::LeaseGrantResponseT {
            header: header(1),
            id: 0x390da24361d2d707,
            ttl: 100,
        };
        assert_eq!(
            out(grant(Format::Simple, &r).unwrap()),
            "lease 390da24361d2d707 granted with TTL(100s)\n"
        );
        assert_eq!(
            out(grant(Format::Json, &r).unwrap()),
            "{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":1,\"raft_term\":2,\"ID\":4111120445146846983,\"TTL\":100,\"Error\":\"\"}\n"
        );
        let r = rpc::LeaseGrantResponseT {
            header: header(4),
            id: 4111120445146847006,
            ttl: 10,
        };
        assert_eq!(
            out(grant(Format::Fields, &r).unwrap()),
            "\"ClusterID\" : 15118495548433857066\n\"MemberID\" : 13668033151171901709\n\"Revision\" : 4\n\"RaftTerm\" : 2\n\"ID\" : 4111120445146847006\n\"TTL\" : 10\n"
        );
        assert_eq!(
            grant(Format::Table, &r).unwrap_err(),
            Exit::bad_feature("table not supported as output format")
        );
    }

    #[test]
    fn time_to_live_matches_etcdctl() {
        let r = rpc::LeaseTimeToLiveResponseT {
            header: header(3),
            id: 0x390da24361d2d705,
            ttl: 99,
            granted_ttl: 100,
            keys: Some(vec![
                rpc::LeaseKeyT {
                    key: Some(b"k1".to_vec()),
                },
                rpc::LeaseKeyT {
                    key: Some(b"k2".to_vec()),
                },
            ]),
        };
        assert_eq!(
            out(time_to_live(Format::Simple, &r, false).unwrap()),
            "lease 390da24361d2d705 granted with TTL(100s), remaining(99s)\n"
        );
        assert_eq!(
            out(time_to_live(Format::Simple, &r, true).unwrap()),
            "lease 390da24361d2d705 granted with TTL(100s), remaining(99s), attached keys([k1 k2])\n"
        );
        assert_eq!(
            out(time_to_live(Format::Json, &r, true).unwrap()),
            "{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":3,\"raft_term\":2,\"id\":4111120445146846981,\"ttl\":99,\"granted-ttl\":100,\"keys\":[\"azE=\",\"azI=\"]}\n"
        );
        let gone = rpc::LeaseTimeToLiveResponseT {
            header: header(3),
            id: 0x1234,
            ttl: -1,
            granted_ttl: 0,
            keys: None,
        };
        assert_eq!(
            out(time_to_live(Format::Simple, &gone, true).unwrap()),
            "lease 0000000000001234 already expired\n"
        );
        assert_eq!(
            out(time_to_live(Format::Json, &gone, false).unwrap()),
            "{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":3,\"raft_term\":2,\"id\":4660,\"ttl\":-1,\"granted-ttl\":0,\"keys\":null}\n"
        );
    }

    #[test]
    fn list_keep_alive_and_revoke_match_etcdctl() {
        let r = rpc::LeaseLeasesResponseT {
            header: header(3),
            ids: Some(vec![4111120445146846981, 4111120445146846983]),
        };
        assert_eq!(
            out(list(Format::Simple, &r).unwrap()),
            "found 2 leases\n390da24361d2d705\n390da24361d2d707\n"
        );
        assert_eq!(
            out(list(Format::Json, &r).unwrap()),
            "{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":3,\"raft_term\":2,\"leases\":[{\"id\":4111120445146846981},{\"id\":4111120445146846983}]}\n"
        );
        let k = rpc::LeaseKeepAliveResponseT {
            header: header(3),
            id: 4111120445146846981,
            ttl: 100,
        };
        assert_eq!(
            out(keep_alive(Format::Simple, &k).unwrap()),
            "lease 390da24361d2d705 keepalived with TTL(100)\n"
        );
        assert_eq!(
            out(keep_alive(Format::Json, &k).unwrap()),
            "{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":3,\"raft_term\":2,\"ID\":4111120445146846981,\"TTL\":100}\n"
        );
        assert_eq!(
            out(keep_alive_ended(Format::Simple, 0x1234)),
            "lease 0000000000001234 expired or revoked.\n"
        );
        let v = rpc::LeaseRevokeResponseT { header: header(4) };
        assert_eq!(
            out(revoke(Format::Json, 1, &v).unwrap()),
            "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":4,\"raft_term\":2}}\n"
        );
        assert_eq!(
            out(revoke(Format::Simple, 0x390da24361d2d705, &v).unwrap()),
            "lease 390da24361d2d705 revoked\n"
        );
    }
}
