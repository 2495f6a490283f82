//! Neighbourhood models: item-item and user-user CF with cosine, TF-IDF or BM25 weighting.

mod item;
mod params;
mod user;
mod weighting;

pub use item::ItemKnn;
pub use params::KnnParams;
pub use user::UserKnn;
pub use weighting::Weighting;

#[cfg(test)]
mod tests;
