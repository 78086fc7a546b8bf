//! `member list|add|remove|update|promote` and `move-leader` in etcdctl
//! 3.4's formats. Only `member list` has a `table` and a `fields` form;
//! the others print etcdctl's one-line messages (`simple`) or the response
//! as JSON, and refuse `table`/`fields` (exit 4) after the request was
//! made, as etcdctl does.

use std::fmt::Write as _;

use cairn_schemas::rpc;

use super::{Format, Printed};
use crate::ctl::exit::Exit;
use crate::ctl::gofmt::quote;
use crate::ctl::json::{array, string, Obj};
use crate::ctl::table;

/// Which membership change a one-line message reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Removed,
    Updated,
    Promoted,
}

impl Change {
    /// etcdctl's words: `Member <id> removed from cluster <cid>`.
    fn words(self) -> &'static str {
        match self {
            Change::Removed => "removed from",
            Change::Updated => "updated in",
            Change::Promoted => "promoted in",
        }
    }
}

fn unsupported(format: Format) -> Exit {
    let name = match format {
        Format::Table => "table",
        Format::Fields => "fields",
        Format::Json => "json",
        Format::Simple => "simple",
    };
    Exit::bad_feature(format!("{name} not supported as output format"))
}

fn strs(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

fn cluster_id(h: &Option<Box<rpc::ResponseHeaderT>>) -> u64 {
    h.as_ref().map_or(0, |h| h.cluster_id)
}

/// etcdctl's `makeMemberListTable` rows: unstarted = no name yet.
fn rows(members: &[rpc::MemberT]) -> Vec<Vec<String>> {
    members
        .iter()
        .map(|m| {
            let name = m.name.clone().unwrap_or_default();
            let status = if name.is_empty() {
                "unstarted"
            } else {
                "started"
            };
            vec![
                format!("{:x}", m.id),
                status.to_string(),
                name,
                strs(&m.peer_urls).join(","),
                strs(&m.client_urls).join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect()
}

const LIST_HEADER: [&str; 6] = [
    "ID",
    "Status",
    "Name",
    "Peer Addrs",
    "Client Addrs",
    "Is Learner",
];

fn json_header(o: &mut Obj, h: &Option<Box<rpc::ResponseHeaderT>>) {
    if let Some(h) = h {
        let mut ho = Obj::new();
        ho.uint("cluster_id", h.cluster_id)
            .uint("member_id", h.member_id)
            .int("revision", h.revision)
            .uint("raft_term", h.raft_term);
        o.raw("header", &ho.finish());
    }
}

fn json_strings(o: &mut Obj, k: &str, v: &Option<Vec<String>>) {
    let v = strs(v);
    if !v.is_empty() {
        let items: Vec<String> = v.iter().map(|s| string(s)).collect();
        o.raw(k, &array(&items));
    }
}

/// Go's encoding/json of etcd's `Member` (zero fields omitted).
fn json_member(m: &rpc::MemberT) -> String {
    let mut o = Obj::new();
    o.uint("ID", m.id)
        .str_nonempty("name", m.name.as_deref().unwrap_or_default());
    json_strings(&mut o, "peerURLs", &m.peer_urls);
    json_strings(&mut o, "clientURLs", &m.client_urls);
    o.flag("isLearner", m.is_learner);
    o.finish()
}

fn json_members(o: &mut Obj, members: &Option<Vec<rpc::MemberT>>) {
    if let Some(list) = members.as_ref().filter(|l| !l.is_empty()) {
        o.raw(
            "members",
            &array(&list.iter().map(json_member).collect::<Vec<_>>()),
        );
    }
}

fn json_line(o: Obj) -> Printed {
    Printed::out((o.finish() + "\n").into_bytes())
}

fn fields_list(r: &rpc::MemberListResponseT) -> String {
    let h = r.header.as_deref().cloned().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "\"ClusterID\" : {}", h.cluster_id);
    let _ = writeln!(out, "\"MemberID\" : {}", h.member_id);
    let _ = writeln!(out, "\"Revision\" : {}", h.revision);
    let _ = writeln!(out, "\"RaftTerm\" : {}", h.raft_term);
    for m in r.members.iter().flatten() {
        let _ = writeln!(out, "\"ID\" : {}", m.id);
        let name = m.name.as_deref().unwrap_or_default();
        let _ = writeln!(out, "\"Name\" : {}", quote(name.as_bytes()));
        for u in strs(&m.peer_urls) {
            let _ = writeln!(out, "\"PeerURL\" : {}", quote(u.as_bytes()));
        }
        for u in strs(&m.client_urls) {
            let _ = writeln!(out, "\"ClientURL\" : {}", quote(u.as_bytes()));
        }
        let _ = writeln!(out, "\"IsLearner\" : {}", m.is_learner);
        out.push('\n');
    }
    out
}

/// `member list`.
pub fn list(format: Format, r: &rpc::MemberListResponseT) -> Printed {
    let members = r.members.as_deref().unwrap_or_default();
    match format {
        Format::Simple => {
            let s: String = rows(members)
                .iter()
                .map(|row| row.join(", ") + "\n")
                .collect();
            Printed::out(s.into_bytes())
        }
        Format::Table => Printed::out(table::render(&LIST_HEADER, &rows(members)).into_bytes()),
        Format::Fields => Printed::out(fields_list(r).into_bytes()),
        Format::Json => {
            let mut o = Obj::new();
            json_header(&mut o, &r.header);
            json_members(&mut o, &r.members);
            json_line(o)
        }
    }
}

/// `member add`: the response line (simple) or the response (json). The
/// simple format's `ETCD_*` lines come from [`add_env`].
pub fn add(format: Format, r: &rpc::MemberAddResponseT) -> Result<Printed, Exit> {
    match format {
        Format::Simple => {
            let id = r.member.as_ref().map_or(0, |m| m.id);
            // etcd 3.4.23 says "added to" for learners too.
            let s = format!(
                "Member {id:16x} added to cluster {:16x}\n",
                cluster_id(&r.header)
            );
            Ok(Printed::out(s.into_bytes()))
        }
        Format::Json => {
            let mut o = Obj::new();
            json_header(&mut o, &r.header);
            if let Some(m) = &r.member {
                o.raw("member", &json_member(m));
            }
            json_members(&mut o, &r.members);
            Ok(json_line(o))
        }
        other => Err(unsupported(other)),
    }
}

/// The lines `member add` prints after its message in the simple format:
/// what to start the new member with. `members` is a member list taken
/// after the add; the new member (`new_id`, no name yet) is named `name`.
/// `peer_urls_flag` is `--peer-urls` as given.
pub fn add_env(name: &str, peer_urls_flag: &str, new_id: u64, members: &[rpc::MemberT]) -> String {
    let mut conf = Vec::new();
    for m in members {
        let n = if m.id == new_id {
            name
        } else {
            m.name.as_deref().unwrap_or_default()
        };
        for u in strs(&m.peer_urls) {
            conf.push(format!("{n}={u}"));
        }
    }
    let q = |s: &str| quote(s.as_bytes());
    format!(
        "\nETCD_NAME={}\nETCD_INITIAL_CLUSTER={}\nETCD_INITIAL_ADVERTISE_PEER_URLS={}\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
        q(name),
        q(&conf.join(",")),
        q(peer_urls_flag)
    )
}

/// `member remove|update|promote`: `id` is the member the command named.
pub fn changed(
    format: Format,
    change: Change,
    id: u64,
    header: &Option<Box<rpc::ResponseHeaderT>>,
    members: &Option<Vec<rpc::MemberT>>,
) -> Result<Printed, Exit> {
    match format {
        Format::Simple => {
            let s = format!(
                "Member {id:16x} {} cluster {:16x}\n",
                change.words(),
                cluster_id(header)
            );
            Ok(Printed::out(s.into_bytes()))
        }
        Format::Json => {
            let mut o = Obj::new();
            json_header(&mut o, header);
            json_members(&mut o, members);
            Ok(json_line(o))
        }
        other => Err(unsupported(other)),
    }
}

/// `move-leader`: ids as etcd's `types.ID` prints them (hex, no padding).
pub fn move_leader(
    format: Format,
    from: u64,
    to: u64,
    r: &rpc::MoveLeaderResponseT,
) -> Result<Printed, Exit> {
    match format {
        Format::Simple => Ok(Printed::out(
            format!("Leadership transferred from {from:x} to {to:x}\n").into_bytes(),
        )),
        Format::Json => {
            let mut o = Obj::new();
            json_header(&mut o, &r.header);
            Ok(json_line(o))
        }
        other => Err(unsupported(other)),
    }
}

#[cfg(test)]
mod tests {
    //! Golden outputs captured from etcdctl 3.4.23 against a 3-member
    //! etcd 3.4.23 cluster on 127.0.0.1 (members n1..n3, then an
    //! unstarted learner added with `member add n4 --learner`).
    use super::*;

    const CLUSTER: u64 = 10430521456801735660;

    fn header() -> Option<Box<rpc::ResponseHeaderT>> {
        Some(Box::new(rpc::ResponseHeaderT {
            cluster_id: CLUSTER,
            member_id: 4627081221937520288,
            revision: 0,
            raft_term: 2,
        }))
    }

    fn member(id: u64, name: &str, peer: &[&str], client: &[&str], learner: bool) -> rpc::MemberT {
        let v = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        rpc::MemberT {
            id,
            name: if name.is_empty() {
                None
            } else {
                Some(name.into())
            },
            peer_urls: v(peer),
            client_urls: if client.is_empty() { None } else { v(client) },
            is_learner: learner,
        }
    }

    fn three() -> Vec<rpc::MemberT> {
        vec![
            member(
                4627081221937520288,
                "n1",
                &["http://127.0.0.1:23801"],
                &["http://127.0.0.1:23800"],
                false,
            ),
            member(
                9272732848952112643,
                "n2",
                &["http://127.0.0.1:23803"],
                &["http://127.0.0.1:23802"],
                false,
            ),
            member(
                16694237860255472599,
                "n3",
                &["http://127.0.0.1:23805"],
                &["http://127.0.0.1:23804"],
                false,
            ),
        ]
    }

    fn learner() -> rpc::MemberT {
        member(
            18379517043000698738,
            "",
            &["http://127.0.0.1:23807"],
            &[],
            true,
        )
    }

    fn list_resp(members: Vec<rpc::MemberT>) -> rpc::MemberListResponseT {
        rpc::MemberListResponseT {
            header: header(),
            members: Some(members),
        }
    }

    fn text(p: Printed) -> String {
        assert!(p.stderr.is_empty());
        String::from_utf8(p.stdout).unwrap()
    }

    const THREE_SIMPLE: &str = "\
4036b1db24775ea0, started, n1, http://127.0.0.1:23801, http://127.0.0.1:23800, false
80af5d65a6e2f603, started, n2, http://127.0.0.1:23803, http://127.0.0.1:23802, false
e7add8e250679bd7, started, n3, http://127.0.0.1:23805, http://127.0.0.1:23804, false
";

    #[test]
    fn member_list_simple_matches_etcdctl() {
        assert_eq!(
            text(list(Format::Simple, &list_resp(three()))),
            THREE_SIMPLE
        );
        let mut four = three();
        four.push(learner());
        let want = format!(
            "{THREE_SIMPLE}ff11295f2b4b6772, unstarted, , http://127.0.0.1:23807, , true\n"
        );
        assert_eq!(text(list(Format::Simple, &list_resp(four))), want);
        // After `member update` with two peer URLs, joined with a bare comma.
        let two = member(
            18379517043000698738,
            "",
            &["http://127.0.0.1:23809", "http://127.0.0.1:23811"],
            &[],
            false,
        );
        assert_eq!(
            text(list(Format::Simple, &list_resp(vec![two]))),
            "ff11295f2b4b6772, unstarted, , http://127.0.0.1:23809,http://127.0.0.1:23811, , false\n"
        );
    }

    #[test]
    fn member_list_table_matches_etcdctl() {
        let want = "\
+------------------+---------+------+------------------------+------------------------+------------+
|        ID        | STATUS  | NAME |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+---------+------+------------------------+------------------------+------------+
| 4036b1db24775ea0 | started |   n1 | http://127.0.0.1:23801 | http://127.0.0.1:23800 |      false |
| 80af5d65a6e2f603 | started |   n2 | http://127.0.0.1:23803 | http://127.0.0.1:23802 |      false |
| e7add8e250679bd7 | started |   n3 | http://127.0.0.1:23805 | http://127.0.0.1:23804 |      false |
+------------------+---------+------+------------------------+------------------------+------------+
";
        assert_eq!(text(list(Format::Table, &list_resp(three()))), want);
        let mut four = three();
        four.push(learner());
        let want = "\
+------------------+-----------+------+------------------------+------------------------+------------+
|        ID        |  STATUS   | NAME |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+-----------+------+------------------------+------------------------+------------+
| 4036b1db24775ea0 |   started |   n1 | http://127.0.0.1:23801 | http://127.0.0.1:23800 |      false |
| 80af5d65a6e2f603 |   started |   n2 | http://127.0.0.1:23803 | http://127.0.0.1:23802 |      false |
| e7add8e250679bd7 |   started |   n3 | http://127.0.0.1:23805 | http://127.0.0.1:23804 |      false |
| ff11295f2b4b6772 | unstarted |      | http://127.0.0.1:23807 |                        |       true |
+------------------+-----------+------+------------------------+------------------------+------------+
";
        assert_eq!(text(list(Format::Table, &list_resp(four))), want);
    }

    const THREE_JSON: &str = r#"{"ID":4627081221937520288,"name":"n1","peerURLs":["http://127.0.0.1:23801"],"clientURLs":["http://127.0.0.1:23800"]},{"ID":9272732848952112643,"name":"n2","peerURLs":["http://127.0.0.1:23803"],"clientURLs":["http://127.0.0.1:23802"]},{"ID":16694237860255472599,"name":"n3","peerURLs":["http://127.0.0.1:23805"],"clientURLs":["http://127.0.0.1:23804"]}"#;
    const HEADER_JSON: &str = r#"{"header":{"cluster_id":10430521456801735660,"member_id":4627081221937520288,"raft_term":2}"#;

    #[test]
    fn member_list_json_matches_etcdctl() {
        let mut four = three();
        four.push(learner());
        let want = format!(
            "{HEADER_JSON},\"members\":[{THREE_JSON},{}]}}\n",
            r#"{"ID":18379517043000698738,"peerURLs":["http://127.0.0.1:23807"],"isLearner":true}"#
        );
        assert_eq!(text(list(Format::Json, &list_resp(four))), want);
        let want = format!("{HEADER_JSON},\"members\":[{THREE_JSON}]}}\n");
        assert_eq!(text(list(Format::Json, &list_resp(three()))), want);
    }

    #[test]
    fn member_list_fields_matches_etcdctl() {
        let mut four = three();
        four.push(learner());
        let want = "\"ClusterID\" : 10430521456801735660\n\"MemberID\" : 4627081221937520288\n\"Revision\" : 0\n\"RaftTerm\" : 2\n\
\"ID\" : 4627081221937520288\n\"Name\" : \"n1\"\n\"PeerURL\" : \"http://127.0.0.1:23801\"\n\"ClientURL\" : \"http://127.0.0.1:23800\"\n\"IsLearner\" : false\n\n\
\"ID\" : 9272732848952112643\n\"Name\" : \"n2\"\n\"PeerURL\" : \"http://127.0.0.1:23803\"\n\"ClientURL\" : \"http://127.0.0.1:23802\"\n\"IsLearner\" : false\n\n\
\"ID\" : 16694237860255472599\n\"Name\" : \"n3\"\n\"PeerURL\" : \"http://127.0.0.1:23805\"\n\"ClientURL\" : \"http://127.0.0.1:23804\"\n\"IsLearner\" : false\n\n\
\"ID\" : 18379517043000698738\n\"Name\" : \"\"\n\"PeerURL\" : \"http://127.0.0.1:23807\"\n\"IsLearner\" : true\n\n";
        assert_eq!(text(list(Format::Fields, &list_resp(four))), want);
    }

    #[test]
    fn member_add_prints_id_cluster_and_start_flags_like_etcdctl() {
        let r = rpc::MemberAddResponseT {
            header: header(),
            member: Some(Box::new(member(
                18379517043000698738,
                "",
                &["http://127.0.0.1:23807"],
                &[],
                true,
            ))),
            members: None,
        };
        let mut after = three();
        after.push(learner());
        let got = text(add(Format::Simple, &r).unwrap())
            + &add_env("n4", "http://127.0.0.1:23807", 18379517043000698738, &after);
        assert_eq!(
            got,
            "Member ff11295f2b4b6772 added to cluster 90c0a8006ec1e3ec\n\n\
ETCD_NAME=\"n4\"\n\
ETCD_INITIAL_CLUSTER=\"n1=http://127.0.0.1:23801,n2=http://127.0.0.1:23803,n3=http://127.0.0.1:23805,n4=http://127.0.0.1:23807\"\n\
ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:23807\"\n\
ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"
        );
    }

    #[test]
    fn member_add_env_lists_every_peer_url_in_member_order() {
        // `member add n9 --peer-urls='http://127.0.0.1:5, http://127.0.0.1:6'`:
        // the new member sorts between n2 and n3 by id; the flag is quoted as given.
        let mut members = three();
        members.insert(
            2,
            member(
                16475432512373445399,
                "",
                &["http://127.0.0.1:5", "http://127.0.0.1:6"],
                &[],
                false,
            ),
        );
        assert_eq!(
            add_env(
                "n9",
                "http://127.0.0.1:5, http://127.0.0.1:6",
                16475432512373445399,
                &members
            ),
            "\nETCD_NAME=\"n9\"\n\
ETCD_INITIAL_CLUSTER=\"n1=http://127.0.0.1:23801,n2=http://127.0.0.1:23803,n9=http://127.0.0.1:5,n9=http://127.0.0.1:6,n3=http://127.0.0.1:23805\"\n\
ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:5, http://127.0.0.1:6\"\n\
ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"
        );
    }

    #[test]
    fn member_add_json_has_member_and_members() {
        let new = member(
            7257648839037585483,
            "",
            &["http://127.0.0.1:23807"],
            &[],
            false,
        );
        let mut members = three();
        members.insert(1, new.clone());
        let r = rpc::MemberAddResponseT {
            header: header(),
            member: Some(Box::new(new)),
            members: Some(members),
        };
        let want = format!(
            "{HEADER_JSON},\"member\":{{\"ID\":7257648839037585483,\"peerURLs\":[\"http://127.0.0.1:23807\"]}},\"members\":[{}]}}\n",
            r#"{"ID":4627081221937520288,"name":"n1","peerURLs":["http://127.0.0.1:23801"],"clientURLs":["http://127.0.0.1:23800"]},{"ID":7257648839037585483,"peerURLs":["http://127.0.0.1:23807"]},{"ID":9272732848952112643,"name":"n2","peerURLs":["http://127.0.0.1:23803"],"clientURLs":["http://127.0.0.1:23802"]},{"ID":16694237860255472599,"name":"n3","peerURLs":["http://127.0.0.1:23805"],"clientURLs":["http://127.0.0.1:23804"]}"#
        );
        assert_eq!(text(add(Format::Json, &r).unwrap()), want);
    }

    #[test]
    fn member_changes_print_one_line_like_etcdctl() {
        let m = Some(three());
        let line = |c, id| text(changed(Format::Simple, c, id, &header(), &m).unwrap());
        assert_eq!(
            line(Change::Removed, 0x64b8592a9b5c884b),
            "Member 64b8592a9b5c884b removed from cluster 90c0a8006ec1e3ec\n"
        );
        assert_eq!(
            line(Change::Updated, 0xff11295f2b4b6772),
            "Member ff11295f2b4b6772 updated in cluster 90c0a8006ec1e3ec\n"
        );
        assert_eq!(
            line(Change::Promoted, 0xff11295f2b4b6772),
            "Member ff11295f2b4b6772 promoted in cluster 90c0a8006ec1e3ec\n"
        );
        // Go's %16x pads a short id with spaces.
        assert_eq!(
            line(Change::Removed, 0xabc),
            "Member              abc removed from cluster 90c0a8006ec1e3ec\n"
        );
    }

    #[test]
    fn member_change_json_is_header_and_members() {
        let got = text(
            changed(
                Format::Json,
                Change::Removed,
                0xff11295f2b4b6772,
                &header(),
                &Some(three()),
            )
            .unwrap(),
        );
        assert_eq!(got, format!("{HEADER_JSON},\"members\":[{THREE_JSON}]}}\n"));
    }

    #[test]
    fn only_member_list_has_table_and_fields() {
        for (f, msg) in [
            (Format::Table, "table not supported as output format"),
            (Format::Fields, "fields not supported as output format"),
        ] {
            let e = changed(f, Change::Updated, 1, &header(), &None).unwrap_err();
            assert_eq!(e, Exit::bad_feature(msg));
            assert!(add(f, &rpc::MemberAddResponseT::default()).is_err());
            assert!(move_leader(f, 1, 2, &rpc::MoveLeaderResponseT::default()).is_err());
        }
    }

    #[test]
    fn move_leader_matches_etcdctl() {
        let r = rpc::MoveLeaderResponseT::default();
        assert_eq!(
            text(move_leader(Format::Simple, 0x80af5d65a6e2f603, 0x4036b1db24775ea0, &r).unwrap()),
            "Leadership transferred from 80af5d65a6e2f603 to 4036b1db24775ea0\n"
        );
        // etcd 3.4 answers MoveLeader without a header.
        assert_eq!(text(move_leader(Format::Json, 1, 2, &r).unwrap()), "{}\n");
        // types.ID has no padding.
        assert_eq!(
            text(move_leader(Format::Simple, 0xabc, 0x1, &r).unwrap()),
            "Leadership transferred from abc to 1\n"
        );
    }
}
