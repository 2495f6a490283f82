//! The ALS epoch loop: alternate conjugate-gradient half-steps over users and items.

use std::borrow::Cow;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tandem_data::{Csr, Progress};

use super::model::Als;
use super::params::AlsParams;
use crate::error::{ModelError, Result};
#[cfg(target_arch = "x86_64")]
use crate::factors::Avx2;
use crate::factors::{simd, Factors, Kernels, Portable, Simd};
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
        let log = &train.log;
        let mut vals = vec![0f32; log.len()];
        for mut rows in log.rows_by_user(train.n_users()) {
            rows.sort_by_key(|&i| (log.time[i], i));
            let n = rows.len();
            for (pos, &i) in rows.iter().enumerate() {
                let age = (n - 1 - pos) as f32;
                vals[i] = log.weight[i] * 0.5f32.powf(age / self.recency_half_life);
            }
        }
        Cow::Owned(Csr::from_triplets(train.n_users(), train.n_items(), &log.user, &log.item, &vals))
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
        x.as_mut_slice().par_chunks_mut(f).enumerate().for_each_init(
            || vec![0f32; 3 * f],
            |buf, (u, xu)| {
                let (cols, vals) = m.row(u);
                let (a, s) = (self.alpha, self.cg_steps);
                match level {
                    // SAFETY: simd() checked that the CPU has these features.
                    #[cfg(target_arch = "x86_64")]
                    Simd::Avx512 => unsafe { cg_solve_avx512(&yty, y, cols, vals, a, s, xu, buf) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: simd() found AVX2 and FMA on this CPU.
                    Simd::Avx2 => unsafe { cg_solve_avx2(&yty, y, cols, vals, a, s, xu, buf) },
                    _ => cg_solve::<Portable>(&yty, y, cols, vals, a, s, xu, buf),
                }
            },
        );
    }
}

/// [`cg_solve`] compiled for AVX2 + FMA (same code, wider vectors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn cg_solve_avx2(
    yty: &[f32],
    y: &Factors,
    cols: &[u32],
    vals: &[f32],
    alpha: f32,
    steps: usize,
    x: &mut [f32],
    buf: &mut [f32],
) {
    cg_solve::<Avx2>(yty, y, cols, vals, alpha, steps, x, buf)
}

/// [`cg_solve`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn cg_solve_avx512(
    yty: &[f32],
    y: &Factors,
    cols: &[u32],
    vals: &[f32],
    alpha: f32,
    steps: usize,
    x: &mut [f32],
    buf: &mut [f32],
) {
    cg_solve::<Avx2>(yty, y, cols, vals, alpha, steps, x, buf)
}

/// `out = YtY v`.
#[inline(always)]
fn gram_times<K: Kernels>(yty: &[f32], v: &[f32], out: &mut [f32]) {
    let f = v.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = K::dot(&yty[i * f..(i + 1) * f], v);
    }
}

/// A few CG steps on `(YtY + Σ alpha r y yᵀ) x = Σ (1 + alpha r) y`, warm-started from `x`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn cg_solve<K: Kernels>(
    yty: &[f32],
    y: &Factors,
    cols: &[u32],
    vals: &[f32],
    alpha: f32,
    steps: usize,
    x: &mut [f32],
    buf: &mut [f32],
) {
    let f = x.len();
    let (r, rest) = buf.split_at_mut(f);
    let (p, ap) = rest.split_at_mut(f);
    // r = b - A x
    gram_times::<K>(yty, x, r);
    r.iter_mut().for_each(|v| *v = -*v);
    for (&i, &w) in cols.iter().zip(vals) {
        let yi = y.row(i as usize);
        let c1 = alpha * w;
        K::axpy(1.0 + c1 - c1 * K::dot(yi, x), yi, r);
    }
    p.copy_from_slice(r);
    let mut rs_old = K::dot(r, r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..steps {
        gram_times::<K>(yty, p, ap);
        for (&i, &w) in cols.iter().zip(vals) {
            let yi = y.row(i as usize);
            K::axpy(alpha * w * K::dot(yi, p), yi, ap);
        }
        let pap = K::dot(p, ap);
        if pap <= 0.0 || !pap.is_finite() {
            break;
        }
        let a = rs_old / pap;
        K::axpy(a, p, x);
        K::axpy(-a, ap, r);
        let rs_new = K::dot(r, r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        for (pi, ri) in p.iter_mut().zip(r.iter()) {
            *pi = ri + beta * *pi;
        }
        rs_old = rs_new;
    }
}
