//! The write-ahead log of live interactions: one JSON object per line, appended and fsynced
//! before the request that brought it is answered, replayed on start. Raw ids are kept, so the
//! log outlives model reloads and retraining.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// An append-only, fsynced log file.
pub struct Wal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Wal {
    /// Opens (creating) `path` and returns it with the events already in it. A torn last line
    /// (a crash mid-write) is dropped; any other unreadable line is an error naming it.
    pub fn open(path: &Path) -> Result<(Wal, Vec<Event>), ServeError> {
        let io = |source| ServeError::Io { path: path.to_path_buf(), source };
        let mut events = Vec::new();
        if path.exists() {
            let lines: Vec<String> =
                BufReader::new(File::open(path).map_err(io)?).lines().collect::<Result<_, _>>().map_err(io)?;
            let n = lines.len();
            for (k, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Event>(line) {
                    Ok(e) => events.push(e),
                    Err(_) if k + 1 == n => {}
                    Err(e) => {
                        return Err(ServeError::Wal { path: path.to_path_buf(), line: k + 1, message: e.to_string() })
                    }
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        Ok((Wal { path: path.to_path_buf(), file: Mutex::new(file) }, events))
    }

    /// Appends `events` and waits until they are on disk.
    pub fn append(&self, events: &[Event]) -> Result<(), ServeError> {
        let mut text = String::new();
        for e in events {
            text += &serde_json::to_string(e).expect("events serialise");
            text.push('\n');
        }
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let io = |source| ServeError::Io { path: self.path.clone(), source };
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)
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

    #[test]
    fn appended_events_are_replayed_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.wal");
        let (wal, old) = Wal::open(&path).unwrap();
        assert!(old.is_empty());
        wal.append(&[ev("u1", "i1"), ev("u2", "i\"2")]).unwrap();
        drop(wal);
        let (wal, back) = Wal::open(&path).unwrap();
        assert_eq!(back, vec![ev("u1", "i1"), ev("u2", "i\"2")]);
        drop(wal);
        // A crash mid-line leaves a torn tail: dropped. A bad line in the middle: an error.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"user\":\"u3\",\"it").unwrap();
        assert_eq!(Wal::open(&path).unwrap().1.len(), 2);
        f.write_all(b"\n{\"user\":\"u4\",\"item\":\"i\",\"weight\":1,\"time\":1}\n").unwrap();
        let e = Wal::open(&path).err().unwrap().to_string();
        assert!(e.contains("live.wal") && e.contains("line 3"), "{e}");
    }
}
