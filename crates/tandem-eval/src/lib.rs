//! # tandem-eval
//!
//! Offline evaluation and batch outputs. It owns:
//!
//! - [`metric`]: HR, Precision, Recall, NDCG, MRR and MAP at any K, exactly as SPEC §6
//!   defines them, averaged over users with at least one held-out item.
//! - [`evaluate`] under a [`Protocol`]: full ranking over a catalogue (excluding seen items or
//!   not) or sampled ranking against given or drawn negatives ([`sample_negatives`]).
//! - [`Report`]: `report.json`, a terminal table, and an SVG plot of every metric against K.
//! - [`export`]: predictions TSV, the H&M submission and the course file, in raw ids.
//! - [`holdout`] and [`search`]: tuning's validation rows carved from a training part, the
//!   proposals over a kind's search space and the log of trials.
//!
//! It knows models only through [`tandem_models::Retriever`].
//!
//! ```
//! use tandem_eval::metric::user_metrics;
//! // Held-out {2, 4}; ranked [1, 2, 3]: one hit at position 2.
//! let v = user_metrics(&[1, 2, 3], &[2, 4], &[3]).unwrap()[0];
//! assert_eq!(v[1], 1.0); // HR@3
//! assert_eq!(v[4], 0.5); // MRR@3
//! ```

#![forbid(unsafe_code)]

pub mod export;
pub mod holdout;
pub mod metric;
mod negatives;
mod plot;
mod protocol;
mod report;
pub mod search;
pub mod setup;

pub use export::{write_lists, ExportError, ListWriter, SubmissionFormat};
pub use metric::{Metric, MetricAt, MetricSums};
pub use negatives::{sample_negatives, NegativeSampling};
pub use plot::{metrics_at_k_svg, training_curves_svg};
pub use protocol::{evaluate, Evaluation, Protocol, TestSet};
pub use report::{EpochRecord, ModelReport, ProtocolInfo, Report};
pub use setup::{items_with_interactions, setup, Candidates, Parts, Setup, SetupError};
