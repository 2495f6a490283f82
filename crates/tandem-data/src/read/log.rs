//! Interaction logs through a column mapping: which column holds the user, the item, the time
//! and the weight, how time is written, and which rows to keep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::table::{read_table, Encoding, Row, TableFormat};
use crate::error::{DataError, Result};
use crate::progress::Progress;
use crate::{IdMap, Interaction, Interactions};

/// A column, by header name or by 1-based position (for files without a header).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    /// 1-based column position.
    Position(usize),
    /// Column name as written in the header.
    Name(String),
}

impl From<&str> for ColumnRef {
    fn from(s: &str) -> Self {
        ColumnRef::Name(s.to_string())
    }
}

impl std::fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnRef::Position(p) => write!(f, "#{p}"),
            ColumnRef::Name(n) => f.write_str(n),
        }
    }
}

/// Which columns play which role.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// The user id column (kept as a string).
    pub user: ColumnRef,
    /// The item id column (kept as a string).
    pub item: ColumnRef,
    /// The timestamp column; without one, the row position is the time.
    #[serde(default)]
    pub time: Option<ColumnRef>,
    /// A rating / quantity / weight column; without one, every row weighs 1.
    #[serde(default)]
    pub weight: Option<ColumnRef>,
}

/// How the time column is written: `unix` (seconds), `unix_ms`, or a chrono `strftime`
/// pattern such as `%Y-%m-%d %H:%M:%S` or `%Y-%m-%d` (read as UTC).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct TimeFormat(pub String);

impl Default for TimeFormat {
    fn default() -> Self {
        TimeFormat("unix".into())
    }
}

impl TimeFormat {
    /// Parses one timestamp to unix seconds.
    pub fn parse(&self, s: &str) -> Option<i64> {
        let s = s.trim();
        match self.0.as_str() {
            "unix" => {
                s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
            }
            "unix_ms" => s.parse::<i64>().ok().map(|ms| ms.div_euclid(1000)),
            fmt => chrono::NaiveDateTime::parse_from_str(s, fmt)
                .map(|t| t.and_utc().timestamp())
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(s, fmt)
                        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp())
                })
                .ok(),
        }
    }
}

/// A condition a row must meet to be kept. Rows that fail a filter are counted, not errors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowFilter {
    /// The column the condition reads.
    pub column: ColumnRef,
    /// Keep rows whose value is a number >= this.
    #[serde(default)]
    pub min: Option<f64>,
    /// Keep rows whose value is a number <= this.
    #[serde(default)]
    pub max: Option<f64>,
    /// Keep rows whose value does not start with this text (e.g. `C` for cancelled invoices).
    #[serde(default)]
    pub not_starts_with: Option<String>,
    /// Keep rows whose value is not empty (after trimming spaces).
    #[serde(default)]
    pub non_empty: bool,
}

impl RowFilter {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.min {
            parts.push(format!(">= {m}"));
        }
        if let Some(m) = self.max {
            parts.push(format!("<= {m}"));
        }
        if let Some(p) = &self.not_starts_with {
            parts.push(format!("not starting with '{p}'"));
        }
        if self.non_empty {
            parts.push("non-empty".into());
        }
        format!("{} {}", self.column, parts.join(", "))
    }
}

/// What to do with a row that cannot be read (short, or a value that does not parse).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadRows {
    /// Stop with an error naming file, line and column (the default).
    #[default]
    Error,
    /// Skip the row, count it, and report how many were skipped and why.
    Skip,
}

pub(super) fn default_delimiter() -> String {
    ",".into()
}

pub(super) fn default_true() -> bool {
    true
}

/// A delimited interaction log and how to read it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// The file (plain or gzip-compressed).
    pub path: PathBuf,
    /// Field delimiter (`,` by default; `"\t"` for TSV; `::` for MovieLens `.dat`).
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Whether the first line is a header naming the columns (default true).
    #[serde(default = "default_true")]
    pub header: bool,
    /// `utf8` (default) or `latin1`.
    #[serde(default)]
    pub encoding: Encoding,
    /// Which column holds what.
    pub columns: Columns,
    /// How the time column is written (default `unix`).
    #[serde(default)]
    pub time_format: TimeFormat,
    /// When set, the item field holds a list of items separated by this text (the course
    /// format `UserId,ItemId` with space-separated items); list position is the time.
    #[serde(default)]
    pub item_list_separator: Option<String>,
    /// Row filters; a row is kept when it meets all of them.
    #[serde(default)]
    pub filters: Vec<RowFilter>,
    /// `error` (default) or `skip` for rows that cannot be read.
    #[serde(default)]
    pub on_bad_row: BadRows,
}

impl LogSpec {
    /// A spec with the given path, delimiter, header flag and columns, and defaults elsewhere.
    pub fn new(path: impl Into<PathBuf>, delimiter: &str, header: bool, columns: Columns) -> Self {
        LogSpec {
            path: path.into(),
            delimiter: delimiter.into(),
            header,
            encoding: Encoding::Utf8,
            columns,
            time_format: TimeFormat::default(),
            item_list_separator: None,
            filters: Vec::new(),
            on_bad_row: BadRows::Error,
        }
    }

    pub(crate) fn table_format(&self) -> TableFormat {
        TableFormat { delimiter: self.delimiter.clone(), header: self.header, encoding: self.encoding }
    }
}

/// What reading a log did: rows read, kept, filtered (per filter) and skipped (per reason).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LoadReport {
    /// The file.
    pub path: String,
    /// Data rows read (excluding the header).
    pub rows_read: u64,
    /// Interactions kept.
    pub rows_kept: u64,
    /// Rows dropped by each filter, keyed by the filter's description.
    pub filtered: BTreeMap<String, u64>,
    /// Rows skipped as unreadable (only with `on_bad_row: skip`), keyed by reason.
    pub skipped: BTreeMap<String, u64>,
    /// The first skipped row's full message, as an example.
    pub first_skipped: Option<String>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} rows read, {} interactions kept", self.path, self.rows_read, self.rows_kept)?;
        for (why, n) in &self.filtered {
            write!(f, "; {n} dropped by filter {why}")?;
        }
        for (why, n) in &self.skipped {
            write!(f, "; {n} skipped ({why})")?;
        }
        if let Some(e) = &self.first_skipped {
            write!(f, "; first skipped: {e}")?;
        }
        Ok(())
    }
}

/// Resolves a column reference against the header to a 0-based index.
pub(crate) fn resolve(path: &Path, header: Option<&[String]>, col: &ColumnRef) -> Result<(usize, String)> {
    match (col, header) {
        (ColumnRef::Position(0), _) => Err(DataError::InvalidParameter {
            what: "column position".into(),
            message: "positions are 1-based; 0 is not a column".into(),
        }),
        (ColumnRef::Position(p), h) => {
            let name = h.and_then(|h| h.get(p - 1).cloned()).unwrap_or_default();
            Ok((p - 1, name))
        }
        (ColumnRef::Name(n), Some(h)) => {
            // RecBole atomic headers write `name:type`; accept the bare name too.
            let found = h.iter().position(|c| c == n || c.split(':').next() == Some(n.as_str()));
            found.map(|i| (i, h[i].clone())).ok_or_else(|| DataError::UnknownColumn {
                path: path.to_path_buf(),
                name: n.clone(),
                available: h.join(", "),
            })
        }
        (ColumnRef::Name(n), None) => Err(DataError::InvalidParameter {
            what: format!("column '{n}'"),
            message: format!("{} has no header (header: false), so columns must be 1-based positions", path.display()),
        }),
    }
}

struct Resolved {
    user: (usize, String),
    item: (usize, String),
    time: Option<(usize, String)>,
    weight: Option<(usize, String)>,
    filters: Vec<((usize, String), RowFilter, String)>,
    needed: usize,
    /// The last time text parsed and its value: logs hold runs of equal dates (H&M's 31.8M
    /// rows have 734), and parsing one costs more than the rest of a row.
    last_time: std::cell::RefCell<(String, i64)>,
}

/// Reads a log into `users`/`items` (which may already hold ids) and returns its rows.
pub fn read_log(
    spec: &LogSpec,
    users: &mut IdMap,
    items: &mut IdMap,
    progress: &dyn Progress,
) -> Result<(Interactions, LoadReport)> {
    let path = spec.path.as_path();
    let mut report = LoadReport { path: path.display().to_string(), ..Default::default() };
    let mut out = Interactions::new();
    read_table(
        path,
        &spec.table_format(),
        progress,
        |header| {
            let r = |c: &ColumnRef| resolve(path, header, c);
            let user = r(&spec.columns.user)?;
            let item = r(&spec.columns.item)?;
            let time = spec.columns.time.as_ref().map(r).transpose()?;
            let weight = spec.columns.weight.as_ref().map(r).transpose()?;
            let filters = spec
                .filters
                .iter()
                .map(|f| Ok((r(&f.column)?, f.clone(), f.describe())))
                .collect::<Result<Vec<_>>>()?;
            let needed = [Some(&user), Some(&item), time.as_ref(), weight.as_ref()]
                .into_iter()
                .flatten()
                .chain(filters.iter().map(|f| &f.0))
                .map(|c| c.0 + 1)
                .max()
                .unwrap_or(0);
            Ok(Resolved { user, item, time, weight, filters, needed, last_time: Default::default() })
        },
        |c, row| {
            report.rows_read += 1;
            match parse_row(spec, c, row, users, items, &mut out, &mut report) {
                Ok(()) => Ok(()),
                Err(e) if spec.on_bad_row == BadRows::Skip => {
                    let reason = match &e {
                        DataError::ShortRow { .. } => "short row".to_string(),
                        DataError::BadValue { at, .. } => {
                            format!("bad value in column {}", at.column.as_ref().map_or(String::new(), |c| c.1.clone()))
                        }
                        _ => "unreadable row".to_string(),
                    };
                    *report.skipped.entry(reason).or_default() += 1;
                    report.first_skipped.get_or_insert_with(|| e.to_string());
                    Ok(())
                }
                Err(e) => Err(e),
            }
        },
    )?;
    report.rows_kept = out.len() as u64;
    Ok((out, report))
}

fn parse_row(
    spec: &LogSpec,
    c: &Resolved,
    row: &Row<'_>,
    users: &mut IdMap,
    items: &mut IdMap,
    out: &mut Interactions,
    report: &mut LoadReport,
) -> Result<()> {
    if row.len() < c.needed {
        return Err(DataError::ShortRow { at: row.location(None), expected: c.needed, found: row.len() });
    }
    let field = |col: &(usize, String)| -> Result<String> {
        Ok(row.get(col.0, &col.1)?.map(|s| s.trim().to_string()).unwrap_or_default())
    };
    let number = |col: &(usize, String), text: &str| -> Result<f64> {
        text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| DataError::BadValue {
            at: row.location(Some((col.0, &col.1))),
            value: text.to_string(),
            expected: "a number".into(),
        })
    };
    for (col, f, desc) in &c.filters {
        let v = field(col)?;
        let mut keep = !(f.non_empty && v.is_empty());
        if let Some(p) = &f.not_starts_with {
            keep &= !v.starts_with(p.as_str());
        }
        if keep && (f.min.is_some() || f.max.is_some()) {
            let x = number(col, &v)?;
            keep &= f.min.is_none_or(|m| x >= m) && f.max.is_none_or(|m| x <= m);
        }
        if !keep {
            *report.filtered.entry(desc.clone()).or_default() += 1;
            return Ok(());
        }
    }
    let user_raw = field(&c.user)?;
    let item_raw = field(&c.item)?;
    for (col, v) in [(&c.user, &user_raw), (&c.item, &item_raw)] {
        if v.is_empty() {
            return Err(DataError::BadValue {
                at: row.location(Some((col.0, &col.1))),
                value: String::new(),
                expected: "a non-empty id (add a `non_empty` filter to drop such rows)".into(),
            });
        }
    }
    let time = match &c.time {
        Some(col) => {
            let t = field(col)?;
            let mut last = c.last_time.borrow_mut();
            if last.0 != t || t.is_empty() {
                let parsed = spec.time_format.parse(&t).ok_or_else(|| DataError::BadValue {
                    at: row.location(Some((col.0, &col.1))),
                    value: t.clone(),
                    expected: format!("a time in format '{}'", spec.time_format.0),
                })?;
                *last = (t, parsed);
            }
            last.1
        }
        None => row.line as i64,
    };
    let weight = match &c.weight {
        Some(col) => number(col, &field(col)?)? as f32,
        None => 1.0,
    };
    let user = users.get_or_insert(&user_raw);
    match &spec.item_list_separator {
        None => out.push(Interaction { user, item: items.get_or_insert(&item_raw), time, weight }),
        Some(sep) => {
            // List position orders the items: time = line * 2^20 + position.
            for (pos, it) in item_raw.split(sep.as_str()).filter(|s| !s.is_empty()).enumerate() {
                let t = (row.line as i64) * (1 << 20) + pos as i64;
                out.push(Interaction { user, item: items.get_or_insert(it), time: t, weight });
            }
        }
    }
    Ok(())
}
