//! The interaction log's figures: `cargo bench -p tandem-serve --bench wal -- [EVENTS] [WRITERS]`.
//!
//! 1. Group commit: WRITERS threads (default 64, as many requests in flight) each append one
//!    event at a time for 3 s; every append returns only once its record is fsynced. Prints
//!    events acknowledged per second.
//! 2. Replay: a log of EVENTS events (default 10,000,000; 100k users, 1,000 items), written
//!    without rotation, then opened; and the same events through rotation every 1M records
//!    (snapshot of each user's latest 1,000 + the tail), then opened. Prints seconds to open.
//!
//! The log lives in a temporary directory on the machine's disk (TMPDIR to choose another).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tandem_serve::wal::{Event, Wal, WalOptions};

fn event(n: u64) -> Event {
    Event { user: format!("u{}", n % 100_000), item: format!("i{}", (n * 7919) % 1000), weight: 1.0, time: n as i64 }
}

fn group_commit(writers: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (wal, _) = Wal::open(&dir.path().join("live.wal"), WalOptions::default()).expect("open");
    let (stop, done) = (AtomicBool::new(false), AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let (wal, stop, done) = (&wal, &stop, &done);
            s.spawn(move || {
                let mut n = w as u64;
                while !stop.load(Ordering::Relaxed) {
                    wal.append(&[event(n)]).expect("append");
                    done.fetch_add(1, Ordering::Relaxed);
                    n += writers as u64;
                }
            });
        }
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
    });
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!("group commit: {writers} writers, {n} events fsynced in {secs:.2} s: {:.0} events/s", n as f64 / secs);
}

fn replay(events: u64, snapshot_every: u64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("live.wal");
    let options = WalOptions { snapshot_every, ..WalOptions::default() };
    let (wal, _) = Wal::open(&path, options).expect("open");
    let batch = 100_000;
    let started = Instant::now();
    for start in (0..events).step_by(batch as usize) {
        let chunk: Vec<Event> = (start..(start + batch).min(events)).map(event).collect();
        wal.append(&chunk).expect("append");
        wal.wait_for_compaction();
    }
    let wrote = started.elapsed().as_secs_f64();
    drop(wal);
    let size: u64 =
        std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").metadata().expect("meta").len()).sum();
    let started = Instant::now();
    let (_, r) = Wal::open(&path, options).expect("reopen");
    let secs = started.elapsed().as_secs_f64();
    let how = if snapshot_every == 0 {
        "one log, no rotation".to_string()
    } else {
        format!("rotation every {snapshot_every}")
    };
    println!(
        "replay ({how}): {events} events written in {wrote:.1} s, {:.0} MB on disk; opened in {secs:.2} s: {} events restored ({} from the snapshot)",
        size as f64 / 1e6,
        r.histories.len(),
        r.from_snapshot
    );
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let events = args.first().copied().unwrap_or(10_000_000);
    let writers = args.get(1).copied().unwrap_or(64) as usize;
    group_commit(writers);
    replay(events, 0);
    replay(events, 1_000_000);
}
