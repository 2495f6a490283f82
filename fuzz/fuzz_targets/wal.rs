//! The interaction log: the input as the log (the first byte: recover or not, and whether the
//! rest is a snapshot beside an empty log instead); opened, then appended to and reopened.
#![no_main]
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use tandem_serve::wal::{Event, Wal, WalOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let d = common::dir();
    let path = d.path().join("live.wal");
    if pick & 2 == 0 {
        std::fs::write(&path, bytes).unwrap();
    } else {
        std::fs::write(d.path().join("live.wal.snapshot"), bytes).unwrap();
    }
    let options = WalOptions { recover: pick & 1 == 1, max_per_user: 3, snapshot_every: 4 };
    let Ok((wal, first)) = Wal::open(&path, options) else { return };
    let e = Event { user: "u".into(), item: "i".into(), weight: 1.0, time: 1 };
    for _ in 0..5 {
        wal.append(std::slice::from_ref(&e)).unwrap();
    }
    wal.wait_for_compaction();
    drop(wal);
    // What opened once opens again, holding what it held (bounded per user) and the appends.
    let (_, again) = Wal::open(&path, options).expect("a log this build wrote reopens");
    assert!(again.events().iter().filter(|x| **x == e).count() >= 3, "{first:?} then {again:?}");
});
