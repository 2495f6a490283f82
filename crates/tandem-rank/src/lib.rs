//! # tandem-rank
//!
//! Tandem's second stage: what turns a retriever's candidates into the final list. It owns:
//!
//! - [`diagnostics`]: AUROC against hard / random / explicit negatives, feature sensitivity,
//!   a cold-item evaluation.
//! - [`features`]: item features (year bucket, genres, standardised log-popularity).
//! - [`Ranker`]: the second-stage interface — score one user's candidates — and
//!   [`LateFusion`], nanoRecSys's late-fusion MLP ranker, and [`Din`], the candidate attending
//!   over the user's latest items (H&M), and [`Gbdt`], gradient-boosted trees (LambdaRank or
//!   binary) over count, recency and source features.
//! - [`TwoStage`]: retrievers -> the union of their top N -> a ranker, itself a `Retriever`
//!   with per-stage timings; [`TwoStageSpec`] is how configs write one.
//! - [`registry`]: the one table of model kinds ([`registry::KINDS`]) and [`Spec`], a kind with
//!   its parameters — a config's model entry, one retriever or a two-stage pipeline.
//! - [`mining`]: a ranker's training examples — the user's positives, hard negatives mined
//!   from any trained retriever (its top k minus the user's positives, the first s skipped,
//!   one per positive), uniform random negatives subsampled by a ratio and explicit negatives
//!   (low ratings), each source with its own weight (SPEC §4, nanoRecSys).

#![forbid(unsafe_code)]

pub mod diagnostics;
mod din;
pub mod features;
mod gbdt;
mod late_fusion;
pub mod mining;
pub mod model_dir;
mod parts;
mod ranker;
pub mod registry;
mod two_stage;

pub use din::{Din, DinParams};
pub use gbdt::{Gbdt, GbdtMetric, GbdtObjective, GbdtParams};
pub use late_fusion::{LateFusion, LateFusionParams};
pub use mining::{explicit_negatives, mine, Example, InvalidMining, MiningSpec, Source};
pub use parts::{RankLoss, RankerWindow};
pub use ranker::{Candidates, FeatureRanker, Ranker};
pub use registry::Spec;
pub use two_stage::{Prepared, RankerSpec, TwoStage, TwoStageSpec};
