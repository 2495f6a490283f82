//! Dense row-major factor matrices and the small kernels factor models share.

use rand::Rng;

/// `rows x dim` f32 values, row-major: row r is `data[r * dim..(r + 1) * dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Factors {
    rows: usize,
    dim: usize,
    data: Vec<f32>,
}

impl Factors {
    /// All zeros.
    pub fn zeros(rows: usize, dim: usize) -> Self {
        Factors { rows, dim, data: vec![0.0; rows * dim] }
    }

    /// From existing values (`data.len() == rows * dim`).
    pub fn from_vec(rows: usize, dim: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), rows * dim, "factor data has the wrong length");
        Factors { rows, dim, data }
    }

    /// Uniform in [0, scale), as `implicit` initialises ALS.
    pub fn uniform(rows: usize, dim: usize, scale: f32, rng: &mut impl Rng) -> Self {
        Factors { rows, dim, data: (0..rows * dim).map(|_| rng.random::<f32>() * scale).collect() }
    }

    /// Normal with mean 0 and standard deviation `std` (Box-Muller).
    pub fn normal(rows: usize, dim: usize, std: f32, rng: &mut impl Rng) -> Self {
        let data = (0..rows * dim)
            .map(|_| {
                let (u1, u2) = (rng.random::<f32>().max(f32::MIN_POSITIVE), rng.random::<f32>());
                std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect();
        Factors { rows, dim, data }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row `r`.
    #[inline]
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.dim..(r + 1) * self.dim]
    }

    /// Row `r`, mutable.
    #[inline]
    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.dim..(r + 1) * self.dim]
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// All values, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// True when every value is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// `out[r] = row(r) . x` for every row.
    pub fn scores(&self, x: &[f32], out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(self.data.chunks_exact(self.dim.max(1))) {
            *o = dot(row, x);
        }
    }

    /// The mean of the rows listed in `rows` (those in range), zeros when there are none: how
    /// factor models fold a history into a vector.
    pub fn mean_of(&self, rows: &[u32]) -> Vec<f32> {
        let known: Vec<u32> = rows.iter().copied().filter(|&r| (r as usize) < self.rows).collect();
        let mut mean = vec![0f32; self.dim];
        for &r in &known {
            axpy(1.0 / known.len() as f32, self.row(r as usize), &mut mean);
        }
        mean
    }

    /// The Gram matrix `F^T F` (dim x dim, f64, row-major). Blocks of rows accumulate in f32
    /// with vectorisable row updates, in parallel; blocks are summed in f64.
    pub fn gram(&self) -> Vec<f64> {
        use rayon::prelude::*;
        let d = self.dim;
        if d == 0 {
            return Vec::new();
        }
        self.data
            .par_chunks(d * 512)
            .map(|block| {
                let mut g = vec![0f32; d * d];
                #[cfg(target_arch = "x86_64")]
                if d.is_multiple_of(8) && simd() != Simd::Base {
                    // SAFETY: simd() found AVX2 and FMA.
                    unsafe { crate::blocked::gram_rows(block, d, &mut g) };
                    return g;
                }
                for row in block.chunks_exact(d) {
                    for (i, &ri) in row.iter().enumerate() {
                        axpy(ri, row, &mut g[i * d..(i + 1) * d]);
                    }
                }
                g
            })
            .fold(
                || vec![0f64; d * d],
                |mut acc, g| {
                    acc.iter_mut().zip(&g).for_each(|(a, &b)| *a += b as f64);
                    acc
                },
            )
            .reduce(
                || vec![0f64; d * d],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            )
    }
}

/// Dot product.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight accumulators: one AVX register (or two SSE ones) without reassociation flags.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

/// `y += a * x`.
#[inline(always)]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// The two vector kernels of the hot loops, as a type so that generic code can be compiled
/// once per instruction set ([`Portable`], and [`Avx2`] inside `#[target_feature]` callers).
pub trait Kernels {
    /// Dot product.
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// `y += a * x`.
    fn axpy(a: f32, x: &[f32], y: &mut [f32]);
    /// `p . q - p . r` in one pass over three rows of `n` floats.
    ///
    /// # Safety
    /// Each pointer must be valid for `n` reads (rows of a Hogwild table may change meanwhile:
    /// the race `optim` documents).
    unsafe fn dot_diff(p: *const f32, q: *const f32, r: *const f32, n: usize) -> f32;
    /// One fused BPR SGD step on three rows in place, every gradient from the old values:
    /// `p -= lr (g (q - r) + wd p)`, `q -= lr (g p + wd q)`, `r -= lr (-g p + wd r)`.
    ///
    /// # Safety
    /// Each pointer must be valid for `n` reads and writes; as for [`Kernels::dot_diff`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn bpr_sgd(p: *mut f32, q: *mut f32, r: *mut f32, n: usize, g: f32, lr: f32, wd: f32);
    /// [`Kernels::bpr_sgd`]'s gradients under Adagrad, with each row's accumulators (`ap`,
    /// `aq`, `ar`): `acc += d²`, `w -= lr d / (√acc + 1e-10)` per element, as `optim`'s rule.
    ///
    /// # Safety
    /// As for [`Kernels::bpr_sgd`], for the six rows.
    #[allow(clippy::too_many_arguments)]
    unsafe fn bpr_adagrad(rows: [*mut f32; 3], acc: [*mut f32; 3], n: usize, g: f32, lr: f32, wd: f32);
}

/// One element of [`Kernels::bpr_adagrad`], for the scalar builds and the vector tails.
///
/// # Safety
/// Element `k` of each of the six rows must be valid for reads and writes.
#[inline(always)]
unsafe fn bpr_adagrad_at(rows: [*mut f32; 3], acc: [*mut f32; 3], k: usize, g: f32, lr: f32, wd: f32) {
    // SAFETY: the caller's bound.
    unsafe {
        let [p, q, r] = rows.map(|row| row.add(k));
        let (pk, qk, rk) = (*p, *q, *r);
        let grads = [g * (qk - rk) + wd * pk, g * pk + wd * qk, -g * pk + wd * rk];
        for ((w, a), d) in [p, q, r].into_iter().zip(acc.map(|row| row.add(k))).zip(grads) {
            *a += d * d;
            *w -= lr * d / ((*a).sqrt() + 1e-10);
        }
    }
}

/// Plain Rust kernels, vectorised by the compiler for the baseline target.
pub struct Portable;

impl Kernels for Portable {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot(a, b)
    }
    #[inline(always)]
    fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        axpy(a, x, y)
    }
    #[inline(always)]
    unsafe fn dot_diff(p: *const f32, q: *const f32, r: *const f32, n: usize) -> f32 {
        let mut total = 0.0;
        for k in 0..n {
            // SAFETY: k < n, the caller's bound.
            unsafe { total += *p.add(k) * (*q.add(k) - *r.add(k)) };
        }
        total
    }
    #[inline(always)]
    unsafe fn bpr_sgd(p: *mut f32, q: *mut f32, r: *mut f32, n: usize, g: f32, lr: f32, wd: f32) {
        for k in 0..n {
            // SAFETY: k < n, the caller's bound.
            unsafe {
                let (pk, qk, rk) = (*p.add(k), *q.add(k), *r.add(k));
                *p.add(k) = pk - lr * (g * (qk - rk) + wd * pk);
                *q.add(k) = qk - lr * (g * pk + wd * qk);
                *r.add(k) = rk - lr * (-g * pk + wd * rk);
            }
        }
    }
    #[inline(always)]
    unsafe fn bpr_adagrad(rows: [*mut f32; 3], acc: [*mut f32; 3], n: usize, g: f32, lr: f32, wd: f32) {
        for k in 0..n {
            // SAFETY: k < n, the caller's bound.
            unsafe { bpr_adagrad_at(rows, acc, k, g, lr, wd) };
        }
    }
}

/// AVX2 + FMA intrinsics. Only call these from code that runs after [`simd`] reported
/// [`Simd::Avx2`] or better (they are inlined into the `#[target_feature]` builds).
#[cfg(target_arch = "x86_64")]
pub struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Kernels for Avx2 {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: callers run only where simd() found AVX2 and FMA (type-level contract).
        unsafe { x86::dot(a, b) }
    }
    #[inline(always)]
    fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        // SAFETY: as above.
        unsafe { x86::axpy(a, x, y) }
    }
    #[inline(always)]
    unsafe fn dot_diff(p: *const f32, q: *const f32, r: *const f32, n: usize) -> f32 {
        // SAFETY: CPU features as above; pointer validity is the caller's contract.
        unsafe { x86::dot_diff(p, q, r, n) }
    }
    #[inline(always)]
    unsafe fn bpr_sgd(p: *mut f32, q: *mut f32, r: *mut f32, n: usize, g: f32, lr: f32, wd: f32) {
        // SAFETY: as above.
        unsafe { x86::bpr_sgd(p, q, r, n, g, lr, wd) }
    }
    #[inline(always)]
    unsafe fn bpr_adagrad(rows: [*mut f32; 3], acc: [*mut f32; 3], n: usize, g: f32, lr: f32, wd: f32) {
        // SAFETY: as above.
        unsafe { Portable::bpr_adagrad(rows, acc, n, g, lr, wd) }
    }
}

/// AVX-512F for the two BPR row kernels (16 lanes: a 64-factor row is four registers), AVX2
/// for the rest. Only for code that runs after [`simd`] reported [`Simd::Avx512`].
#[cfg(target_arch = "x86_64")]
pub struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Kernels for Avx512 {
    // Callers run only where simd() found AVX-512F, AVX2 and FMA (type-level contract).
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        Avx2::dot(a, b)
    }
    #[inline(always)]
    fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        Avx2::axpy(a, x, y)
    }
    #[inline(always)]
    unsafe fn dot_diff(p: *const f32, q: *const f32, r: *const f32, n: usize) -> f32 {
        // SAFETY: CPU features as above; pointer validity is the caller's contract.
        unsafe { x86::dot_diff512(p, q, r, n) }
    }
    #[inline(always)]
    unsafe fn bpr_sgd(p: *mut f32, q: *mut f32, r: *mut f32, n: usize, g: f32, lr: f32, wd: f32) {
        // SAFETY: as above.
        unsafe { x86::bpr_sgd512(p, q, r, n, g, lr, wd) }
    }
    #[inline(always)]
    unsafe fn bpr_adagrad(rows: [*mut f32; 3], acc: [*mut f32; 3], n: usize, g: f32, lr: f32, wd: f32) {
        // SAFETY: as above.
        unsafe { x86::bpr_adagrad512(rows, acc, n, g, lr, wd) }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        // SAFETY (all loads): i + 8 <= n or i + 16 <= n bounds every access.
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), acc1);
            i += 16;
        }
        while i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            i += 8;
        }
        let acc = _mm256_add_ps(acc0, acc1);
        let s = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        let mut total = _mm_cvtss_f32(s);
        while i < n {
            total += a[i] * b[i];
            i += 1;
        }
        total
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) unsafe fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let (px, py) = (x.as_ptr(), y.as_mut_ptr());
        let va = _mm256_set1_ps(a);
        let mut i = 0;
        // SAFETY: i + 8 <= n bounds every access; x and y are distinct slices.
        while i + 8 <= n {
            _mm256_storeu_ps(py.add(i), _mm256_fmadd_ps(va, _mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i))));
            i += 8;
        }
        while i < n {
            y[i] += a * x[i];
            i += 1;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) unsafe fn dot_diff(p: *const f32, q: *const f32, r: *const f32, n: usize) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY (all accesses): i + 8 <= n or i < n, within the caller's bound.
        while i + 8 <= n {
            let d = _mm256_sub_ps(_mm256_loadu_ps(q.add(i)), _mm256_loadu_ps(r.add(i)));
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(p.add(i)), d, acc);
            i += 8;
        }
        let s = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        let mut total = _mm_cvtss_f32(s);
        while i < n {
            total += *p.add(i) * (*q.add(i) - *r.add(i));
            i += 1;
        }
        total
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) unsafe fn bpr_sgd(p: *mut f32, q: *mut f32, r: *mut f32, n: usize, g: f32, lr: f32, wd: f32) {
        // Per element: the three new values from the three old ones (see Kernels::bpr_sgd).
        let (vg, vl, vw) = (_mm256_set1_ps(g), _mm256_set1_ps(-lr), _mm256_set1_ps(wd));
        let mut i = 0;
        // SAFETY (all accesses): i + 8 <= n or i < n, within the caller's bound.
        while i + 8 <= n {
            let (pk, qk, rk) = (_mm256_loadu_ps(p.add(i)), _mm256_loadu_ps(q.add(i)), _mm256_loadu_ps(r.add(i)));
            let gp = _mm256_mul_ps(vg, pk);
            let grad_p = _mm256_fmadd_ps(vw, pk, _mm256_mul_ps(vg, _mm256_sub_ps(qk, rk)));
            let grad_q = _mm256_fmadd_ps(vw, qk, gp);
            let grad_r = _mm256_fmsub_ps(vw, rk, gp);
            _mm256_storeu_ps(p.add(i), _mm256_fmadd_ps(vl, grad_p, pk));
            _mm256_storeu_ps(q.add(i), _mm256_fmadd_ps(vl, grad_q, qk));
            _mm256_storeu_ps(r.add(i), _mm256_fmadd_ps(vl, grad_r, rk));
            i += 8;
        }
        while i < n {
            let (pk, qk, rk) = (*p.add(i), *q.add(i), *r.add(i));
            *p.add(i) = pk - lr * (g * (qk - rk) + wd * pk);
            *q.add(i) = qk - lr * (g * pk + wd * qk);
            *r.add(i) = rk - lr * (-g * pk + wd * rk);
            i += 1;
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    pub(super) unsafe fn dot_diff512(p: *const f32, q: *const f32, r: *const f32, n: usize) -> f32 {
        // Two accumulators: one chain of dependent FMAs was the latency of the whole update.
        let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        // SAFETY (all accesses): i + 16 <= n or i + 32 <= n, within the caller's bound.
        while i + 32 <= n {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(q.add(i)), _mm512_loadu_ps(r.add(i)));
            let d1 = _mm512_sub_ps(_mm512_loadu_ps(q.add(i + 16)), _mm512_loadu_ps(r.add(i + 16)));
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p.add(i)), d0, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(p.add(i + 16)), d1, a1);
            i += 32;
        }
        if i + 16 <= n {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(q.add(i)), _mm512_loadu_ps(r.add(i)));
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(p.add(i)), d0, a0);
            i += 16;
        }
        let total = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        // SAFETY: the rest of the same rows.
        if i < n {
            total + dot_diff(p.add(i), q.add(i), r.add(i), n - i)
        } else {
            total
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    pub(super) unsafe fn bpr_adagrad512(rows: [*mut f32; 3], acc: [*mut f32; 3], n: usize, g: f32, lr: f32, wd: f32) {
        let [p, q, r] = rows;
        let (vg, vl, vw, eps) = (_mm512_set1_ps(g), _mm512_set1_ps(-lr), _mm512_set1_ps(wd), _mm512_set1_ps(1e-10));
        let mut i = 0;
        // SAFETY (all accesses): i + 16 <= n, within the caller's bound.
        while i + 16 <= n {
            let (pk, qk, rk) = (_mm512_loadu_ps(p.add(i)), _mm512_loadu_ps(q.add(i)), _mm512_loadu_ps(r.add(i)));
            let gp = _mm512_mul_ps(vg, pk);
            let grads = [
                _mm512_fmadd_ps(vw, pk, _mm512_mul_ps(vg, _mm512_sub_ps(qk, rk))),
                _mm512_fmadd_ps(vw, qk, gp),
                _mm512_fmsub_ps(vw, rk, gp),
            ];
            for ((w, wk), (a, d)) in [p, q, r].into_iter().zip([pk, qk, rk]).zip(acc.into_iter().zip(grads)) {
                let total = _mm512_fmadd_ps(d, d, _mm512_loadu_ps(a.add(i)));
                _mm512_storeu_ps(a.add(i), total);
                let step = _mm512_div_ps(d, _mm512_add_ps(_mm512_sqrt_ps(total), eps));
                _mm512_storeu_ps(w.add(i), _mm512_fmadd_ps(vl, step, wk));
            }
            i += 16;
        }
        while i < n {
            // SAFETY: i < n.
            super::bpr_adagrad_at(rows, acc, i, g, lr, wd);
            i += 1;
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    pub(super) unsafe fn bpr_sgd512(p: *mut f32, q: *mut f32, r: *mut f32, n: usize, g: f32, lr: f32, wd: f32) {
        let (vg, vl, vw) = (_mm512_set1_ps(g), _mm512_set1_ps(-lr), _mm512_set1_ps(wd));
        let mut i = 0;
        // SAFETY (all accesses): i + 16 <= n, within the caller's bound.
        while i + 16 <= n {
            let (pk, qk, rk) = (_mm512_loadu_ps(p.add(i)), _mm512_loadu_ps(q.add(i)), _mm512_loadu_ps(r.add(i)));
            let gp = _mm512_mul_ps(vg, pk);
            let grad_p = _mm512_fmadd_ps(vw, pk, _mm512_mul_ps(vg, _mm512_sub_ps(qk, rk)));
            let grad_q = _mm512_fmadd_ps(vw, qk, gp);
            let grad_r = _mm512_fmsub_ps(vw, rk, gp);
            _mm512_storeu_ps(p.add(i), _mm512_fmadd_ps(vl, grad_p, pk));
            _mm512_storeu_ps(q.add(i), _mm512_fmadd_ps(vl, grad_q, qk));
            _mm512_storeu_ps(r.add(i), _mm512_fmadd_ps(vl, grad_r, rk));
            i += 16;
        }
        if i < n {
            // SAFETY: the rest of the same rows.
            bpr_sgd(p.add(i), q.add(i), r.add(i), n - i, g, lr, wd);
        }
    }
}

/// Which build of the hot kernels this CPU runs: the same Rust code compiled for wider
/// vectors, chosen at run time (the standard library caches the CPU check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    /// The baseline target (SSE2 on x86-64).
    Base,
    /// AVX2 + FMA.
    Avx2,
    /// AVX-512F (+ AVX2 + FMA).
    Avx512,
}

/// The widest kernel build this CPU supports.
#[inline]
pub fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if avx2 && std::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if avx2 {
            return Simd::Avx2;
        }
    }
    Simd::Base
}

/// Solves `A x = b` for a symmetric positive definite `n x n` `a` (row-major, f64) by
/// Cholesky, in place (`b` becomes `x`). Returns false when `a` is not positive definite.
pub fn solve_spd(a: &mut [f64], b: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_gram() {
        let a: Vec<f32> = (0..7).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), 91.0);
        let f = Factors::from_vec(2, 2, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(f.gram(), vec![10.0, 14.0, 14.0, 20.0]);
        let mut out = vec![0.0; 2];
        f.scores(&[1.0, 1.0], &mut out);
        assert_eq!(out, vec![3.0, 7.0]);
    }

    #[test]
    fn simd_kernels_match_portable_ones() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        #[cfg(target_arch = "x86_64")]
        if simd() != Simd::Base {
            for n in [0, 1, 7, 8, 9, 16, 17, 37] {
                let (x, y) = (&a[..n], &b[..n]);
                assert!((Avx2::dot(x, y) - Portable::dot(x, y)).abs() < 1e-5, "n = {n}");
                let (mut y1, mut y2) = (y.to_vec(), y.to_vec());
                Avx2::axpy(0.5, x, &mut y1);
                Portable::axpy(0.5, x, &mut y2);
                for (p, q) in y1.iter().zip(&y2) {
                    assert!((p - q).abs() < 1e-6);
                }
            }
        }
        assert!((Portable::dot(&a, &b) - a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>()).abs() < 1e-5);
    }

    /// The fused BPR kernels against the formulas written out, on lengths that exercise the
    /// vector body and the tail.
    #[test]
    fn fused_bpr_kernels_follow_their_formulas() {
        fn check<K: Kernels>(name: &str) {
            for n in [1usize, 7, 8, 9, 17, 64] {
                let row = |s: f32| (0..n).map(|i| (i as f32 * s).sin()).collect::<Vec<f32>>();
                let (p, q, r) = (row(0.3), row(0.7), row(1.1));
                let want_dot: f32 = (0..n).map(|k| p[k] * q[k] - p[k] * r[k]).sum();
                // SAFETY: each vector holds n values.
                let got = unsafe { K::dot_diff(p.as_ptr(), q.as_ptr(), r.as_ptr(), n) };
                assert!((got - want_dot).abs() < 1e-5, "{name} n {n}: {got} vs {want_dot}");
                let (g, lr, wd) = (-0.4f32, 0.05f32, 0.01f32);
                let (mut p1, mut q1, mut r1) = (p.clone(), q.clone(), r.clone());
                // SAFETY: as above.
                unsafe { K::bpr_sgd(p1.as_mut_ptr(), q1.as_mut_ptr(), r1.as_mut_ptr(), n, g, lr, wd) };
                for k in 0..n {
                    let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
                    assert!(close(p1[k], p[k] - lr * (g * q[k] - g * r[k] + wd * p[k])), "{name} p[{k}]");
                    assert!(close(q1[k], q[k] - lr * (g * p[k] + wd * q[k])), "{name} q[{k}]");
                    assert!(close(r1[k], r[k] - lr * (-g * p[k] + wd * r[k])), "{name} r[{k}]");
                }
                // Adagrad: accumulators start at a, gain d², and scale the step.
                let (mut rows, mut acc) = ([p.clone(), q.clone(), r.clone()], [row(0.2), row(0.5), row(0.9)]);
                for a in acc.iter_mut() {
                    a.iter_mut().for_each(|v| *v = v.abs() + 0.1);
                }
                let acc0 = acc.clone();
                let ptrs = |v: &mut [Vec<f32>; 3]| [v[0].as_mut_ptr(), v[1].as_mut_ptr(), v[2].as_mut_ptr()];
                // SAFETY: each vector holds n values.
                unsafe { K::bpr_adagrad(ptrs(&mut rows), ptrs(&mut acc), n, g, lr, wd) };
                for k in 0..n {
                    let grads = [g * (q[k] - r[k]) + wd * p[k], g * p[k] + wd * q[k], -g * p[k] + wd * r[k]];
                    for (w, d) in grads.iter().enumerate() {
                        let total = acc0[w][k] + d * d;
                        let old = [p[k], q[k], r[k]][w];
                        let want = old - lr * d / (total.sqrt() + 1e-10);
                        assert!((acc[w][k] - total).abs() < 1e-5, "{name} adagrad acc {w}[{k}]");
                        assert!((rows[w][k] - want).abs() < 1e-6, "{name} adagrad row {w}[{k}]");
                    }
                }
            }
        }
        check::<Portable>("portable");
        #[cfg(target_arch = "x86_64")]
        if simd() != Simd::Base {
            check::<Avx2>("avx2");
        }
        #[cfg(target_arch = "x86_64")]
        if simd() == Simd::Avx512 {
            check::<Avx512>("avx512");
        }
    }

    #[test]
    fn cholesky_solves() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(solve_spd(&mut a, &mut b, 2));
        // 4x + 2y = 2, 2x + 3y = 1 -> x = 0.5, y = 0
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12);
        assert!(!solve_spd(&mut [0.0, 0.0, 0.0, 0.0], &mut [1.0, 1.0], 2));
    }
}
