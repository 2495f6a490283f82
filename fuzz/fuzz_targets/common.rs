//! What every target shares: fuzz input cut into files.

#![allow(dead_code)]

use std::path::Path;

/// The separator between the files of one input (seeds join real files with it).
pub const SEPARATOR: &[u8] = b"\n--8<--\n";

/// `data` cut at [`SEPARATOR`] into at most `names.len()` parts, written to `dir` under
/// `names` in order (missing parts: the file is not written).
pub fn write_parts(data: &[u8], dir: &Path, names: &[&str]) {
    let mut rest = data;
    for (k, name) in names.iter().enumerate() {
        let (part, tail) = if k + 1 == names.len() {
            (rest, &rest[rest.len()..])
        } else {
            match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
                Some(at) => (&rest[..at], &rest[at + SEPARATOR.len()..]),
                None => {
                    std::fs::write(dir.join(name), rest).unwrap();
                    return;
                }
            }
        };
        std::fs::write(dir.join(name), part).unwrap();
        rest = tail;
    }
}

/// A fresh temporary directory.
pub fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
