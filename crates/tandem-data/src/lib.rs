//! # tandem-data
//!
//! Tandem's data layer. It owns everything between raw files and the models:
//!
//! - [`read`]: streaming readers for interaction logs (CSV/TSV/`::`, gzip, Latin-1) through a
//!   column mapping with time parsing and row filters, item metadata, named [`Source`]s
//!   (MovieLens, H&M, the course format) and pre-split directories ([`SplitDir`]).
//! - [`IdMap`]: raw string ids <-> dense `u32` indices; raw ids are kept as strings end to end.
//! - [`Interactions`]: the log as columns; [`Csr`]: the sparse matrix models read.
//! - [`split`]: deterministic, seeded splits (SPEC §3).
//! - [`sample`]: negative samplers shared by trained models.
//! - [`synthetic`]: power-law logs at any scale for benchmarks.
//!
//! Errors name the file, line and column of bad input ([`DataError`]).
//!
//! ```
//! use tandem_data::{IdMap, Interaction, Interactions, SplitSpec};
//! let mut items = IdMap::new();
//! let mut log = Interactions::new();
//! for (t, item) in ["a", "b", "c"].iter().enumerate() {
//!     let item = items.get_or_insert(item);
//!     log.push(Interaction { user: 0, item, time: t as i64, weight: 1.0 });
//! }
//! let split = SplitSpec::LastN { test: 1, valid: 0, min_train: 1 }.split(&log, 1, &items).unwrap();
//! assert_eq!(items.raw(split.test.item[0]), "c");
//! ```

#![forbid(unsafe_code)]

mod csr;
mod dataset;
mod error;
mod idmap;
mod interactions;
pub mod progress;
pub mod read;
pub mod sample;
pub mod split;
pub mod synthetic;

pub use csr::Csr;
pub use dataset::{Dataset, DatasetStats, Side};
pub use error::{DataError, Location, Result};
pub use idmap::{cmp_raw_ids, IdMap};
pub use interactions::{Interaction, Interactions};
pub use progress::{NoProgress, Progress, ProgressStep};
pub use read::{Source, SplitDir};
pub use split::{Split, SplitReport, SplitSpec};
