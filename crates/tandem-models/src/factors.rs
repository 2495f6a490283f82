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
    fn cholesky_solves() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(solve_spd(&mut a, &mut b, 2));
        // 4x + 2y = 2, 2x + 3y = 1 -> x = 0.5, y = 0
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12);
        assert!(!solve_spd(&mut [0.0, 0.0, 0.0, 0.0], &mut [1.0, 1.0], 2));
    }
}
