//! AVX2 + FMA kernels over contiguous rows of `f` floats (`f` a multiple of 8) for the
//! dense inner loops: the ALS solve ([`crate::als`]) and the Gram matrix ([`Factors::gram`]).
//! Outputs stay in registers 64 floats at a time, so these run at the FMA units' pace where
//! the one-dot-one-axpy kernels of [`crate::factors::Kernels`] wait on stores and horizontal
//! sums. Each function's safety contract: the CPU has AVX2 and FMA.

use crate::factors::{Factors, Kernels};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Copies rows `cols` of `y` into `out`, one after another, prefetching the rows eight ahead:
/// the item tables are far larger than the caches, so these loads are where the solve waits
/// on memory, and keeping several rows in flight hides most of it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gather(y: &Factors, cols: &[u32], out: &mut [f32]) {
    const AHEAD: usize = 4;
    let f = y.dim();
    assert!(out.len() >= cols.len() * f && f.is_multiple_of(8));
    let table = y.as_slice();
    assert!(cols.iter().all(|&i| (i as usize + 1) * f <= table.len()));
    let (pt, po) = (table.as_ptr(), out.as_mut_ptr());
    // SAFETY: every index was checked against the table above; out holds cols.len() rows.
    unsafe {
        for &i in cols.iter().take(AHEAD) {
            prefetch_row(pt.add(i as usize * f), f);
        }
        for (k, &i) in cols.iter().enumerate() {
            if let Some(&next) = cols.get(k + AHEAD) {
                prefetch_row(pt.add(next as usize * f), f);
            }
            let (src, dst) = (pt.add(i as usize * f), po.add(k * f));
            let mut e = 0;
            while e < f {
                _mm256_storeu_ps(dst.add(e), _mm256_loadu_ps(src.add(e)));
                e += 8;
            }
        }
    }
}

/// Asks for the cache lines of one row of `f` floats.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn prefetch_row(row: *const f32, f: usize) {
    let mut e = 0;
    while e < f {
        // SAFETY: a prefetch never faults; the address is inside the row.
        unsafe { _mm_prefetch(row.add(e) as *const i8, _MM_HINT_T0) };
        e += 16;
    }
}

/// `out[k] = rows[k] · v` for the `out.len()` contiguous rows of `v.len()` floats, four rows
/// at a time (eight independent FMA chains, one horizontal reduction per four dots).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dots(rows: &[f32], v: &[f32], out: &mut [f32]) {
    let (f, n) = (v.len(), out.len());
    assert!(rows.len() >= n * f && f % 8 == 0);
    let (pr, pv) = (rows.as_ptr(), v.as_ptr());
    let mut k = 0;
    // SAFETY: (all loads and stores) k + 4 <= n (or k < n) rows of f floats lie inside `rows`;
    // e + 16 <= f (or e + 8 <= f) inside each row and `v`; k + 4 <= n inside `out`.
    unsafe {
        while k + 4 <= n {
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut e = 0;
            while e + 16 <= f {
                let (v0, v1) = (_mm256_loadu_ps(pv.add(e)), _mm256_loadu_ps(pv.add(e + 8)));
                for r in 0..4 {
                    let row = pr.add((k + r) * f + e);
                    acc[2 * r] = _mm256_fmadd_ps(_mm256_loadu_ps(row), v0, acc[2 * r]);
                    acc[2 * r + 1] = _mm256_fmadd_ps(_mm256_loadu_ps(row.add(8)), v1, acc[2 * r + 1]);
                }
                e += 16;
            }
            if e < f {
                let v0 = _mm256_loadu_ps(pv.add(e));
                for r in 0..4 {
                    acc[2 * r] = _mm256_fmadd_ps(_mm256_loadu_ps(pr.add((k + r) * f + e)), v0, acc[2 * r]);
                }
            }
            let s0 = _mm256_add_ps(acc[0], acc[1]);
            let s1 = _mm256_add_ps(acc[2], acc[3]);
            let s2 = _mm256_add_ps(acc[4], acc[5]);
            let s3 = _mm256_add_ps(acc[6], acc[7]);
            // Per 128-bit half: [s0, s1, s2, s3] partial sums, then the halves added.
            let h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
            let sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            _mm_storeu_ps(out.as_mut_ptr().add(k), sums);
            k += 4;
        }
        while k < n {
            out[k] = crate::factors::Avx2::dot(&rows[k * f..(k + 1) * f], v);
            k += 1;
        }
    }
}

/// `out += Σ_k coef[k] rows[k]`, accumulated 64 floats at a time in eight registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn add_weighted(rows: &[f32], coef: &[f32], out: &mut [f32]) {
    let (f, n) = (out.len(), coef.len());
    assert!(rows.len() >= n * f && f % 8 == 0);
    let (pr, po) = (rows.as_ptr(), out.as_mut_ptr());
    let mut b = 0;
    // SAFETY: (all loads and stores) b + 64 <= f (or b + 8 <= f) and k < n keep every access
    // inside `rows` (n rows of f) and `out` (f).
    unsafe {
        while b + 64 <= f {
            let mut acc = [_mm256_setzero_ps(); 8];
            for (k, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_loadu_ps(po.add(b + 8 * k));
            }
            for (r, &c) in coef.iter().enumerate() {
                let c = _mm256_set1_ps(c);
                let row = pr.add(r * f + b);
                for (k, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(c, _mm256_loadu_ps(row.add(8 * k)), *acc);
                }
            }
            for (k, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(po.add(b + 8 * k), *acc);
            }
            b += 64;
        }
        while b + 8 <= f {
            let (mut even, mut odd) = (_mm256_loadu_ps(po.add(b)), _mm256_setzero_ps());
            let mut r = 0;
            while r + 2 <= n {
                even = _mm256_fmadd_ps(_mm256_set1_ps(coef[r]), _mm256_loadu_ps(pr.add(r * f + b)), even);
                odd = _mm256_fmadd_ps(_mm256_set1_ps(coef[r + 1]), _mm256_loadu_ps(pr.add((r + 1) * f + b)), odd);
                r += 2;
            }
            if r < n {
                even = _mm256_fmadd_ps(_mm256_set1_ps(coef[r]), _mm256_loadu_ps(pr.add(r * f + b)), even);
            }
            _mm256_storeu_ps(po.add(b), _mm256_add_ps(even, odd));
            b += 8;
        }
    }
}

/// `g += Σ_k rows[k]ᵀ rows[k]` for the rows of `d` floats in `rows` (`g` is `d x d`): row i of
/// g is the rows weighted by their i-th entries.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gram_rows(rows: &[f32], d: usize, g: &mut [f32]) {
    assert!(g.len() >= d * d);
    let n = rows.len() / d;
    let mut coef = vec![0f32; n];
    for i in 0..d {
        coef.iter_mut().zip(rows.chunks_exact(d)).for_each(|(c, row)| *c = row[i]);
        // SAFETY: AVX2 + FMA are this function's contract.
        unsafe { add_weighted(&rows[..n * d], &coef, &mut g[i * d..(i + 1) * d]) };
    }
}
