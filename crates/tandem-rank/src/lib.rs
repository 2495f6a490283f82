//! # tandem-rank
//!
//! Tandem's second stage: what turns a retriever's candidates into the final list. It owns:
//!
//! - [`mining`]: a ranker's training examples — the user's positives, hard negatives mined
//!   from any trained retriever (its top k minus the user's positives, the first s skipped,
//!   one per positive), uniform random negatives subsampled by a ratio and explicit negatives
//!   (low ratings), each source with its own weight (SPEC §4, nanoRecSys).

pub mod mining;

pub use mining::{explicit_negatives, mine, Example, InvalidMining, MiningSpec, Source};
