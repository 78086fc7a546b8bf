//! --quota-backend-bytes: past the quota writes are refused with the NOSPACE
//! alarm; reads, deletes and compaction still work; disarming (after making
//! room) lets writes in again. The alarm survives a restart.

use cairn_core::testkit::TestNode;
use cairn_net::client::{get_request, prefix_range_end, put_request};
use cairn_net::ClientError;
use cairn_schemas::rpc;

const NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";

fn alarms(c: &cairn_net::BlockingClient) -> Vec<rpc::AlarmMemberT> {
    c.alarm(rpc::AlarmRequestT::default())
        .unwrap()
        .alarms
        .unwrap_or_default()
}

#[test]
fn quota_raises_nospace_and_disarm_lets_writes_in_again() {
    let mut node = TestNode::start_with(&["--quota-backend-bytes", "65536"]);
    let c = node.client();
    let value = vec![b'x'; 1024];
    let mut written = 0;
    let err = loop {
        match c.put(put_request(format!("k{written:04}").as_bytes(), &value)) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 1000, "quota never reached");
    };
    assert!(written > 10, "only {written} puts fit in 64 KiB");
    assert_eq!(err.to_string(), NO_SPACE);
    assert!(matches!(
        err,
        ClientError::Server {
            code: rpc::ErrorCode::NoSpace,
            ..
        }
    ));
    // The refusal proposes the alarm through the log; it is raised once that applies.
    let start = std::time::Instant::now();
    let raised = loop {
        let a = alarms(&c);
        if !a.is_empty() || start.elapsed() > std::time::Duration::from_secs(5) {
            break a;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].alarm, rpc::AlarmType::NoSpace);
    let status = c.status().unwrap();
    assert!(status
        .errors
        .unwrap_or_default()
        .iter()
        .any(|e| e.trim_end().ends_with("alarm:NOSPACE")));

    // Even a small put is refused while the alarm is raised; reads are not.
    assert_eq!(
        c.put(put_request(b"tiny", b"1")).unwrap_err().to_string(),
        NO_SPACE
    );
    assert_eq!(c.range(get_request(b"k0000")).unwrap().count, 1);

    // The alarm is part of the replicated state: it survives a restart.
    drop(c);
    node.restart();
    let c = node.client();
    assert_eq!(alarms(&c).len(), 1);

    // Make room: deletes and compaction still work.
    let d = c
        .delete_range(rpc::DeleteRangeRequestT {
            key: Some(b"k".to_vec()),
            range_end: Some(prefix_range_end(b"k")),
            prev_kv: false,
        })
        .unwrap();
    assert_eq!(d.deleted, written);
    let rev = d.header.unwrap().revision;
    c.compact(rpc::CompactionRequestT {
        revision: rev,
        physical: true,
    })
    .unwrap();
    assert_eq!(
        c.put(put_request(b"tiny", b"1")).unwrap_err().to_string(),
        NO_SPACE,
        "still armed"
    );

    // Disarm, as `cairnctl alarm disarm` does.
    let gone = c
        .alarm(rpc::AlarmRequestT {
            action: rpc::AlarmAction::Deactivate,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(gone.alarms.unwrap_or_default().len(), 1);
    assert!(alarms(&c).is_empty());
    c.put(put_request(b"tiny", b"1")).unwrap();
}

/// The quota is checked before a write enters the log, never at replay:
/// restarting with a smaller quota keeps every acknowledged write.
#[test]
fn restart_with_a_smaller_quota_keeps_acknowledged_writes() {
    let mut node = TestNode::start();
    let c = node.client();
    let value = vec![b'y'; 1024];
    for i in 0..64 {
        c.put(put_request(format!("k{i:02}").as_bytes(), &value))
            .unwrap();
    }
    drop(c);
    node.extra_args = vec!["--quota-backend-bytes".into(), "8192".into()];
    node.restart();
    let c = node.client();
    let all = c
        .range(rpc::RangeRequestT {
            range_end: Some(prefix_range_end(b"k")),
            count_only: true,
            ..get_request(b"k")
        })
        .unwrap();
    assert_eq!(all.count, 64);
    assert!(alarms(&c).is_empty(), "replay raises no alarm");
    assert_eq!(
        c.put(put_request(b"more", &value)).unwrap_err().to_string(),
        NO_SPACE
    );
}
