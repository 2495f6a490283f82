//! Rows of delimited text files: CSV with quoting, tab-separated, or a multi-character
//! delimiter such as MovieLens' `::`; plain or gzip-compressed; UTF-8 or Latin-1.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{DataError, Location, Result};
use crate::progress::{Progress, ProgressStep};

/// Text encoding of an input file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 (the default); invalid bytes are an error naming the row.
    #[default]
    Utf8,
    /// ISO-8859-1, as MovieLens 1M/10M `.dat` files and `u.item` use.
    Latin1,
}

/// How a table is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFormat {
    /// Field delimiter; one byte uses the CSV parser (with quotes), more bytes split plainly.
    pub delimiter: String,
    /// Whether the first line names the columns.
    pub header: bool,
    /// Text encoding.
    pub encoding: Encoding,
}

/// One parsed row, borrowed from the reader's buffer.
pub struct Row<'a> {
    /// 1-based line number in the file.
    pub line: u64,
    fields: Fields<'a>,
    encoding: Encoding,
    path: &'a Path,
}

enum Fields<'a> {
    Csv(&'a csv::ByteRecord),
    Split(&'a [&'a [u8]]),
    /// A Parquet row: the batch's columns (text or dictionary-decoded text, or other types
    /// rendered only when a field is read) and the row within it.
    Arrow(&'a [arrow_array::ArrayRef], usize),
}

impl<'a> Row<'a> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.fields {
            Fields::Csv(r) => r.len(),
            Fields::Split(f) => f.len(),
            Fields::Arrow(c, _) => c.len(),
        }
    }

    /// True for a row without fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self, i: usize) -> Option<&'a [u8]> {
        match &self.fields {
            Fields::Csv(r) => r.get(i),
            Fields::Split(f) => f.get(i).copied(),
            Fields::Arrow(..) => None,
        }
    }

    /// Field `i` (0-based) decoded as text, or `None` past the end of the row.
    pub fn get(&self, i: usize, name: &str) -> Result<Option<Cow<'a, str>>> {
        if let Fields::Arrow(columns, r) = self.fields {
            return Ok(columns.get(i).map(|c| arrow_text(c, r)));
        }
        let Some(b) = self.bytes(i) else {
            return Ok(None);
        };
        Ok(Some(match self.encoding {
            Encoding::Latin1 => match std::str::from_utf8(b) {
                Ok(s) if b.is_ascii() => Cow::Borrowed(s),
                _ => Cow::Owned(b.iter().map(|&c| c as char).collect()),
            },
            Encoding::Utf8 => match std::str::from_utf8(b) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => {
                    return Err(DataError::BadValue {
                        at: self.location(Some((i, name))),
                        value: String::from_utf8_lossy(b).into_owned(),
                        expected: "UTF-8 text (set `encoding: latin1` for Latin-1 files)".into(),
                    })
                }
            },
        }))
    }

    /// The location of this row, optionally of one of its fields (0-based index).
    pub fn location(&self, field: Option<(usize, &str)>) -> Location {
        Location { file: self.path.to_path_buf(), line: self.line, column: field.map(|(i, n)| (i + 1, n.to_string())) }
    }
}

/// Row `r` of column `c` as text: strings as they are, dates as `2020-09-22`, anything else as
/// arrow displays it; null as empty.
fn arrow_text(c: &arrow_array::ArrayRef, r: usize) -> Cow<'_, str> {
    use arrow_array::{Array, Date32Array, StringArray};
    if c.is_null(r) {
        return Cow::Borrowed("");
    }
    if let Some(a) = c.as_any().downcast_ref::<StringArray>() {
        return Cow::Borrowed(a.value(r));
    }
    if let Some(a) = c.as_any().downcast_ref::<Date32Array>() {
        let day = chrono::DateTime::from_timestamp(a.value(r) as i64 * 86_400, 0).map(|t| t.date_naive());
        return Cow::Owned(day.map_or_else(String::new, |d| d.to_string()));
    }
    let options = arrow_cast::display::FormatOptions::default();
    Cow::Owned(
        arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &options)
            .map_or_else(|_| String::new(), |f| f.value(r).to_string()),
    )
}

/// Opens `path` for reading, transparently decompressing gzip (detected by its magic bytes).
/// Reports compressed bytes read to `step`.
pub fn open_reader<'p>(path: &Path, step: Option<Box<dyn ProgressStep + 'p>>) -> Result<Box<dyn BufRead + 'p>> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| DataError::io(path, e))?;
    drop(file);
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let counted = Counted { inner: file, step };
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::with_capacity(1 << 16, flate2::read::MultiGzDecoder::new(counted))))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, counted)))
    }
}

struct Counted<'p, R> {
    inner: R,
    step: Option<Box<dyn ProgressStep + 'p>>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(s) = &self.step {
            s.inc(n as u64);
        }
        Ok(n)
    }
}

/// Reads a table: returns its header (if it has one) before any row, then calls `on_row`
/// for each data row. Empty lines are skipped.
pub fn read_table<H>(
    path: &Path,
    format: &TableFormat,
    progress: &dyn Progress,
    on_header: impl FnOnce(Option<&[String]>) -> Result<H>,
    mut on_row: impl FnMut(&H, &Row<'_>) -> Result<()>,
) -> Result<()> {
    let size = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?.len();
    let label = format!("reading {}", path.file_name().map_or(Cow::Borrowed("?"), |s| s.to_string_lossy()));
    let path_buf: PathBuf = path.to_path_buf();
    let delim = format.delimiter.as_bytes();
    let mut on_header = Some(on_header);
    let mut state: Option<H> = None;
    let mut event = |e: Event<'_, '_>| -> Result<()> {
        match e {
            Event::Header(h) => {
                let f = on_header.take().expect("the header is handled once");
                state = Some(f(h)?);
                Ok(())
            }
            Event::Row(r) => on_row(state.as_ref().expect("header before rows"), r),
        }
    };
    if path.is_dir() {
        return read_parquet(&parquet_parts(path)?, &label, progress, &mut event);
    }
    if is_parquet(path) {
        return read_parquet(std::slice::from_ref(&path_buf), &label, progress, &mut event);
    }
    let reader = open_reader(path, Some(progress.step(&label, size)))?;
    if delim.len() == 1 {
        read_csv(reader, &path_buf, delim[0], format, &mut event)
    } else if delim.is_empty() {
        Err(DataError::InvalidParameter { what: "delimiter".into(), message: "must not be empty".into() })
    } else {
        read_split(reader, &path_buf, delim, format, &mut event)
    }
}

enum Event<'h, 'r> {
    Header(Option<&'h [String]>),
    Row(&'h Row<'r>),
}

fn decode_header(bytes: &[&[u8]], encoding: Encoding) -> Vec<String> {
    bytes
        .iter()
        .map(|b| match encoding {
            Encoding::Utf8 => String::from_utf8_lossy(b).trim().trim_start_matches('\u{feff}').to_string(),
            Encoding::Latin1 => b.iter().map(|&c| c as char).collect::<String>().trim().to_string(),
        })
        .collect()
}

fn read_csv(
    reader: Box<dyn BufRead + '_>,
    path: &Path,
    delimiter: u8,
    format: &TableFormat,
    on_event: &mut dyn FnMut(Event<'_, '_>) -> Result<()>,
) -> Result<()> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .quoting(delimiter != b'\t')
        .from_reader(reader);
    let mut rec = csv::ByteRecord::new();
    let mut first = true;
    loop {
        let more = rdr.read_byte_record(&mut rec).map_err(|e| csv_error(path, e))?;
        if !more {
            break;
        }
        let line = rec.position().map_or(0, |p| p.line());
        if first {
            first = false;
            if format.header {
                let fields: Vec<&[u8]> = rec.iter().collect();
                on_event(Event::Header(Some(&decode_header(&fields, format.encoding))))?;
                continue;
            }
            on_event(Event::Header(None))?;
        }
        if rec.len() == 1 && rec.get(0).is_some_and(|f| f.is_empty()) {
            continue;
        }
        on_event(Event::Row(&Row { line, fields: Fields::Csv(&rec), encoding: format.encoding, path }))?;
    }
    if first {
        return Err(DataError::EmptyFile { path: path.to_path_buf() });
    }
    Ok(())
}

/// Whether `path` names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// The part files of a Parquet dataset directory (as Spark and pyarrow write them), in name
/// order; files starting with `_` or `.` (`_SUCCESS`, checksums) are not data.
fn parquet_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_file() && is_parquet(&path) && !name.starts_with(['_', '.']) {
            parts.push(path);
        }
    }
    parts.sort();
    if parts.is_empty() {
        return Err(DataError::Malformed {
            at: Location { file: dir.to_path_buf(), line: 0, column: None },
            message: "a directory was given as the log, but it holds no .parquet files".into(),
        });
    }
    Ok(parts)
}

/// Reads Parquet files (one, or a dataset's parts with one schema) as a table: the schema's
/// column names are the header, and each row's values read as text (numbers as arrow displays
/// them, a date as `2020-09-22`), so column mappings, filters and time formats work as for
/// delimited files. A row's "line" is its 1-based row number within its file.
fn read_parquet(
    files: &[PathBuf],
    label: &str,
    progress: &dyn Progress,
    on_event: &mut dyn FnMut(Event<'_, '_>) -> Result<()>,
) -> Result<()> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut header: Option<Vec<String>> = None;
    for path in files {
        let malformed = |line: u64, message: String| DataError::Malformed {
            at: Location { file: path.to_path_buf(), line, column: None },
            message,
        };
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| malformed(0, format!("not a readable Parquet file: {e}")))?;
        let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
        match &header {
            None => {
                on_event(Event::Header(Some(&names)))?;
                header = Some(names.clone());
            }
            Some(h) if *h != names => {
                return Err(malformed(0, format!("columns {names:?} differ from the first part's {h:?}")));
            }
            Some(_) => {}
        }
        let step = progress.step(label, builder.metadata().file_metadata().num_rows().max(0) as u64);
        let reader = builder.with_batch_size(1 << 16).build().map_err(|e| malformed(0, e.to_string()))?;
        parquet_rows(reader, path, &names, &*step, on_event)?;
    }
    Ok(())
}

fn parquet_rows(
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    path: &Path,
    names: &[String],
    step: &dyn crate::progress::ProgressStep,
    on_event: &mut dyn FnMut(Event<'_, '_>) -> Result<()>,
) -> Result<()> {
    use arrow_schema::DataType;
    let malformed = |line: u64, message: String| DataError::Malformed {
        at: Location { file: path.to_path_buf(), line, column: None },
        message,
    };
    let mut line = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| malformed(line + 1, e.to_string()))?;
        // Text of any width and dictionary-encoded text (pandas categoricals) become plain text
        // columns once per batch; other types are rendered only where a row's field is read.
        let columns = batch
            .columns()
            .iter()
            .zip(names)
            .map(|(c, name)| match c.data_type() {
                DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
                    arrow_cast::cast(c, &DataType::Utf8)
                        .map_err(|e| malformed(line + 1, format!("column '{name}' cannot be read as text: {e}")))
                }
                _ => Ok(c.clone()),
            })
            .collect::<Result<Vec<arrow_array::ArrayRef>>>()?;
        for r in 0..batch.num_rows() {
            line += 1;
            on_event(Event::Row(&Row { line, fields: Fields::Arrow(&columns, r), encoding: Encoding::Utf8, path }))?;
        }
        step.inc(batch.num_rows() as u64);
    }
    Ok(())
}

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => DataError::io(path, io),
        other => DataError::Malformed {
            at: Location { file: path.to_path_buf(), line, column: None },
            message: format!("{other:?}"),
        },
    }
}

fn read_split(
    mut reader: Box<dyn BufRead + '_>,
    path: &Path,
    delim: &[u8],
    format: &TableFormat,
    on_event: &mut dyn FnMut(Event<'_, '_>) -> Result<()>,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut first = true;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        line += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let fields = split_bytes(&buf, delim);
        if first {
            first = false;
            if format.header {
                on_event(Event::Header(Some(&decode_header(&fields, format.encoding))))?;
                continue;
            }
            on_event(Event::Header(None))?;
        }
        if buf.is_empty() {
            continue;
        }
        on_event(Event::Row(&Row { line, fields: Fields::Split(&fields), encoding: format.encoding, path }))?;
    }
    if first {
        return Err(DataError::EmptyFile { path: path.to_path_buf() });
    }
    Ok(())
}

fn split_bytes<'b>(s: &'b [u8], delim: &[u8]) -> Vec<&'b [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + delim.len() <= s.len() {
        if &s[i..i + delim.len()] == delim {
            out.push(&s[start..i]);
            i += delim.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    type Rows = Vec<(u64, Vec<String>)>;

    fn collect(content: &[u8], format: &TableFormat) -> Result<(Option<Vec<String>>, Rows)> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, content).unwrap();
        let mut header = None;
        let mut rows = Vec::new();
        read_table(
            &p,
            format,
            &NoProgress,
            |h| {
                header = h.map(|h| h.to_vec());
                Ok(())
            },
            |_, r| {
                let f = (0..r.len()).map(|i| r.get(i, "").unwrap().unwrap().into_owned()).collect();
                rows.push((r.line, f));
                Ok(())
            },
        )?;
        Ok((header, rows))
    }

    #[test]
    fn multi_char_delimiter_and_latin1() {
        let fmt = TableFormat { delimiter: "::".into(), header: false, encoding: Encoding::Latin1 };
        let (h, rows) = collect(b"1::Caf\xe9 (1995)::Drama|Comedy\n\n2::x::y\n", &fmt).unwrap();
        assert!(h.is_none());
        assert_eq!(rows[0], (1, vec!["1".into(), "Café (1995)".into(), "Drama|Comedy".into()]));
        assert_eq!(rows[1].0, 3);
    }

    #[test]
    fn csv_quotes_and_header() {
        let fmt = TableFormat { delimiter: ",".into(), header: true, encoding: Encoding::Utf8 };
        let (h, rows) = collect(b"movieId,title\n1,\"Toy Story, The (1995)\"\n", &fmt).unwrap();
        assert_eq!(h.unwrap(), vec!["movieId", "title"]);
        assert_eq!(rows, vec![(2, vec!["1".to_string(), "Toy Story, The (1995)".to_string()])]);
    }

    #[test]
    fn empty_file_is_an_error() {
        let fmt = TableFormat { delimiter: ",".into(), header: true, encoding: Encoding::Utf8 };
        let e = collect(b"", &fmt).unwrap_err();
        assert!(e.to_string().contains("the file is empty"), "{e}");
    }
}
