//! # tandem-neural
//!
//! Tandem's neural retrievers, isolated from the rest of the workspace. It owns:
//!
//! - [`dense`]: hand-written dense layers (linear, ReLU, dropout) with their backward passes and
//!   a dense Adam, on the `gemm` crate's SGEMM. STACK.md measured this approach at PyTorch's
//!   speed, ahead of every Rust framework, and it builds in seconds.
//! - [`device`]: where those products run — the CPU by default, cuBLAS on an NVIDIA GPU with
//!   the `cuda` feature.
//! - [`norm`]: batch normalisation and the `[linear -> batch norm -> ReLU -> dropout]` head
//!   the rankers use.
//! - [`embedding`]: embedding tables outside autodiff — gather the batch's rows, sum their
//!   gradients, one lazy-Adam step per touched row — so a step never costs the table's size.
//! - [`Ncf`]: NCF and NeuMF (He et al. 2017) trained in the NCF regime.
//! - [`TwoTower`]: ID embeddings + MLP towers + L2 norm, InfoNCE over in-batch negatives with
//!   masking and logQ correction (nanoRecSys), or the pure-embedding variant.
//! - [`SoftmaxModel`]: a user embedding scored against every item with the full softmax, and
//!   its sub-linear approximations on an [`ItemTree`]: the two-level hierarchical softmax and TDM
//!   (per-level classifiers, beam search, tree re-learning).
//! - [`HistoryModel`]: the H&M history baseline — recency-weighted cosine to the user's last
//!   items, a per-item bias and per-item feature weights; BCE over all items (+ dice) or a
//!   sampled softmax.
//!
//! Every model implements `tandem_models::Retriever`, so evaluation, artifacts and serving
//! treat them like the classic ones.

// The unsafe here is SIMD kernels, the Hogwild tables and foreign calls: each block says why.
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod dense;
pub mod device;
pub mod embedding;
mod history;
mod ncf;
pub mod norm;
mod softmax;
mod tree;
mod two_tower;

use std::ops::Bound::{Excluded, Included};
use tandem_models::within;

pub use history::{HistoryLoss, HistoryModel, HistoryParams};
pub use ncf::{Ncf, NcfParams};
pub use softmax::{SoftmaxModel, SoftmaxParams, Structure, TreeInit};
pub use tree::ItemTree;
pub use two_tower::{TwoTower, TwoTowerParams};

/// Called after every epoch with the model as it stands; returns a validation score (higher is
/// better) or `None` when there is nothing to validate on.
pub type Validate<'a> = tandem_models::fit::ValidateRetriever<'a>;

/// The bounds every neural model puts on its epochs and learning rate.
pub(crate) fn check_schedule(epochs: usize, learning_rate: f32) -> tandem_models::Result<()> {
    within("epochs", epochs, 1..=100_000)?;
    within("learning_rate", learning_rate, (Excluded(0.0), Included(10.0)))
}
