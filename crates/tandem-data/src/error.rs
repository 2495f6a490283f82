//! The one error type of the data layer.

use std::path::PathBuf;

/// Where in an input file something went wrong. Lines and columns are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file being read.
    pub file: PathBuf,
    /// 1-based line number (the header is line 1 when there is one).
    pub line: u64,
    /// 1-based column number and the column's name when known.
    pub column: Option<(usize, String)>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, line {}", self.file.display(), self.line)?;
        if let Some((col, name)) = &self.column {
            if name.is_empty() {
                write!(f, ", column {col}")?;
            } else {
                write!(f, ", column {col} ({name})")?;
            }
        }
        Ok(())
    }
}

/// Errors from reading, mapping and splitting data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, not a `source()`, so chains print it once).
        error: std::io::Error,
    },
    /// The file has no header and no rows.
    #[error("{}: the file is empty", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// A configured column does not exist in the file's header.
    #[error("{}, line 1: no column named '{name}' (the header has: {available})", path.display())]
    UnknownColumn {
        /// The file.
        path: PathBuf,
        /// The missing column name.
        name: String,
        /// The header's column names, comma-separated.
        available: String,
    },
    /// A row has fewer fields than the columns it must provide.
    #[error("{at}: expected at least {expected} columns, found {found}")]
    ShortRow {
        /// Where.
        at: Location,
        /// How many columns the mapping needs.
        expected: usize,
        /// How many the row has.
        found: usize,
    },
    /// A field could not be parsed as the value its column holds.
    #[error("{at}: cannot parse '{value}' as {expected}")]
    BadValue {
        /// Where.
        at: Location,
        /// The offending text.
        value: String,
        /// What was expected ("a number", "a date like %Y-%m-%d").
        expected: String,
    },
    /// The CSV layer rejected the file (for example an unterminated quote).
    #[error("{at}: malformed row: {message}")]
    Malformed {
        /// Where.
        at: Location,
        /// The parser's message.
        message: String,
    },
    /// A split or sampler was configured with parameters it cannot use.
    #[error("invalid {what}: {message}")]
    InvalidParameter {
        /// The parameter's name.
        what: String,
        /// Why it is invalid and what is allowed.
        message: String,
    },
    /// The data set holds nothing to work with after reading and filtering.
    #[error("{}: no interactions left after reading and filtering ({detail})", path.display())]
    NoInteractions {
        /// The file.
        path: PathBuf,
        /// What was read and dropped.
        detail: String,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), error: source }
    }
}

/// Result alias for the data layer.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
