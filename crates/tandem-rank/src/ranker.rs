//! The ranker interface: re-scores one user's candidates with everything the pipeline knows.

use tandem_models::artifact::Artifact;
use tandem_models::{Query, Retriever, TrainSet};

use crate::features::ItemFeatures;

/// One user's candidates, as the ranking stage sees them.
#[derive(Debug, Clone, Copy)]
pub struct Candidates<'a> {
    /// The user (when known) and their training history.
    pub query: &'a Query<'a>,
    /// The user's latest items, most recent first (for rankers that read the sequence).
    pub recent: &'a [u32],
    /// The candidate items.
    pub items: &'a [u32],
    /// Per retriever of the pipeline, its score of each candidate (`-inf`: not scored).
    pub retriever_scores: &'a [Vec<f32>],
}

/// A fitted second-stage model: scores a user's candidates (higher is better).
///
/// Rankers are immutable after fitting and `Send + Sync`, so users are ranked in parallel.
pub trait Ranker: Send + Sync {
    /// The ranker kind, for reports.
    fn kind(&self) -> &'static str;

    /// Writes one score per candidate into `out` (same length as `candidates.items`).
    fn score(&self, candidates: &Candidates<'_>, out: &mut [f32]);

    /// What the ranker saves: its parameters and state as named tensors.
    fn artifact(&self) -> Artifact;

    /// Takes the rows the pipeline will rank for (its final fit's training rows), for rankers
    /// whose features are read from the data at a cutoff (recent sales, days since a
    /// purchase); the others ignore it.
    /// `retrievers` are the pipeline's, fitted on those rows.
    fn attach(&mut self, _train: &TrainSet, _features: &ItemFeatures, _retrievers: &[&dyn Retriever]) {}

    /// Each feature's importance (total split gain), largest first, for rankers that have it.
    fn importance(&self) -> Option<Vec<(String, f64)>> {
        None
    }

    /// The ranker's score on its own validation data (metric name, value), for rankers that
    /// hold some out: what comparing settings without the test split reads.
    fn validation(&self) -> Option<(String, f64)> {
        None
    }

    /// The ranker's fixed-layout feature rows, for rankers that have them (feature-sensitivity
    /// diagnostics shuffle their column groups).
    fn features(&self) -> Option<&dyn FeatureRanker> {
        None
    }
}

/// A ranker whose input is one row of named column groups per candidate.
pub trait FeatureRanker {
    /// Column groups: name and columns.
    fn feature_groups(&self) -> Vec<(String, std::ops::Range<usize>)>;

    /// Row width.
    fn width(&self) -> usize;

    /// The rows of `candidates` (`items x width`).
    fn feature_rows(&self, candidates: &Candidates<'_>) -> Vec<f32>;

    /// One score per row.
    fn score_rows(&self, rows: &[f32]) -> Vec<f32>;
}
