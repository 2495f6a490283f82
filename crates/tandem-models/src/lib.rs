//! # tandem-models
//!
//! Tandem's retrievers. It owns:
//!
//! - [`Retriever`]: the one trait every candidate generator implements — score every item for a
//!   [`Query`] (a known or anonymous user's history); `recommend` and `similar_items` are built
//!   on the shared [`TopK`] (score descending, ties by ascending item index).
//! - [`TrainSet`]: what models are fitted on.
//! - The baselines: [`Popularity`] (global, recent window, time-decayed) and neighbourhood
//!   models [`ItemKnn`] / [`UserKnn`] (cosine, TF-IDF or BM25; exact top-k; rayon).
//! - [`kind::ModelParams`]: the contract of a model kind — parameters with defaults, checks,
//!   fitting into a `Box<dyn Retriever>`, loading and search space — in each model's own file.
//! - [`fit`]: the one training driver of models trained in epochs.
//!
//! ```
//! use tandem_models::{Query, Retriever, TrainSet, KnnParams};
//! use tandem_data::{Interaction, Interactions, NoProgress};
//! let mut log = Interactions::new();
//! for (user, item) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)] {
//!     log.push(Interaction { user, item, time: 0, weight: 1.0 });
//! }
//! let train = TrainSet::new(log, 3, 2);
//! let model = KnnParams::default().fit_item_knn(&train, &NoProgress).unwrap();
//! // User 2 bought item 0; people who bought item 0 bought item 1.
//! let recs = model.recommend(&Query::from_row(&train.user_items, 2), 1, &|i| i != 0);
//! assert_eq!(recs[0].item, 1);
//! ```

// The unsafe here is SIMD kernels, the Hogwild tables and foreign calls: each block says why.
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod als;
pub mod artifact;
#[cfg(target_arch = "x86_64")]
mod blocked;
mod early_stop;
mod ease;
mod error;
mod factors;
pub mod fit;
pub mod index;
pub mod kind;
pub mod knn;
pub mod mf;
pub mod optim;
pub mod panels;
mod popularity;
mod random;
pub mod recent;
mod repurchase;
mod retriever;
mod same_group;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod topk;

pub use als::{Als, AlsParams};
pub use ease::{Ease, EaseParams, EASE_MAX_ITEMS};
pub use error::{within, ModelError, Number, Result};
pub use factors::{axpy, dot, simd, solve_spd, Factors, Simd};
pub use knn::{ItemKnn, KnnParams, UserKnn, Weighting};
pub use mf::{Loss, Mf, MfParams, NegativeMode};
pub use optim::OptimizerKind;
pub use popularity::{Popularity, PopularityMode, PopularityParams};
pub use random::{Random, RandomParams};
pub use repurchase::{Repurchase, RepurchaseParams};
pub use retriever::{
    popular_items, recommend_each, recommend_or_popular, AsAny, Embeddings, Histories, Query, Retriever, TrainSet,
    UserRows,
};
pub use same_group::{SameGroup, SameGroupParams};
pub use topk::{held_out_positions, rank_order, sparse_scores, top_k, top_k_sparse, Scored, SparseScorer, TopK};
