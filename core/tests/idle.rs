//! An idle node sleeps: no busy polling, so five nodes and a load
//! generator can share a 2-core machine.

use std::time::Duration;

use cairn_core::testkit::TestNode;
use cairn_net::client::put_request;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of /proc/PID/stat (12 and 13 after the comm).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn idle_node_uses_no_measurable_cpu() {
    // Small segments: the background zero-fill of the next one is over at once.
    let node = TestNode::start_with(&["--wal-segment-bytes", "1048576"]);
    let c = node.client();
    for i in 0..50 {
        c.put(put_request(format!("k{i}").as_bytes(), b"v"))
            .unwrap();
    }
    // Let the background zero-fill of the next WAL segment finish.
    std::thread::sleep(Duration::from_secs(1));
    let pid = node.pid().unwrap();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    // A spinning executor burns ~200 ticks (two seconds) here; a sleeping
    // node 0, with slack for timer wake-ups.
    assert!(
        used <= 5,
        "idle cairnd used {used} clock ticks of CPU in 2 s"
    );
}
