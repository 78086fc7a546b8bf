//! The glommio writer under a realistic load: thousands of records in
//! group-committed batches across several segments, then reopened.

mod common;

use cairn_storage::wal::{recover, DirectIo, RecordKind, Wal, WalOptions};

fn opts() -> WalOptions {
    WalOptions {
        segment_size_bytes: 1 << 20,
        max_batch_bytes: 256 << 10,
        direct_io: DirectIo::Auto,
    }
}

fn payload(index: u64) -> Vec<u8> {
    let len = (index * 37 % 400) as usize;
    (0..len).map(|i| (index as usize + i) as u8).collect()
}

#[test]
fn thousands_of_records_survive_reopen() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let d = dir.path().to_path_buf();
    let (rolls, direct) = common::run(move || async move {
        let mut wal = Wal::open(&d, opts(), &recover(&d, &opts()).unwrap().tail)
            .await
            .unwrap();
        let mut rolls = 0;
        for index in 1..=6000u64 {
            wal.append(RecordKind::Entry, index / 100 + 1, index, &payload(index))
                .unwrap();
            // Group commit in batches of varying size.
            if index % (1 + index % 23) == 0 {
                rolls += u32::from(wal.flush().await.unwrap().rolled);
            }
        }
        rolls += u32::from(wal.flush().await.unwrap().rolled);
        let direct = wal.direct_io();
        wal.close().await.unwrap();

        // Reopen at the recovered tail and keep going.
        let rec = recover(&d, &opts()).unwrap();
        assert_eq!(rec.records.len(), 6000);
        let mut wal = Wal::open(&d, opts(), &rec.tail).await.unwrap();
        for index in 6001..=7000u64 {
            wal.append(RecordKind::Entry, 61, index, &payload(index))
                .unwrap();
            if index % 50 == 0 {
                wal.flush().await.unwrap();
            }
        }
        wal.append(RecordKind::HardState, 61, 7000, b"commit=7000")
            .unwrap();
        wal.flush().await.unwrap();
        wal.close().await.unwrap();
        (rolls, direct)
    });
    assert!(rolls >= 2, "expected rollovers, got {rolls}");
    eprintln!("direct_io on {}: {direct}", std::env::temp_dir().display());
    let rec = recover(dir.path(), &opts()).unwrap();
    assert!(rec.torn_tail.is_none());
    assert_eq!(rec.records.len(), 7001);
    for (i, r) in rec.records[..7000].iter().enumerate() {
        let index = i as u64 + 1;
        assert_eq!((r.kind, r.index), (RecordKind::Entry, index));
        assert_eq!(r.data, payload(index), "data of index {index}");
    }
    assert_eq!(rec.records[7000].data, b"commit=7000");
    assert_eq!(rec.tail.last_index, Some(7000));
}
