//! Named data sources: presets for MovieLens, H&M and the course format, the generic delimited
//! log, and directories that are already split.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::items::{read_items, GenreFlags, ItemSpec};
use super::log::{read_log, BadRows, ColumnRef, Columns, LogSpec, TimeFormat};
use super::table::Encoding;
use crate::error::{DataError, Result};
use crate::progress::Progress;
use crate::{Dataset, IdMap, Interactions};

/// Where the interactions come from, tagged by `format`. Paths are used as given (the CLI
/// resolves them against the config file's directory).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Source {
    /// Any delimited log through a column mapping.
    Delimited(Box<DelimitedSource>),
    /// MovieLens in any of its layouts.
    Movielens(MovielensSource),
    /// The H&M Kaggle layout.
    Hm(HmSource),
    /// The course format.
    Course(CourseSource),
}

/// Any delimited log through a column mapping, with optional item metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelimitedSource {
    /// The log and its mapping.
    pub log: LogSpec,
    /// Optional item metadata.
    #[serde(default)]
    pub items: Option<ItemSpec>,
}

/// MovieLens in any of its layouts, detected from `path` (a directory or the ratings file):
/// ml-100k `u.data` + `u.item`; RecBole atomic `.inter` + `.item` + `.user`; ml-1m/10m
/// `ratings.dat` + `movies.dat` (`::`, Latin-1); ml-20m and later `ratings.csv` + `movies.csv`.
/// The rating is the weight.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovielensSource {
    /// Directory or ratings file.
    pub path: PathBuf,
    /// `error` (default) or `skip` for unreadable rows.
    #[serde(default)]
    pub on_bad_row: BadRows,
}

/// The H&M Kaggle layout: a directory with `transactions_train.csv` and optionally
/// `articles.csv` and `customers.csv`, each read from its `.parquet` twin instead when one is
/// there (a `t_dat` date column reads as the CSV's text does). Ids stay strings (leading zeros
/// kept).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmSource {
    /// The directory.
    pub path: PathBuf,
    /// `error` (default) or `skip` for unreadable rows.
    #[serde(default)]
    pub on_bad_row: BadRows,
}

/// The course format: `UserId,ItemId` where ItemId is a space-separated item list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseSource {
    /// The `train.csv` file.
    pub path: PathBuf,
}

impl Source {
    /// Rewrites relative paths as relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match self {
            Source::Delimited(d) => {
                let DelimitedSource { log, items } = &mut **d;
                fix(&mut log.path);
                if let Some(i) = items {
                    fix(&mut i.path);
                }
            }
            Source::Movielens(MovielensSource { path, .. })
            | Source::Hm(HmSource { path, .. })
            | Source::Course(CourseSource { path }) => fix(path),
        }
    }

    /// Reads the source into a [`Dataset`].
    pub fn load(&self, progress: &dyn Progress) -> Result<Dataset> {
        let (log, items, users) = self.specs()?;
        let mut ds = Dataset::default();
        let (inter, report) = read_log(&log, &mut ds.users, &mut ds.items, progress)?;
        if inter.is_empty() {
            return Err(DataError::NoInteractions { path: log.path.clone(), detail: report.to_string() });
        }
        ds.interactions = inter;
        ds.reports.push(report);
        if let Some(spec) = items {
            read_items(&spec, &mut ds.items, &mut ds.item_info, progress)?;
        }
        if let Some(spec) = users {
            read_items(&spec, &mut ds.users, &mut ds.user_info, progress)?;
        }
        ds.item_info.resize(ds.items.len(), Default::default());
        ds.user_info.resize(ds.users.len(), Default::default());
        Ok(ds)
    }

    fn specs(&self) -> Result<(LogSpec, Option<ItemSpec>, Option<ItemSpec>)> {
        Ok(match self {
            Source::Delimited(d) => (d.log.clone(), d.items.clone(), None),
            Source::Course(CourseSource { path }) => {
                let mut log = LogSpec::new(path, ",", true, cols("UserId", "ItemId", None, None));
                log.item_list_separator = Some(" ".into());
                (log, None, None)
            }
            Source::Hm(HmSource { path, on_bad_row }) => {
                let file = |stem: &str| {
                    let parquet = path.join(format!("{stem}.parquet"));
                    if parquet.exists() {
                        parquet
                    } else {
                        path.join(format!("{stem}.csv"))
                    }
                };
                let mut log = LogSpec::new(
                    file("transactions_train"),
                    ",",
                    true,
                    cols("customer_id", "article_id", Some("t_dat"), None),
                );
                log.time_format = TimeFormat("%Y-%m-%d".into());
                log.on_bad_row = *on_bad_row;
                let articles = file("articles");
                let items = articles.exists().then(|| ItemSpec {
                    title: Some("prod_name".into()),
                    categorical: [
                        "product_type_name",
                        "product_group_name",
                        "graphical_appearance_name",
                        "colour_group_name",
                        "perceived_colour_value_name",
                        "department_name",
                        "index_name",
                        "section_name",
                        "garment_group_name",
                    ]
                    .map(ColumnRef::from)
                    .to_vec(),
                    ..item_spec(articles, ",", true, Encoding::Utf8, "article_id")
                });
                let customers = file("customers");
                let users = customers.exists().then(|| ItemSpec {
                    categorical: ["club_member_status", "fashion_news_frequency", "age"].map(ColumnRef::from).to_vec(),
                    ..item_spec(customers, ",", true, Encoding::Utf8, "customer_id")
                });
                (log, items, users)
            }
            Source::Movielens(MovielensSource { path, on_bad_row }) => {
                let (mut log, items, users) = movielens(path)?;
                log.on_bad_row = *on_bad_row;
                (log, items, users)
            }
        })
    }
}

fn cols(user: &str, item: &str, time: Option<&str>, weight: Option<&str>) -> Columns {
    Columns {
        user: user.into(),
        item: item.into(),
        time: time.map(ColumnRef::from),
        weight: weight.map(ColumnRef::from),
    }
}

fn pos_cols(user: usize, item: usize, weight: usize, time: usize) -> Columns {
    Columns {
        user: ColumnRef::Position(user),
        item: ColumnRef::Position(item),
        time: Some(ColumnRef::Position(time)),
        weight: Some(ColumnRef::Position(weight)),
    }
}

fn item_spec(path: PathBuf, delimiter: &str, header: bool, encoding: Encoding, id: &str) -> ItemSpec {
    ItemSpec {
        path,
        delimiter: delimiter.into(),
        header,
        encoding,
        id: id.into(),
        title: None,
        year: None,
        year_from_title: false,
        genres: None,
        genre_separator: "|".into(),
        genre_flags: None,
        categorical: Vec::new(),
        // Presets list the attributes of the published files; a file may carry fewer.
        skip_missing_categorical: true,
    }
}

/// The genres of MovieLens 100K's `u.item` flag columns, in order (from `u.genre`).
pub const ML100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// How to read a MovieLens item file, by its name: ml-100k's `u.item`, RecBole's `*.item`,
/// ml-1m/10m's `movies.dat` or ml-20m+'s `movies.csv`; `None` for any other name.
fn movielens_items(p: PathBuf) -> Option<ItemSpec> {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Some(if name == "u.item" {
        ItemSpec {
            id: ColumnRef::Position(1),
            title: Some(ColumnRef::Position(2)),
            year: Some(ColumnRef::Position(3)),
            year_from_title: true,
            genre_flags: Some(GenreFlags { first: 6, names: ML100K_GENRES.map(String::from).to_vec() }),
            ..item_spec(p, "|", false, Encoding::Latin1, "")
        }
    } else if name.ends_with(".item") {
        ItemSpec {
            title: Some("movie_title".into()),
            year: Some("release_year".into()),
            genres: Some("class".into()),
            genre_separator: " ".into(),
            ..item_spec(p, "\t", true, Encoding::Utf8, "item_id")
        }
    } else if name == "movies.dat" {
        ItemSpec {
            id: ColumnRef::Position(1),
            title: Some(ColumnRef::Position(2)),
            year_from_title: true,
            genres: Some(ColumnRef::Position(3)),
            ..item_spec(p, "::", false, Encoding::Latin1, "")
        }
    } else if name == "movies.csv" {
        ItemSpec {
            title: Some("title".into()),
            year_from_title: true,
            genres: Some("genres".into()),
            ..item_spec(p, ",", true, Encoding::Utf8, "movieId")
        }
    } else {
        return None;
    })
}

fn movielens(path: &Path) -> Result<(LogSpec, Option<ItemSpec>, Option<ItemSpec>)> {
    let (dir, file) = if path.is_dir() {
        let pick = ["u.data", "ratings.dat", "ratings.csv"].iter().map(|f| path.join(f)).find(|p| p.exists());
        let inter = std::fs::read_dir(path)
            .map_err(|e| DataError::io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "inter"));
        let file = pick.or(inter).ok_or_else(|| DataError::InvalidParameter {
            what: "movielens path".into(),
            message: format!(
                "{} holds none of u.data, ratings.dat, ratings.csv or a RecBole .inter file",
                path.display()
            ),
        })?;
        (path.to_path_buf(), file)
    } else {
        (path.parent().map_or_else(PathBuf::new, Path::to_path_buf), path.to_path_buf())
    };
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let side = |f: &str| Some(dir.join(f)).filter(|p| p.exists());
    Ok(if name.ends_with(".inter") {
        let stem = name.trim_end_matches(".inter");
        let log = LogSpec::new(&file, "\t", true, cols("user_id", "item_id", Some("timestamp"), Some("rating")));
        let items = side(&format!("{stem}.item")).and_then(movielens_items);
        let users = side(&format!("{stem}.user")).map(|p| ItemSpec {
            categorical: ["age", "gender", "occupation"].map(ColumnRef::from).to_vec(),
            ..item_spec(p, "\t", true, Encoding::Utf8, "user_id")
        });
        (log, items, users)
    } else if name == "u.data" {
        let log = LogSpec::new(&file, "\t", false, pos_cols(1, 2, 3, 4));
        let items = side("u.item").and_then(movielens_items);
        let users = side("u.user").map(|p| ItemSpec {
            id: ColumnRef::Position(1),
            categorical: vec![ColumnRef::Position(2), ColumnRef::Position(3), ColumnRef::Position(4)],
            ..item_spec(p, "|", false, Encoding::Utf8, "")
        });
        (log, items, users)
    } else if name.ends_with(".dat") {
        let mut log = LogSpec::new(&file, "::", false, pos_cols(1, 2, 3, 4));
        log.encoding = Encoding::Latin1;
        let items = side("movies.dat").and_then(movielens_items);
        let users = side("users.dat").map(|p| ItemSpec {
            id: ColumnRef::Position(1),
            categorical: vec![ColumnRef::Position(2), ColumnRef::Position(3), ColumnRef::Position(4)],
            ..item_spec(p, "::", false, Encoding::Latin1, "")
        });
        (log, items, users)
    } else {
        let log = LogSpec::new(&file, ",", true, cols("userId", "movieId", Some("timestamp"), Some("rating")));
        let items = side("movies.csv").and_then(movielens_items);
        (log, items, None)
    })
}

/// Negatives per user: (user index, item indices), in file order.
pub type Negatives = Vec<(u32, Vec<u32>)>;

/// A directory already split into `train.tsv`, optional `valid.tsv`, `test.tsv`, and optional
/// `test_negatives.tsv` / `valid_negatives.tsv` (user, comma-separated items), in the layout
/// of the canonical ml-100k splits (header `user item timestamp`).
#[derive(Debug, Clone)]
pub struct SplitDir {
    /// All three parts' ids; `interactions` holds train, then valid, then test.
    pub dataset: Dataset,
    /// Training rows.
    pub train: Interactions,
    /// Validation rows (empty without `valid.tsv`).
    pub valid: Interactions,
    /// Test rows.
    pub test: Interactions,
    /// Sampled negatives per test user, when `test_negatives.tsv` exists.
    pub test_negatives: Option<Negatives>,
    /// Sampled negatives per validation user, when `valid_negatives.tsv` exists.
    pub valid_negatives: Option<Negatives>,
}

fn split_file_spec(path: PathBuf) -> LogSpec {
    LogSpec::new(path, "\t", true, cols("user", "item", Some("timestamp"), None))
}

impl SplitDir {
    /// Reads the directory. Train ids are mapped first, so train items hold the lowest indices.
    pub fn load(dir: &Path, progress: &dyn Progress) -> Result<SplitDir> {
        Self::read(dir, true, progress)
    }

    /// Reads the directory's training and validation parts only: `test.tsv` and
    /// `test_negatives.tsv` are not opened (tuning must not see them).
    pub fn load_without_test(dir: &Path, progress: &dyn Progress) -> Result<SplitDir> {
        Self::read(dir, false, progress)
    }

    fn read(dir: &Path, with_test: bool, progress: &dyn Progress) -> Result<SplitDir> {
        if !dir.is_dir() {
            return Err(DataError::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory")));
        }
        let mut ds = Dataset::default();
        let mut part = |name: &str, required: bool| -> Result<Interactions> {
            let p = dir.join(name);
            if !required && !p.exists() {
                return Ok(Interactions::new());
            }
            let (inter, report) = read_log(&split_file_spec(p), &mut ds.users, &mut ds.items, progress)?;
            ds.reports.push(report);
            Ok(inter)
        };
        let train = part("train.tsv", true)?;
        let valid = part("valid.tsv", false)?;
        let test = if with_test { part("test.tsv", true)? } else { Interactions::new() };
        let test_negatives = match with_test {
            true => read_negatives(&dir.join("test_negatives.tsv"), &mut ds.users, &mut ds.items, progress)?,
            false => None,
        };
        let valid_negatives = read_negatives(&dir.join("valid_negatives.tsv"), &mut ds.users, &mut ds.items, progress)?;
        for part in [&train, &valid, &test] {
            ds.interactions.extend(part);
        }
        ds.item_info.resize(ds.items.len(), Default::default());
        ds.user_info.resize(ds.users.len(), Default::default());
        Ok(SplitDir { dataset: ds, train, valid, test, test_negatives, valid_negatives })
    }

    /// Adds item metadata from a MovieLens item file (RecBole `*.item`, `u.item`, `movies.dat`,
    /// `movies.csv`), matched to the split's items by id; items only in the file get indices
    /// after every split item.
    pub fn read_item_metadata(&mut self, path: &Path, progress: &dyn Progress) -> Result<()> {
        let spec = movielens_items(path.to_path_buf()).ok_or_else(|| DataError::InvalidParameter {
            what: "item metadata".into(),
            message: format!(
                "{}: not a MovieLens item file (expected a RecBole .item, u.item, movies.dat or movies.csv)",
                path.display()
            ),
        })?;
        let ds = &mut self.dataset;
        read_items(&spec, &mut ds.items, &mut ds.item_info, progress)?;
        ds.item_info.resize(ds.items.len(), Default::default());
        Ok(())
    }

    /// The (user, item) pairs a MovieLens ratings file (`u.data`, `ratings.dat`, `ratings.csv`
    /// or a RecBole `.inter`, by name) rates at most `threshold`: explicit negatives, in the
    /// split's indices. Pairs whose user or item the split does not have are left out.
    pub fn read_explicit_negatives(
        &self,
        path: &Path,
        threshold: f32,
        progress: &dyn Progress,
    ) -> Result<Vec<(u32, u32)>> {
        let (spec, _, _) = movielens(path)?;
        let (mut users, mut items) = (IdMap::new(), IdMap::new());
        let (log, _) = read_log(&spec, &mut users, &mut items, progress)?;
        let ds = &self.dataset;
        Ok(log
            .iter()
            .filter(|r| r.weight <= threshold)
            .filter_map(|r| Some((ds.users.get(users.raw(r.user))?, ds.items.get(items.raw(r.item))?)))
            .collect())
    }
}

/// Reads a negatives file (`user<TAB>item,item,...` with a header); `None` if it does not exist.
pub fn read_negatives(
    path: &Path,
    users: &mut IdMap,
    items: &mut IdMap,
    progress: &dyn Progress,
) -> Result<Option<Negatives>> {
    if !path.exists() {
        return Ok(None);
    }
    let fmt = super::table::TableFormat { delimiter: "\t".into(), header: true, encoding: Encoding::Utf8 };
    let mut out = Vec::new();
    super::table::read_table(
        path,
        &fmt,
        progress,
        |_| Ok(()),
        |_, row| {
            if row.len() < 2 {
                return Err(DataError::ShortRow { at: row.location(None), expected: 2, found: row.len() });
            }
            let user = row.get(0, "user")?.unwrap_or_default();
            let list = row.get(1, "negatives")?.unwrap_or_default();
            let u = users.get_or_insert(user.trim());
            let negs =
                list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| items.get_or_insert(s)).collect();
            out.push((u, negs));
            Ok(())
        },
    )?;
    Ok(Some(out))
}
