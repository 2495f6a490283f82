//! The ALS epoch loop: alternate conjugate-gradient half-steps over users and items.

use std::borrow::Cow;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tandem_data::{Csr, Progress};

#[cfg(target_arch = "x86_64")]
use super::cg::cg_solve_blocked;
use super::cg::{cg_solve, HalfStep, Scratch};
use super::model::Als;
use super::params::AlsParams;
use crate::error::{ModelError, Result};
#[cfg(target_arch = "x86_64")]
use crate::factors::Avx2;
use crate::factors::{simd, Factors, Portable, Simd};
use crate::kind::ModelParams;
use crate::retriever::TrainSet;

impl AlsParams {
    /// Fits ALS on `train` (weights are the `r` of the confidence).
    pub fn fit(&self, train: &TrainSet, progress: &dyn Progress) -> Result<Als> {
        self.check()?;
        if train.user_items.nnz() == 0 {
            return Err(ModelError::EmptyTrainingData { model: "als" });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let f = self.factors;
        let mut users = Factors::uniform(train.n_users(), f, 0.01, &mut rng);
        let mut items = Factors::uniform(train.n_items(), f, 0.01, &mut rng);
        let user_items = self.confidence_weights(train);
        let item_users = user_items.transpose();
        let step = progress.step("ALS iterations", self.iterations as u64);
        for _ in 0..self.iterations {
            self.half_step(&user_items, &items, &mut users);
            self.half_step(&item_users, &users, &mut items);
            step.inc(1);
        }
        if !users.is_finite() || !items.is_finite() {
            return Err(ModelError::Diverged { model: "als", hint: "increase regularization or lower alpha".into() });
        }
        Ok(Als::new(self.clone(), users, items))
    }

    /// The `r` of each pair's confidence: the training weights, decayed by recency when
    /// `recency_half_life` is set.
    fn confidence_weights<'a>(&self, train: &'a TrainSet) -> Cow<'a, Csr> {
        if self.recency_half_life <= 0.0 {
            return Cow::Borrowed(&train.user_items);
        }
        Cow::Owned(crate::recent::recency_weighted(train, self.recency_half_life))
    }

    /// Updates every row of `x` given the fixed `y`, rows of `m` being x's interactions.
    pub(crate) fn half_step(&self, m: &Csr, y: &Factors, x: &mut Factors) {
        let f = y.dim();
        let mut yty = y.gram();
        for i in 0..f {
            yty[i * f + i] += self.regularization as f64;
        }
        let yty: Vec<f32> = yty.into_iter().map(|v| v as f32).collect();
        let level = simd();
        let h = HalfStep { yty: &yty, y, alpha: self.alpha, steps: self.cg_steps };
        x.as_mut_slice().par_chunks_mut(f).enumerate().for_each_init(
            || (Scratch::default(), vec![0f32; 3 * f]),
            |(scratch, buf), (u, xu)| {
                let (cols, vals) = m.row(u);
                match level {
                    // SAFETY: simd() found AVX2 and FMA on this CPU (AVX-512 implies both).
                    #[cfg(target_arch = "x86_64")]
                    Simd::Avx2 | Simd::Avx512 if f.is_multiple_of(8) => unsafe {
                        cg_solve_blocked(&h, cols, vals, xu, scratch)
                    },
                    // SAFETY: as above.
                    #[cfg(target_arch = "x86_64")]
                    Simd::Avx2 | Simd::Avx512 => unsafe { cg_solve_avx2(&h, cols, vals, xu, buf) },
                    _ => cg_solve::<Portable>(&h, cols, vals, xu, buf),
                }
            },
        );
    }
}

/// [`cg_solve`] compiled for AVX2 + FMA, for factor counts the blocked solver does not take.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cg_solve_avx2(h: &HalfStep<'_>, cols: &[u32], vals: &[f32], x: &mut [f32], buf: &mut [f32]) {
    cg_solve::<Avx2>(h, cols, vals, x, buf)
}
