//! Readers: tables, logs through a column mapping, item metadata, and named sources.

mod items;
mod log;
mod source;
mod table;

pub use items::{read_items, GenreFlags, ItemInfo, ItemSpec};
pub use log::{read_log, BadRows, ColumnRef, Columns, LoadReport, LogSpec, RowFilter, TimeFormat};
pub use source::{
    read_negatives, CourseSource, DelimitedSource, HmSource, MovielensSource, Negatives, Source, SplitDir,
    ML100K_GENRES,
};
pub use table::{open_reader, read_table, Encoding, Row, TableFormat};
