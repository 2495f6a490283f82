//! Item metadata: titles, years, genres and any categorical columns.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::log::{default_delimiter, default_true, resolve, ColumnRef};
use super::table::{read_table, Encoding, TableFormat};
use crate::error::{DataError, Result};
use crate::progress::Progress;
use crate::IdMap;

/// What is known about one item beyond its id.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemInfo {
    /// A display title.
    pub title: Option<String>,
    /// Release or production year.
    pub year: Option<i32>,
    /// Genres or tags.
    pub genres: Vec<String>,
    /// Other categorical attributes as (column, value), shared: at H&M size 1.37M customers
    /// carry the same few names and values (owned strings were 330 MB of the recipe's peak).
    pub attributes: Vec<(Arc<str>, Arc<str>)>,
}

/// Genre given as 0/1 flag columns (MovieLens `u.item`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenreFlags {
    /// 1-based position of the first flag column.
    pub first: usize,
    /// The genre of each flag column, in order.
    pub names: Vec<String>,
}

fn default_genre_sep() -> String {
    "|".into()
}

/// An item metadata file and how to read it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    /// The file (plain or gzip).
    pub path: PathBuf,
    /// Field delimiter (default `,`).
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Whether the first line is a header (default true).
    #[serde(default = "default_true")]
    pub header: bool,
    /// `utf8` (default) or `latin1`.
    #[serde(default)]
    pub encoding: Encoding,
    /// The item id column.
    pub id: ColumnRef,
    /// A title column.
    #[serde(default)]
    pub title: Option<ColumnRef>,
    /// A year column (the first 4-digit number in it is the year, so dates work too).
    #[serde(default)]
    pub year: Option<ColumnRef>,
    /// Take the year from a trailing `(1995)` in the title when no year column gives one.
    #[serde(default)]
    pub year_from_title: bool,
    /// A genres column holding a list.
    #[serde(default)]
    pub genres: Option<ColumnRef>,
    /// Separator of the genres list (default `|`).
    #[serde(default = "default_genre_sep")]
    pub genre_separator: String,
    /// Genres as 0/1 flag columns instead of a list.
    #[serde(default)]
    pub genre_flags: Option<GenreFlags>,
    /// Further categorical columns to keep as attributes.
    #[serde(default)]
    pub categorical: Vec<ColumnRef>,
    /// Ignore `categorical` columns the header lacks instead of failing (default false).
    #[serde(default)]
    pub skip_missing_categorical: bool,
}

fn first_year(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(3)).find_map(|i| {
        let w = &b[i..i + 4];
        let bounded = (i == 0 || !b[i - 1].is_ascii_digit()) && (i + 4 == b.len() || !b[i + 4].is_ascii_digit());
        if bounded && w.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(w).ok()?.parse().ok()
        } else {
            None
        }
    })
}

/// The one shared copy of `s` (attribute names and values repeat across rows).
fn intern(shared: &mut HashMap<String, Arc<str>>, s: &str) -> Arc<str> {
    if let Some(a) = shared.get(s) {
        return a.clone();
    }
    let a: Arc<str> = s.into();
    shared.insert(s.to_string(), a.clone());
    a
}

fn year_in_title(title: &str) -> Option<i32> {
    let t = title.trim_end();
    let open = t.rfind('(')?;
    let inner = t[open + 1..].strip_suffix(')')?;
    (inner.len() == 4).then(|| inner.parse().ok()).flatten()
}

/// Reads item metadata into `info` (indexed by dense item index; grown as needed), inserting
/// items that the log did not mention (cold items). Returns the number of rows read.
pub fn read_items(
    spec: &ItemSpec,
    items: &mut IdMap,
    info: &mut Vec<ItemInfo>,
    progress: &dyn Progress,
) -> Result<u64> {
    let path = spec.path.as_path();
    let format = TableFormat { delimiter: spec.delimiter.clone(), header: spec.header, encoding: spec.encoding };
    let mut rows = 0u64;
    let mut shared: HashMap<String, Arc<str>> = HashMap::new();
    read_table(
        path,
        &format,
        progress,
        |h| {
            let r = |c: &ColumnRef| resolve(path, h, c);
            let id = r(&spec.id)?;
            let title = spec.title.as_ref().map(r).transpose()?;
            let year = spec.year.as_ref().map(r).transpose()?;
            let genres = spec.genres.as_ref().map(r).transpose()?;
            let cats = spec
                .categorical
                .iter()
                .map(r)
                .filter(|c| !(spec.skip_missing_categorical && matches!(c, Err(DataError::UnknownColumn { .. }))))
                .collect::<Result<Vec<_>>>()?;
            Ok((id, title, year, genres, cats))
        },
        |(id, title, year, genres, cats), row| {
            let get = |c: &(usize, String)| -> Result<Option<String>> {
                Ok(row.get(c.0, &c.1)?.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
            };
            let Some(raw) = get(id)? else { return Ok(()) };
            rows += 1;
            let idx = items.get_or_insert(&raw) as usize;
            if info.len() <= idx {
                info.resize(idx + 1, ItemInfo::default());
            }
            let mut it = ItemInfo { title: title.as_ref().map(get).transpose()?.flatten(), ..Default::default() };
            it.year = year.as_ref().map(get).transpose()?.flatten().and_then(|y| first_year(&y));
            if it.year.is_none() && spec.year_from_title {
                it.year = it.title.as_deref().and_then(year_in_title);
            }
            if let Some(g) = genres.as_ref().map(get).transpose()?.flatten() {
                it.genres = g
                    .split(spec.genre_separator.as_str())
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
            }
            if let Some(flags) = &spec.genre_flags {
                for (k, name) in flags.names.iter().enumerate() {
                    let col = flags.first - 1 + k;
                    if row.get(col, name)?.is_some_and(|v| v.trim() == "1") {
                        it.genres.push(name.clone());
                    }
                }
            }
            for c in cats {
                if let Some(v) = get(c)? {
                    let name = c.1.split(':').next().unwrap_or("");
                    it.attributes.push((intern(&mut shared, name), intern(&mut shared, &v)));
                }
            }
            info[idx] = it;
            Ok(())
        },
    )?;
    if info.len() < items.len() {
        info.resize(items.len(), ItemInfo::default());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_from_dates_and_titles() {
        assert_eq!(first_year("01-Jan-1995"), Some(1995));
        assert_eq!(first_year("1995"), Some(1995));
        assert_eq!(first_year("12345"), None);
        assert_eq!(year_in_title("Toy Story (1995)"), Some(1995));
        assert_eq!(year_in_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)"), Some(1995));
        assert_eq!(year_in_title("No year"), None);
    }
}
