//! What the rankers share, by job: [`scores`] (retriever-score features and pooled windows),
//! [`saved`] (their tensors) and [`train`] (checks, losses, epochs).

mod saved;
mod scores;
mod train;

pub(crate) use saved::*;
pub use scores::RankerWindow;
pub(crate) use scores::*;
pub use train::RankLoss;
pub(crate) use train::*;
