//! The per-row conjugate-gradient solve of an ALS half-step, the fit's hot loop.
//!
//! [`cg_solve`] is the reference, written over [`Kernels`] (one dot and one axpy per observed
//! item and step). [`cg_solve_blocked`] is the AVX2 + FMA version the fit runs when the factor
//! count is a multiple of 8: it gathers the row's item vectors once into a contiguous buffer
//! (the three CG steps then read them from L1/L2 instead of chasing 105k-row tables four
//! times), takes four dots at a time with one horizontal reduction, and keeps the YᵀY product
//! and the weighted sums in registers (64 floats per pass) instead of storing through memory
//! on every item. Same arithmetic, summed in another order: results agree to rounding.

#[cfg(target_arch = "x86_64")]
use crate::blocked::{add_weighted, dots, gather};
use crate::factors::{Factors, Kernels};

/// Working memory of one thread's solves (grows to the longest row seen).
#[derive(Default)]
pub(crate) struct Scratch {
    /// r, p, A p (3 f).
    vecs: Vec<f32>,
    /// The row's item vectors, gathered (n f).
    rows: Vec<f32>,
    /// Per item: alpha * weight (n).
    conf: Vec<f32>,
    /// Per item: dots, then their weights (n).
    coef: Vec<f32>,
}

/// What every row of one half-step shares: the fixed side's vectors `y`, `yty` = YᵀY + λI
/// (f x f), the confidence slope and the CG steps per row.
pub(crate) struct HalfStep<'a> {
    pub(crate) yty: &'a [f32],
    pub(crate) y: &'a Factors,
    pub(crate) alpha: f32,
    pub(crate) steps: usize,
}

/// A few CG steps on `(YᵀY + Σ alpha r y yᵀ) x = Σ (1 + alpha r) y` for the row whose items
/// are `cols` with weights `vals`, warm-started from `x`; `buf` holds 3 f floats.
#[inline(always)]
pub(crate) fn cg_solve<K: Kernels>(h: &HalfStep<'_>, cols: &[u32], vals: &[f32], x: &mut [f32], buf: &mut [f32]) {
    let HalfStep { yty, y, alpha, steps } = *h;
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
        match cg_update::<K>(x, r, p, ap, rs_old) {
            Some(rs) => rs_old = rs,
            None => break,
        }
    }
}

/// One CG update once `ap = A p` is known: x and r move along p, then p turns to the new
/// residual. The new residual's squared norm, or `None` when the solve is done (converged,
/// or `p` no longer a descent direction in floating point).
#[inline(always)]
fn cg_update<K: Kernels>(x: &mut [f32], r: &mut [f32], p: &mut [f32], ap: &[f32], rs_old: f32) -> Option<f32> {
    let pap = K::dot(p, ap);
    if pap <= 0.0 || !pap.is_finite() {
        return None;
    }
    let a = rs_old / pap;
    K::axpy(a, p, x);
    K::axpy(-a, ap, r);
    let rs_new = K::dot(r, r);
    if rs_new < 1e-20 {
        return None;
    }
    let beta = rs_new / rs_old;
    for (pi, ri) in p.iter_mut().zip(r.iter()) {
        *pi = ri + beta * *pi;
    }
    Some(rs_new)
}

/// `out = YᵀY v`.
#[inline(always)]
fn gram_times<K: Kernels>(yty: &[f32], v: &[f32], out: &mut [f32]) {
    let f = v.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = K::dot(&yty[i * f..(i + 1) * f], v);
    }
}

/// [`cg_solve`] with gathered rows and register-blocked products; `x.len()` must be a
/// multiple of 8.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn cg_solve_blocked(h: &HalfStep<'_>, cols: &[u32], vals: &[f32], x: &mut [f32], s: &mut Scratch) {
    use crate::factors::Avx2;
    let HalfStep { yty, y, alpha, steps } = *h;
    let (f, n) = (x.len(), cols.len());
    debug_assert!(f % 8 == 0 && y.dim() == f && yty.len() == f * f);
    s.vecs.resize(3 * f, 0.0);
    s.rows.resize(n * f, 0.0);
    s.conf.resize(n, 0.0);
    s.coef.resize(n, 0.0);
    let (rows, conf, coef) = (&mut s.rows[..n * f], &mut s.conf[..n], &mut s.coef[..n]);
    // SAFETY: AVX2 is this function's contract.
    unsafe { gather(y, cols, rows) };
    conf.iter_mut().zip(vals).for_each(|(c, &w)| *c = alpha * w);
    let weighted = conf.iter().any(|&c| c != 0.0);
    let (r, rest) = s.vecs.split_at_mut(f);
    let (p, ap) = rest.split_at_mut(f);
    // r = b - A x = Σ (1 + c - c yᵢ·x) yᵢ - YᵀY x
    // SAFETY: (all kernel calls) AVX2 + FMA are this function's contract; slice lengths are
    // checked inside each kernel.
    unsafe {
        // YᵀY is symmetric: YᵀY x is its rows weighted by x.
        r.fill(0.0);
        add_weighted(yty, x, r);
        r.iter_mut().for_each(|v| *v = -*v);
        dots(rows, x, coef);
        coef.iter_mut().zip(conf.iter()).for_each(|(d, &c)| *d = 1.0 + c - c * *d);
        add_weighted(rows, coef, r);
    }
    p.copy_from_slice(r);
    let mut rs_old = Avx2::dot(r, r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..steps {
        // SAFETY: as above.
        unsafe {
            ap.fill(0.0);
            add_weighted(yty, p, ap);
            if weighted {
                dots(rows, p, coef);
                coef.iter_mut().zip(conf.iter()).for_each(|(d, &c)| *d *= c);
                add_weighted(rows, coef, ap);
            }
        }
        match cg_update::<Avx2>(x, r, p, ap, rs_old) {
            Some(rs) => rs_old = rs,
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factors::Portable;
    use rand::{Rng, SeedableRng};

    /// The blocked solver computes what the reference does, for factor counts that exercise
    /// the 64-float blocks, the 8-float tails and both, rows of 0 to 9 items (4-row groups and
    /// leftovers), with and without confidence weights.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn blocked_solve_matches_the_reference() {
        if crate::factors::simd() == crate::factors::Simd::Base {
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for f in [8, 24, 64, 72, 128] {
            let y = Factors::uniform(40, f, 0.5, &mut rng);
            let mut yty: Vec<f32> = y.gram().into_iter().map(|v| v as f32).collect();
            for i in 0..f {
                yty[i * f + i] += 0.5;
            }
            for n in [0, 1, 3, 4, 9] {
                for alpha in [0.0, 2.0] {
                    let cols: Vec<u32> = (0..n).map(|_| rng.random_range(0..40)).collect();
                    let vals: Vec<f32> = (0..n).map(|_| rng.random_range(0.5..3.0)).collect();
                    let x0: Vec<f32> = (0..f).map(|_| rng.random_range(-0.1..0.1)).collect();
                    let (mut a, mut b) = (x0.clone(), x0);
                    let h = HalfStep { yty: &yty, y: &y, alpha, steps: 3 };
                    cg_solve::<Portable>(&h, &cols, &vals, &mut a, &mut vec![0.0; 3 * f]);
                    // SAFETY: simd() found AVX2 and FMA above.
                    unsafe { cg_solve_blocked(&h, &cols, &vals, &mut b, &mut Scratch::default()) };
                    let scale = a.iter().map(|v| v.abs()).fold(1e-3, f32::max);
                    for (u, v) in a.iter().zip(&b) {
                        assert!((u - v).abs() <= 1e-3 * scale, "f {f} n {n} alpha {alpha}: {a:?} vs {b:?}");
                    }
                }
            }
        }
    }
}
