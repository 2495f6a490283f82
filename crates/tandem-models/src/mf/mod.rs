//! Matrix factorisation with biases, `score = mu + b_u + b_i + p_u · q_i`, trained with BCE or
//! BPR (with a margin) under every negative-sampling mode of SPEC §4, by SGD / Adagrad / Adam
//! over rows — in parallel over disjoint blocks of users and items (DSGD), or Hogwild with
//! `blocks: 1` — with an optional per-epoch validation callback for early stopping.

mod model;
mod params;
mod train;

pub use model::Mf;
pub use params::{Loss, MfParams, NegativeMode};
pub use train::Validate;

#[cfg(test)]
mod tests;
