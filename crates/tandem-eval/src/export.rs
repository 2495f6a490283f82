//! Batch outputs in raw ids: predictions TSV, the H&M submission and the course file.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tandem_data::IdMap;
use tandem_models::Scored;

/// Errors writing outputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The file could not be written.
    #[error("cannot write {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, not a `source()`, so chains print it once).
        error: std::io::Error,
    },
}

/// A ranked list per user (dense indices, best first).
pub type Lists = [(u32, Vec<Scored>)];

/// Submission layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionFormat {
    /// Kaggle H&M: `customer_id,prediction`, article ids space-separated (12 by default).
    Hm,
    /// The MF course: `UserId,ItemId`, item ids space-separated (50 by default).
    Course,
    /// `user<TAB>item<TAB>rank<TAB>score`, one row per recommendation.
    Tsv,
}

impl SubmissionFormat {
    /// The usual list length of the format.
    pub fn default_k(self) -> usize {
        match self {
            SubmissionFormat::Hm => 12,
            SubmissionFormat::Course => 50,
            SubmissionFormat::Tsv => 100,
        }
    }
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, ExportError> {
    let io = |error| ExportError::Io { path: path.to_path_buf(), error };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    Ok(std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?))
}

/// Writes ranked lists in `format` with raw ids as they are produced: the header when created,
/// a user's rows per [`ListWriter::write`], so a submission for millions of users never sits in
/// memory whole.
pub struct ListWriter<'a> {
    path: PathBuf,
    format: SubmissionFormat,
    users: &'a IdMap,
    items: &'a IdMap,
    k: usize,
    out: std::io::BufWriter<std::fs::File>,
}

impl<'a> ListWriter<'a> {
    /// Creates `path` (and its directory) and writes the format's header; lists are cut to `k`.
    pub fn create(
        path: &Path,
        format: SubmissionFormat,
        users: &'a IdMap,
        items: &'a IdMap,
        k: usize,
    ) -> Result<Self, ExportError> {
        let mut w = ListWriter { path: path.to_path_buf(), format, users, items, k, out: create(path)? };
        let header = match format {
            SubmissionFormat::Tsv => "user\titem\trank\tscore",
            SubmissionFormat::Hm => "customer_id,prediction",
            SubmissionFormat::Course => "UserId,ItemId",
        };
        writeln!(w.out, "{header}").map_err(|e| w.error(e))?;
        Ok(w)
    }

    fn error(&self, error: std::io::Error) -> ExportError {
        ExportError::Io { path: self.path.clone(), error }
    }

    /// Writes `user`'s list (best first).
    pub fn write(&mut self, user: u32, list: &[Scored]) -> Result<(), ExportError> {
        let (u, list) = (self.users.raw(user), &list[..list.len().min(self.k)]);
        let written = match self.format {
            SubmissionFormat::Tsv => list
                .iter()
                .enumerate()
                .try_for_each(|(r, s)| writeln!(self.out, "{u}\t{}\t{}\t{}", self.items.raw(s.item), r + 1, s.score)),
            SubmissionFormat::Hm | SubmissionFormat::Course => {
                let ids: Vec<&str> = list.iter().map(|s| self.items.raw(s.item)).collect();
                writeln!(self.out, "{u},{}", ids.join(" "))
            }
        };
        written.map_err(|e| self.error(e))
    }

    /// Flushes the file.
    pub fn finish(mut self) -> Result<(), ExportError> {
        self.out.flush().map_err(|e| self.error(e))
    }
}

/// Writes `lists` (each truncated to `k`) in `format`, with raw ids.
pub fn write_lists(
    path: &Path,
    format: SubmissionFormat,
    users: &IdMap,
    items: &IdMap,
    lists: &Lists,
    k: usize,
) -> Result<(), ExportError> {
    let mut w = ListWriter::create(path, format, users, items, k)?;
    for (u, list) in lists {
        w.write(*u, list)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_raw_ids_in_each_format() {
        let mut users = IdMap::new();
        let mut items = IdMap::new();
        users.get_or_insert("00ab");
        for i in ["0108775015", "0108775044", "0110065001"] {
            items.get_or_insert(i);
        }
        let lists = vec![(
            0u32,
            vec![Scored { item: 2, score: 3.0 }, Scored { item: 0, score: 1.5 }, Scored { item: 1, score: 1.0 }],
        )];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/hm.csv");
        write_lists(&p, SubmissionFormat::Hm, &users, &items, &lists, 2).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "customer_id,prediction\n00ab,0110065001 0108775015\n");
        write_lists(&p, SubmissionFormat::Course, &users, &items, &lists, 50).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "UserId,ItemId\n00ab,0110065001 0108775015 0108775044\n");
        write_lists(&p, SubmissionFormat::Tsv, &users, &items, &lists, 1).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "user\titem\trank\tscore\n00ab\t0110065001\t1\t3\n");
    }
}
