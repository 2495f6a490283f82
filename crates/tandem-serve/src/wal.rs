//! The write-ahead log of live interactions, replayed on start. Raw ids are kept, so the log
//! outlives model reloads and retraining.
//!
//! **Records.** One line each: `CRC SEQ JSON\n` — the CRC32C (8 hex digits) of `SEQ JSON`, a
//! sequence number that only grows, and the event. A line without its newline or with a bad
//! checksum at the end of the file is a torn write (a crash mid-append): it is cut off (the file
//! truncated to the last complete record) before anything is appended. A bad record with good
//! ones after it is corruption: the service refuses to start and names its byte offset, unless
//! opened with `recover`, which moves everything from that record on into a side file
//! (`LOG.quarantine-UNIXSECONDS`) and starts. Lines of the first format (bare JSON) still replay.
//!
//! **Group commit.** Concurrent appends share one write and one fsync: the first to find no
//! flush running writes everything queued so far; the others wait for it, and every append
//! returns only once its records are on disk (or with the error that kept them off).
//!
//! **Snapshot and rotation.** After `snapshot_every` records the log is renamed `LOG.1` and a
//! new one started; a background thread folds the old snapshot and `LOG.1` into
//! `LOG.snapshot` (each user's latest `max_per_user` events, what the service keeps; written
//! to a temporary file, fsynced, renamed) and removes `LOG.1`. Replay reads the snapshot, then
//! `LOG.1` if still there, then `LOG`, skipping records the snapshot already holds (by
//! sequence number), so a crash at any step leaves files that replay to the same state.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::ServeError;

/// One recorded interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Raw user id.
    pub user: String,
    /// Raw item id.
    pub item: String,
    /// Weight (1 for a plain interaction).
    pub weight: f32,
    /// Unix seconds when it was recorded.
    pub time: i64,
}

/// How a log is kept.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// Start despite corruption in the middle of the log, moving the bad part aside.
    pub recover: bool,
    /// Events a snapshot keeps per user (the service's live history bound).
    pub max_per_user: usize,
    /// Records after which the log rotates into the snapshot (0: never).
    pub snapshot_every: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { recover: false, max_per_user: 1000, snapshot_every: 1_000_000 }
    }
}

/// Each user's latest events (at most `max` a user) with their sequence numbers: what the
/// service keeps live and what a snapshot holds. Replay and compaction stream records into it,
/// so their memory is bounded by it, not by the length of the log.
#[derive(Debug, Default)]
pub struct Histories {
    max: usize,
    users: HashMap<String, VecDeque<(u64, Event)>>,
}

impl Histories {
    /// Empty, keeping at most `max` events a user.
    pub fn new(max: usize) -> Self {
        Histories { max, users: HashMap::new() }
    }

    /// Adds `event` (numbered `seq`) after its user's others, dropping the user's oldest
    /// beyond the bound.
    fn push(&mut self, seq: u64, event: Event) {
        if self.max == 0 {
            return;
        }
        // One lookup when the user is known; the id is cloned only for a new user.
        match self.users.get_mut(event.user.as_str()) {
            Some(q) => {
                if q.len() == self.max {
                    q.pop_front();
                }
                q.push_back((seq, event));
            }
            None => {
                self.users.insert(event.user.clone(), VecDeque::from([(seq, event)]));
            }
        }
    }

    /// Events held, all users together.
    pub fn len(&self) -> usize {
        self.users.values().map(VecDeque::len).sum()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// All events held, in the order they were recorded.
    pub fn ordered(&self) -> Vec<Event> {
        let mut all: Vec<&(u64, Event)> = self.users.values().flatten().collect();
        all.sort_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, e)| e.clone()).collect()
    }

    /// The events held, each user's oldest first (users in no particular order).
    pub fn into_events(self) -> impl Iterator<Item = Event> {
        self.users.into_values().flatten().map(|(_, e)| e)
    }
}

/// What opening a log found.
#[derive(Debug, Default)]
pub struct Replay {
    /// The events to restore: each user's latest (the snapshot's, then the logs' newer ones).
    pub histories: Histories,
    /// Events read from the snapshot.
    pub from_snapshot: usize,
    /// Bytes of a torn last record cut off the log.
    pub torn_bytes: u64,
    /// Where a corrupt part was moved (`recover`).
    pub quarantined: Option<PathBuf>,
}

impl Replay {
    /// The events to restore, in the order they were recorded.
    pub fn events(&self) -> Vec<Event> {
        self.histories.ordered()
    }
}

/// Sequence numbers stay below this (a damaged record cannot make the next one overflow).
const MAX_SEQ: u64 = 1 << 62;

/// The snapshot's first line.
const SNAPSHOT_HEADER: &str = "tandem-wal-snapshot 1";

/// An append-only, checksummed, fsynced log with group commit.
pub struct Wal {
    path: PathBuf,
    options: WalOptions,
    queue: Mutex<Queue>,
    flushed: Condvar,
    file: Mutex<File>,
    compacting: Arc<AtomicBool>,
}

/// Appends waiting for the next flush, and what the flushes so far did.
struct Queue {
    /// Encoded records of the batch being gathered.
    pending: Vec<u8>,
    pending_records: u64,
    /// The batch being gathered, and the last one written (or failed).
    open_batch: u64,
    done_batch: u64,
    flushing: bool,
    /// Recent batches that failed, with why.
    failures: Vec<(u64, String)>,
    next_seq: u64,
    /// Bytes of the log known to be on disk (a failed write is cut back to this).
    durable_len: u64,
    since_rotation: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Appends one record line for `event` with sequence number `seq`.
fn encode(seq: u64, event: &Event, out: &mut Vec<u8>) {
    let body = format!("{seq} {}", serde_json::to_string(event).expect("events serialise"));
    out.extend_from_slice(format!("{:08x} ", crc32c::crc32c(body.as_bytes())).as_bytes());
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
}

/// One line's record, or why it is not one.
fn decode(line: &[u8]) -> Result<(Option<u64>, Event), String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    if text.starts_with('{') {
        // The first format: a bare JSON event, no checksum or sequence number.
        return serde_json::from_str(text).map(|e| (None, e)).map_err(|e| e.to_string());
    }
    let (crc, body) = text.split_once(' ').ok_or("no checksum")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum field {crc:?}"))?;
    if crc32c::crc32c(body.as_bytes()) != crc {
        return Err("checksum mismatch".into());
    }
    let (seq, json) = body.split_once(' ').ok_or("no sequence number")?;
    let seq = seq.parse::<u64>().ok().filter(|&n| n < MAX_SEQ).ok_or_else(|| format!("bad sequence number {seq:?}"))?;
    let event = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok((Some(seq), event))
}

/// How reading one log file ended.
#[derive(Debug, Default)]
struct Scanned {
    /// Good records read.
    records: u64,
    /// End of the last good record.
    good_len: u64,
    /// The first bad record followed by good ones: its offset, line and why.
    corrupt: Option<(u64, usize, String)>,
}

/// Reads records line by line, handing each to `each`; records without a sequence number get
/// `*next` onwards. A bad last line is torn (reported by `good_len`); a bad line before a good
/// one is corruption, where reading stops (`each` has had the records before it).
fn scan(mut reader: impl BufRead, next: &mut u64, mut each: impl FnMut(u64, Event)) -> std::io::Result<Scanned> {
    let mut scanned = Scanned::default();
    let (mut offset, mut line_no) = (0u64, 0usize);
    let mut first_bad: Option<(u64, usize, String)> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if line.last() != Some(&b'\n') {
            // The end, or a last line without its newline: a torn write.
            break;
        }
        line_no += 1;
        let body = &line[..n - 1];
        if !body.iter().all(u8::is_ascii_whitespace) {
            match decode(body) {
                Ok((seq, event)) => {
                    if let Some(bad) = first_bad.take() {
                        scanned.corrupt = Some(bad);
                        return Ok(scanned);
                    }
                    let seq = seq.unwrap_or(*next);
                    *next = (*next).max(seq + 1);
                    scanned.records += 1;
                    each(seq, event);
                }
                Err(why) => {
                    if first_bad.is_none() {
                        first_bad = Some((offset, line_no, why));
                    }
                }
            }
        }
        offset += n as u64;
        if first_bad.is_none() {
            scanned.good_len = offset;
        }
    }
    Ok(scanned)
}

/// Opens `path` for reading in large buffered chunks, with its length; `None` when missing.
fn open_read(path: &Path) -> Result<Option<(BufReader<File>, u64)>, ServeError> {
    let io = |source| ServeError::Io { path: path.to_path_buf(), source };
    match File::open(path) {
        Ok(f) => {
            let len = f.metadata().map_err(io)?.len();
            Ok(Some((BufReader::with_capacity(1 << 16, f), len)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// Reads `LOG.snapshot` into `into`; returns the sequence number it reaches (0: no snapshot).
fn read_snapshot(path: &Path, into: &mut Histories) -> Result<u64, ServeError> {
    let io = |source| ServeError::Io { path: path.to_path_buf(), source };
    let Some((mut reader, len)) = open_read(path)? else { return Ok(0) };
    let bad = |message: String| ServeError::Snapshot { path: path.to_path_buf(), message };
    let mut header = Vec::new();
    reader.by_ref().take(4096).read_until(b'\n', &mut header).map_err(io)?;
    let header_len = header.len() as u64;
    if header.pop() != Some(b'\n') {
        return Err(bad("no header".into()));
    }
    let header = std::str::from_utf8(&header).map_err(|_| bad("header is not UTF-8".into()))?;
    let fields: HashMap<&str, &str> = header
        .strip_prefix(SNAPSHOT_HEADER)
        .ok_or_else(|| bad(format!("not a snapshot header: {header:?}")))?
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect();
    let number = |key: &str| -> Result<u64, ServeError> {
        fields.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| bad(format!("header without {key}")))
    };
    let (seq, count) = (number("seq")?, number("count")?);
    if seq >= MAX_SEQ {
        return Err(bad(format!("sequence number {seq} out of range")));
    }
    let mut next = 0;
    let scanned = scan(reader, &mut next, |n, e| into.push(n, e)).map_err(io)?;
    // A snapshot is renamed into place whole: any bad or missing record is damage (which
    // --wal-recover does not touch: it is named, not quarantined).
    if let Some((offset, line, why)) = scanned.corrupt {
        let (line, offset) = (line + 1, offset + header_len);
        return Err(bad(format!("line {line} (byte {offset}): {why}: the snapshot is damaged")));
    }
    if scanned.records != count || scanned.good_len != len - header_len {
        return Err(bad(format!("{} of {count} records readable: the snapshot is damaged", scanned.records)));
    }
    Ok(seq)
}

/// Fsyncs the directory holding `path`, so a rename or a new file in it survives a crash.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Writes the snapshot of `histories` (up to `seq`) beside `log`, atomically.
fn write_snapshot(log: &Path, seq: u64, histories: &Histories) -> Result<(), ServeError> {
    let path = sibling(log, ".snapshot");
    let tmp = sibling(log, ".snapshot.tmp");
    let io = |source| ServeError::Io { path: tmp.clone(), source };
    let mut out = BufWriter::with_capacity(1 << 16, File::create(&tmp).map_err(io)?);
    writeln!(out, "{SNAPSHOT_HEADER} seq={seq} count={}", histories.len()).map_err(io)?;
    let mut line = Vec::new();
    for (n, e) in histories.users.values().flatten() {
        line.clear();
        encode(*n, e, &mut line);
        out.write_all(&line).map_err(io)?;
    }
    let f = out.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    sync_dir(log).map_err(io)
}

/// Folds `LOG.1` into the snapshot and removes it; returns the snapshot's sequence number and
/// histories.
fn compact(log: &Path, max_per_user: usize) -> Result<(u64, Histories), ServeError> {
    let rotated = sibling(log, ".1");
    let mut histories = Histories::new(max_per_user);
    let base = read_snapshot(&sibling(log, ".snapshot"), &mut histories)?;
    let io = |source| ServeError::Io { path: rotated.clone(), source };
    let (reader, _) = open_read(&rotated)?.ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))?;
    let (mut seq, mut next) = (base, base + 1);
    let scanned = scan(reader, &mut next, |n, e| {
        if n > base {
            histories.push(n, e);
        }
        seq = seq.max(n);
    })
    .map_err(io)?;
    if let Some((offset, line, message)) = scanned.corrupt {
        return Err(ServeError::Wal { path: rotated, line, offset, message });
    }
    write_snapshot(log, seq, &histories)?;
    std::fs::remove_file(&rotated).map_err(io)?;
    sync_dir(log).map_err(io)?;
    Ok((seq, histories))
}

impl Wal {
    /// Opens (creating) the log at `path` with its snapshot and rotated part, and returns it
    /// with the events to restore; see the module doc for what a torn or a corrupt record does.
    pub fn open(path: &Path, options: WalOptions) -> Result<(Wal, Replay), ServeError> {
        let io = |source| ServeError::Io { path: path.to_path_buf(), source };
        let mut replay = Replay::default();
        // A rotation whose compaction did not finish: finish it first.
        let snapshot_seq = if sibling(path, ".1").exists() {
            let (seq, histories) = compact(path, options.max_per_user)?;
            replay.histories = histories;
            seq
        } else {
            replay.histories = Histories::new(options.max_per_user);
            read_snapshot(&sibling(path, ".snapshot"), &mut replay.histories)?
        };
        replay.from_snapshot = replay.histories.len();
        let mut next = snapshot_seq + 1;
        let (scanned, file_len) = match open_read(path)? {
            Some((reader, len)) => {
                let histories = &mut replay.histories;
                let each = |n, e| {
                    if n > snapshot_seq {
                        histories.push(n, e);
                    }
                };
                (scan(reader, &mut next, each).map_err(io)?, len)
            }
            None => (Scanned::default(), 0),
        };
        // At a bad record followed by good ones, `scan` stops: the records before it are read
        // and `good_len` is its offset, so the same cut serves a torn tail and a quarantine.
        let keep_len = scanned.good_len;
        if let Some((offset, line, message)) = scanned.corrupt {
            if !options.recover {
                return Err(ServeError::Wal { path: path.to_path_buf(), line, offset, message });
            }
            // Everything from the bad record on goes aside; the records before it replay.
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let side = sibling(path, &format!(".quarantine-{now}"));
            let copied = File::open(path).and_then(|mut from| {
                from.seek(SeekFrom::Start(offset))?;
                let mut to = File::create(&side)?;
                std::io::copy(&mut from, &mut to)?;
                to.sync_all()
            });
            copied.map_err(|source| ServeError::Io { path: side.clone(), source })?;
            replay.quarantined = Some(side);
        } else {
            replay.torn_bytes = file_len - keep_len;
        }
        // Records already in the log count towards the next rotation: a server restarted more
        // often than it fills `snapshot_every` must not let the log grow without bound.
        let in_log = scanned.records;
        let file = OpenOptions::new().create(true).read(true).append(true).open(path).map_err(io)?;
        if keep_len < file_len {
            // Cut the torn (or quarantined) tail before anything is appended after it.
            file.set_len(keep_len).and_then(|_| file.sync_all()).map_err(io)?;
        }
        sync_dir(path).map_err(io)?;
        let queue = Queue {
            pending: Vec::new(),
            pending_records: 0,
            open_batch: 1,
            done_batch: 0,
            flushing: false,
            failures: Vec::new(),
            next_seq: next,
            durable_len: keep_len,
            since_rotation: in_log,
        };
        let wal = Wal {
            path: path.to_path_buf(),
            options,
            queue: Mutex::new(queue),
            flushed: Condvar::new(),
            file: Mutex::new(file),
            compacting: Arc::new(AtomicBool::new(false)),
        };
        Ok((wal, replay))
    }

    /// Appends `events` and returns once they are on disk (sharing the write and the fsync
    /// with the appends that arrived meanwhile).
    pub fn append(&self, events: &[Event]) -> Result<(), ServeError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut q = lock(&self.queue);
        let mine = q.open_batch;
        for e in events {
            let seq = q.next_seq;
            q.next_seq += 1;
            encode(seq, e, &mut q.pending);
        }
        q.pending_records += events.len() as u64;
        loop {
            if q.done_batch >= mine {
                return match q.failures.iter().find(|(b, _)| *b == mine) {
                    Some((_, why)) => Err(ServeError::Internal(format!("{}: {why}", self.path.display()))),
                    None => Ok(()),
                };
            }
            if q.flushing {
                q = self.flushed.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: write the batch gathered so far (it holds this append's records).
            q.flushing = true;
            let batch = q.open_batch;
            q.open_batch += 1;
            let bytes = std::mem::take(&mut q.pending);
            let records = std::mem::take(&mut q.pending_records);
            let durable = q.durable_len;
            let rotate = self.options.snapshot_every > 0
                && q.since_rotation + records >= self.options.snapshot_every
                && !self.compacting.load(Ordering::Acquire);
            drop(q);
            let written = self.write(&bytes, durable, rotate);
            q = lock(&self.queue);
            q.flushing = false;
            q.done_batch = batch;
            match written {
                Ok(rotated) => {
                    q.durable_len = if rotated { 0 } else { durable + bytes.len() as u64 };
                    q.since_rotation = if rotated { 0 } else { q.since_rotation + records };
                }
                Err(why) => {
                    q.failures.push((batch, why));
                    let excess = q.failures.len().saturating_sub(64);
                    q.failures.drain(..excess);
                }
            }
            self.flushed.notify_all();
        }
    }

    /// Writes and fsyncs one batch at `durable` (cutting the file back there if that fails);
    /// with `rotate`, then starts a new log. Returns whether it rotated.
    fn write(&self, bytes: &[u8], durable: u64, rotate: bool) -> Result<bool, String> {
        let mut file = lock(&self.file);
        if let Err(e) = file.write_all(bytes).and_then(|_| file.sync_data()) {
            // Whatever part reached the file is not acknowledged: cut it (best effort; a
            // restart cuts a torn tail anyway).
            let _ = file.set_len(durable).and_then(|_| file.sync_data());
            return Err(e.to_string());
        }
        // A failed rotation leaves the log as it was: appends go on, the next batch retries.
        Ok(rotate && self.rotate(&mut file).unwrap_or(false))
    }

    /// Renames the log `LOG.1`, starts a new one and compacts `LOG.1` in the background;
    /// false when a `LOG.1` is still there.
    fn rotate(&self, file: &mut File) -> std::io::Result<bool> {
        let rotated = sibling(&self.path, ".1");
        if rotated.exists() {
            return Ok(false);
        }
        std::fs::rename(&self.path, &rotated)?;
        *file = OpenOptions::new().create(true).read(true).append(true).open(&self.path)?;
        sync_dir(&self.path)?;
        self.compacting.store(true, Ordering::Release);
        let (path, max, flag) = (self.path.clone(), self.options.max_per_user, Arc::clone(&self.compacting));
        std::thread::spawn(move || {
            if let Err(e) = compact(&path, max) {
                // LOG.1 stays; the next start compacts it.
                eprintln!("tandem serve: compacting the interaction log failed: {e}");
            }
            flag.store(false, Ordering::Release);
        });
        Ok(true)
    }

    /// Waits until a background compaction (if any) has finished.
    pub fn wait_for_compaction(&self) {
        while self.compacting.load(Ordering::Acquire) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(user: &str, item: &str) -> Event {
        Event { user: user.into(), item: item.into(), weight: 1.0, time: 7 }
    }

    fn open(path: &Path) -> (Wal, Replay) {
        Wal::open(path, WalOptions::default()).unwrap()
    }

    fn tear(path: &Path, bytes: &[u8]) {
        OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
    }

    /// The case: a crash mid-write, an append after the restart, a second crash
    /// mid-write, a restart: it starts, and every acknowledged event is there, in order.
    #[test]
    fn a_torn_tail_is_cut_before_appending_so_a_second_crash_still_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.wal");
        let (wal, replay) = open(&path);
        assert!(replay.histories.is_empty());
        wal.append(&[ev("u1", "i1"), ev("u2", "i\"2")]).unwrap();
        drop(wal);
        let torn = b"1a2b3c4d 3 {\"user\":\"u3\",\"it";
        tear(&path, torn);
        let (wal, replay) = open(&path);
        assert_eq!(replay.events(), vec![ev("u1", "i1"), ev("u2", "i\"2")]);
        assert_eq!(replay.torn_bytes, torn.len() as u64);
        wal.append(&[ev("u4", "i4")]).unwrap();
        drop(wal);
        // A torn record that got its newline but not its bytes (pages written out of order).
        tear(&path, b"00000000 9 {\"user\":\"u5\"}\n");
        let (wal, replay) = open(&path);
        assert_eq!(replay.events(), vec![ev("u1", "i1"), ev("u2", "i\"2"), ev("u4", "i4")]);
        wal.append(&[ev("u6", "i6")]).unwrap();
        drop(wal);
        let (_, replay) = open(&path);
        assert_eq!(replay.events().len(), 4);
        assert_eq!(replay.torn_bytes, 0);
    }

    #[test]
    fn corruption_in_the_middle_is_named_and_quarantined_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.wal");
        let (wal, _) = open(&path);
        wal.append(&[ev("u1", "i1"), ev("u2", "i2"), ev("u3", "i3")]).unwrap();
        drop(wal);
        // Flip one byte of the second record's item.
        let mut bytes = std::fs::read(&path).unwrap();
        let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let at = second + bytes[second..].windows(2).position(|w| w == b"i2").unwrap();
        bytes[at + 1] = b'9';
        std::fs::write(&path, &bytes).unwrap();
        let e = Wal::open(&path, WalOptions::default()).err().expect("corruption refuses to start").to_string();
        assert!(e.contains("live.wal") && e.contains("line 2") && e.contains(&format!("byte {second}")), "{e}");
        assert!(e.contains("checksum mismatch") && e.contains("--wal-recover"), "{e}");
        let (wal, replay) = Wal::open(&path, WalOptions { recover: true, ..Default::default() }).unwrap();
        assert_eq!(replay.events(), vec![ev("u1", "i1")]);
        let side = replay.quarantined.expect("a side file");
        assert_eq!(std::fs::read(&side).unwrap(), bytes[second..]);
        wal.append(&[ev("u4", "i4")]).unwrap();
        drop(wal);
        assert_eq!(open(&path).1.events(), vec![ev("u1", "i1"), ev("u4", "i4")]);
    }

    #[test]
    fn logs_of_the_first_format_replay_and_carry_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.wal");
        std::fs::write(&path, "{\"user\":\"a\",\"item\":\"x\",\"weight\":1,\"time\":7}\n").unwrap();
        let (wal, replay) = open(&path);
        assert_eq!(replay.events(), vec![ev("a", "x")]);
        wal.append(&[ev("b", "y")]).unwrap();
        drop(wal);
        assert_eq!(open(&path).1.events(), vec![ev("a", "x"), ev("b", "y")]);
    }

    /// Four threads appending at once: every acknowledged event replays, each once, with
    /// distinct sequence numbers.
    #[test]
    fn concurrent_appends_share_flushes_and_all_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.wal");
        let (wal, _) = open(&path);
        std::thread::scope(|s| {
            for t in 0..4 {
                let wal = &wal;
                s.spawn(move || {
                    for k in 0..50 {
                        wal.append(&[ev(&format!("u{t}"), &format!("i{k}"))]).unwrap();
                    }
                });
            }
        });
        drop(wal);
        let (_, replay) = open(&path);
        assert_eq!(replay.events().len(), 200);
        for t in 0..4 {
            let items: Vec<String> =
                replay.events().into_iter().filter(|e| e.user == format!("u{t}")).map(|e| e.item.clone()).collect();
            assert_eq!(items, (0..50).map(|k| format!("i{k}")).collect::<Vec<_>>(), "u{t} in order");
        }
        let (mut next, mut seqs) = (0, Vec::new());
        scan(&std::fs::read(&path).unwrap()[..], &mut next, |n, _| seqs.push(n)).unwrap();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    }

    /// Restarts do not reset the count towards a rotation: six records, a restart, six more
    /// rotate a log set to rotate every ten.
    #[test]
    fn records_before_a_restart_count_towards_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.wal");
        let options = WalOptions { recover: false, max_per_user: 100, snapshot_every: 10 };
        for round in 0..2 {
            let (wal, replay) = Wal::open(&path, options).unwrap();
            assert_eq!(replay.events().len(), 6 * round);
            for k in 0..6 {
                wal.append(&[ev("a", &format!("i{round}-{k}"))]).unwrap();
            }
            wal.wait_for_compaction();
        }
        assert!(sibling(&path, ".snapshot").exists(), "rotated across the restart");
        let (_, replay) = Wal::open(&path, options).unwrap();
        assert_eq!(replay.events().len(), 12);
        assert!(replay.from_snapshot >= 10, "{replay:?}");
    }

    /// Rotation folds the log into a snapshot bounded per user; every crash point between the
    /// steps (snapshot written, `LOG.1` not yet removed) replays to the same events.
    #[test]
    fn rotation_snapshots_bounded_histories_and_survives_a_crash_between_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.wal");
        let options = WalOptions { recover: false, max_per_user: 3, snapshot_every: 10 };
        let (wal, _) = Wal::open(&path, options).unwrap();
        for k in 0..25 {
            wal.append(&[ev(["a", "b"][k % 2], &format!("i{k}"))]).unwrap();
            wal.wait_for_compaction();
        }
        drop(wal);
        assert!(sibling(&path, ".snapshot").exists() && !sibling(&path, ".1").exists());
        let (_, replay) = Wal::open(&path, options).unwrap();
        let items = |r: &Replay, u: &str| -> Vec<String> {
            r.events().into_iter().filter(|e| e.user == u).map(|e| e.item.clone()).collect()
        };
        // The snapshot keeps 3 a user; the 5 records after the last rotation all replay.
        assert!(replay.from_snapshot <= 6 && replay.from_snapshot > 0, "{replay:?}");
        let a = items(&replay, "a");
        assert_eq!(a[a.len() - 3..], ["i20", "i22", "i24"]);
        // A crash right after a rotation (LOG renamed LOG.1, not compacted): the next start
        // compacts it.
        let tail = std::fs::read(&path).unwrap();
        std::fs::rename(&path, sibling(&path, ".1")).unwrap();
        let (_, again) = Wal::open(&path, options).unwrap();
        assert_eq!(items(&again, "a")[..], a[a.len() - 3..]);
        assert_eq!(items(&again, "b").len(), 3);
        assert!(!sibling(&path, ".1").exists());
        // A crash after the snapshot was renamed in but before LOG.1 was removed: LOG.1's
        // records are in the snapshot already and do not count twice.
        std::fs::write(sibling(&path, ".1"), &tail).unwrap();
        let (_, third) = Wal::open(&path, options).unwrap();
        assert_eq!(third.events(), again.events());
        // A damaged snapshot is named.
        let snap = sibling(&path, ".snapshot");
        let mut bytes = std::fs::read(&snap).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 1;
        std::fs::write(&snap, &bytes).unwrap();
        let e = Wal::open(&path, options).err().unwrap().to_string();
        assert!(e.contains("live.wal.snapshot"), "{e}");
    }
}
