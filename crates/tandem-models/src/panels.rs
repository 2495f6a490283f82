//! Blocked scoring for models whose score is a dot product of a query vector and an item
//! vector (ALS, MF, the two-tower): many queries against every item, with the top-k selection
//! fused into the products so that a full score row is never written.
//!
//! Item vectors are packed once into panels of [`NR`] items stored k-major (`panel[k][j]`), the
//! layout of an sgemm micro-kernel: a register tile of up to [`MR`] queries x [`NR`] items
//! accumulates one FMA chain per score, over `k` in order. Every score therefore has the same
//! value whichever batch its query is in (a batch of one included), which is what keeps
//! [`Retriever::score`](crate::Retriever::score) and the batch paths identical. Panels are
//! taken in blocks that stay in L2 while every tile of queries passes over them.

use crate::factors::{simd, Factors, Simd};
use crate::topk::{Scored, TopK};
use crate::Query;

/// Items per panel: two AVX registers.
pub const NR: usize = 16;
/// Queries per register tile (12 accumulators + 2 item loads + 1 broadcast of 16 registers).
pub const MR: usize = 6;
/// Panels per cache block: 1,024 items, 256 KB at 64 factors.
const BLOCK: usize = 64;

/// Item vectors packed for blocked scoring, longest vectors first: a top-k scan stops for a
/// tile of queries once `|query| |item|` — no score can exceed it — falls below every one of
/// their lists' thresholds, so the exact top k costs a share of the products (on H&M-size ALS
/// vectors a user's 12th score is reached by `|u| |y|` for about 3% of the items).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemPanels {
    n_items: usize,
    dim: usize,
    /// `ceil(n_items / NR)` panels of `dim x NR`, the last one padded with zeros.
    data: Vec<f32>,
    /// The item at each packed position, and the position of each item.
    order: Vec<u32>,
    position: Vec<u32>,
    /// Per panel, the length of its longest vector (its first), rounded up so that a computed
    /// product never exceeds `|query| * bound`.
    bound: Vec<f32>,
}

/// Slack on the Cauchy-Schwarz bound for the rounding of an f32 dot product (relative error
/// at most about `dim * 2^-24`, far below this for any width the models take).
const BOUND_SLACK: f32 = 1.0 + 1e-3;

impl ItemPanels {
    /// Packs the rows of `items` (one per item), longest first (ties by index).
    pub fn pack(items: &Factors) -> Self {
        let (n, d) = (items.rows(), items.dim());
        let norms: Vec<f32> = (0..n)
            .map(|i| {
                let sq: f64 = items.row(i).iter().map(|&v| v as f64 * v as f64).sum();
                sq.sqrt() as f32
            })
            .collect();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| norms[b as usize].total_cmp(&norms[a as usize]).then(a.cmp(&b)));
        let mut position = vec![0u32; n];
        order.iter().enumerate().for_each(|(p, &i)| position[i as usize] = p as u32);
        let mut data = vec![0f32; n.div_ceil(NR) * d * NR];
        for (p, &i) in order.iter().enumerate() {
            let panel = &mut data[(p / NR) * d * NR..];
            for (k, &v) in items.row(i as usize).iter().enumerate() {
                panel[k * NR + p % NR] = v;
            }
        }
        // NaN norms sort first and never bound anything: no early stop past them.
        let bound = order
            .chunks(NR)
            .map(|c| {
                let b = norms[c[0] as usize] * BOUND_SLACK;
                if b.is_nan() {
                    f32::INFINITY
                } else {
                    b
                }
            })
            .collect();
        ItemPanels { n_items: n, dim: d, data, order, position, bound }
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `out[q * n_items + i]` = query `q`'s vector (row `q` of `queries`, `dim` wide) . item `i`.
    pub fn scores(&self, queries: &[f32], out: &mut [f32]) {
        let n = self.n_items;
        self.each_tile(queries, |q0, m, i0, tile| {
            let w = NR.min(n - i0);
            for r in 0..m {
                let row = &mut out[(q0 + r) * n..(q0 + r + 1) * n];
                for (j, &s) in tile[r * NR..r * NR + w].iter().enumerate() {
                    row[self.order[i0 + j] as usize] = s;
                }
            }
        });
    }

    /// `out[j]` = the query's vector . item `items[j]`, with the very bits [`ItemPanels::scores`]
    /// gives (one FMA chain over `k` in order, or the same separately rounded steps without
    /// FMA); an item the panels do not hold scores -inf. What rankers read a few candidates by.
    pub fn score_items(&self, query: &[f32], items: &[u32], out: &mut [f32]) {
        let (d, fma) = (self.dim, simd() != Simd::Base);
        for (o, &i) in out.iter_mut().zip(items) {
            let Some(&p) = self.position.get(i as usize) else {
                *o = f32::NEG_INFINITY;
                continue;
            };
            let p = p as usize;
            let panel = &self.data[(p / NR) * d * NR..];
            let column = (0..d).map(|k| panel[k * NR + p % NR]);
            *o = if fma {
                query.iter().zip(column).fold(0f32, |acc, (&u, y)| u.mul_add(y, acc))
            } else {
                query.iter().zip(column).fold(0f32, |acc, (&u, y)| acc + u * y)
            };
        }
    }

    /// The best `k` items for each query (rows of `queries`) among those `keep(query, item)`
    /// allows, best first, ties by ascending item index (NaN as -inf): the lists
    /// [`top_k`](crate::top_k) gives over [`ItemPanels::scores`], without the score rows.
    pub fn top_k(&self, queries: &[f32], k: usize, keep: &dyn Fn(usize, u32) -> bool) -> Vec<Vec<Scored>> {
        let n_queries = queries.len() / self.dim.max(1);
        let mut best: Vec<TopK> = (0..n_queries).map(|_| TopK::new(k)).collect();
        let slots: Vec<usize> = (0..n_queries).collect();
        self.offer(queries, &slots, &[], &mut best, keep);
        best.into_iter().map(TopK::into_sorted).collect()
    }

    /// Offers each query's scores to a list: row `r` of `queries` to `best[slots[r]]`, item `i`
    /// of these panels under the id `ids[i]` (`i` itself when `ids` is empty), where
    /// `keep(slots[r], id)` allows. What an IVF list scan of many queries runs.
    pub(crate) fn offer(
        &self,
        queries: &[f32],
        slots: &[usize],
        ids: &[u32],
        best: &mut [TopK],
        keep: &dyn Fn(usize, u32) -> bool,
    ) {
        let (n, d) = (self.n_items, self.dim);
        let n_queries = queries.len() / d.max(1);
        let norms: Vec<f32> = queries
            .chunks_exact(d.max(1))
            .map(|q| (q.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32) * BOUND_SLACK)
            .collect();
        let panels = n.div_ceil(NR);
        let avx2 = simd() != Simd::Base;
        let mut tile = [0f32; MR * NR];
        for b0 in (0..panels).step_by(BLOCK) {
            for q0 in (0..n_queries).step_by(MR) {
                let m = MR.min(n_queries - q0);
                let rows = &queries[q0 * d..(q0 + m) * d];
                for p in b0..panels.min(b0 + BLOCK) {
                    // Vectors only get shorter from here: once no query of the tile can take
                    // a product this large, the rest of the items are skipped for it.
                    let bound = self.bound[p];
                    if (0..m).all(|r| best[slots[q0 + r]].closed_to(norms[q0 + r] * bound)) {
                        break;
                    }
                    kernel(avx2, rows, m, d, &self.data[p * d * NR..(p + 1) * d * NR], &mut tile);
                    let (i0, w) = (p * NR, NR.min(n - p * NR));
                    for (r, &slot) in slots[q0..q0 + m].iter().enumerate() {
                        let list = &mut best[slot];
                        let row = &tile[r * NR..r * NR + w];
                        // Most tiles hold nothing the list can take: one pass of compares.
                        if !row.iter().fold(false, |any, &s| any | list.admits(s)) {
                            continue;
                        }
                        for (j, &s) in row.iter().enumerate() {
                            let local = self.order[i0 + j];
                            let item = ids.get(local as usize).copied().unwrap_or(local);
                            if list.admits(s) && keep(slot, item) {
                                list.push(item, s);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Calls `visit(first query, queries in tile, first item, tile)` for every register tile,
    /// items ascending for each query; `tile` is `MR x NR` row-major.
    fn each_tile(&self, queries: &[f32], mut visit: impl FnMut(usize, usize, usize, &[f32; MR * NR])) {
        let d = self.dim;
        let n_queries = queries.len() / d.max(1);
        let panels = self.n_items.div_ceil(NR);
        let avx2 = simd() != Simd::Base;
        let mut tile = [0f32; MR * NR];
        for b0 in (0..panels).step_by(BLOCK) {
            for q0 in (0..n_queries).step_by(MR) {
                let m = MR.min(n_queries - q0);
                let rows = &queries[q0 * d..(q0 + m) * d];
                for p in b0..panels.min(b0 + BLOCK) {
                    let panel = &self.data[p * d * NR..(p + 1) * d * NR];
                    kernel(avx2, rows, m, d, panel, &mut tile);
                    visit(q0, m, p * NR, &tile);
                }
            }
        }
    }
}

/// One register tile: `tile[r * NR + j] = rows[r] . panel[.., j]` for `r < m`.
#[inline]
fn kernel(avx2: bool, rows: &[f32], m: usize, d: usize, panel: &[f32], tile: &mut [f32; MR * NR]) {
    debug_assert!(rows.len() == m * d && panel.len() == d * NR && m <= MR);
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` is true only where simd() found AVX2 and FMA; the slices' lengths are
        // the kernel's bounds (checked above in debug builds, established by each_tile).
        unsafe {
            match m {
                1 => x86::tile::<1>(rows.as_ptr(), d, panel.as_ptr(), tile),
                2 => x86::tile::<2>(rows.as_ptr(), d, panel.as_ptr(), tile),
                3 => x86::tile::<3>(rows.as_ptr(), d, panel.as_ptr(), tile),
                4 => x86::tile::<4>(rows.as_ptr(), d, panel.as_ptr(), tile),
                5 => x86::tile::<5>(rows.as_ptr(), d, panel.as_ptr(), tile),
                _ => x86::tile::<6>(rows.as_ptr(), d, panel.as_ptr(), tile),
            }
        }
        return;
    }
    let _ = avx2;
    for (r, row) in rows.chunks_exact(d.max(1)).take(m).enumerate() {
        let mut acc = [0f32; NR];
        for (k, &u) in row.iter().enumerate() {
            for (a, &y) in acc.iter_mut().zip(&panel[k * NR..(k + 1) * NR]) {
                *a += u * y;
            }
        }
        tile[r * NR..(r + 1) * NR].copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// The `M x NR` micro-kernel: two accumulators a query, one FMA chain per score.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile<const M: usize>(rows: *const f32, d: usize, panel: *const f32, out: &mut [f32; MR * NR]) {
        let mut lo = [_mm256_setzero_ps(); M];
        let mut hi = [_mm256_setzero_ps(); M];
        for k in 0..d {
            // SAFETY: k < d; the panel holds d x NR floats and each of the M rows d floats.
            let (y0, y1) = unsafe { (_mm256_loadu_ps(panel.add(k * NR)), _mm256_loadu_ps(panel.add(k * NR + 8))) };
            for r in 0..M {
                // SAFETY: r < M rows of d floats.
                let u = unsafe { _mm256_broadcast_ss(&*rows.add(r * d + k)) };
                lo[r] = _mm256_fmadd_ps(u, y0, lo[r]);
                hi[r] = _mm256_fmadd_ps(u, y1, hi[r]);
            }
        }
        for r in 0..M {
            // SAFETY: r < M <= MR rows of NR floats in `out`.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr().add(r * NR), lo[r]);
                _mm256_storeu_ps(out.as_mut_ptr().add(r * NR + 8), hi[r]);
            }
        }
    }
}

/// A model that scores by `query vector . item vector` over packed [`ItemPanels`]; with
/// [`dot_scoring!`](crate::dot_scoring) inside its `impl Retriever`, its single and batch
/// scoring and recommending all run through the blocked kernel.
pub trait DotScorer {
    /// The packed item vectors.
    fn panels(&self) -> &ItemPanels;
    /// The query's vector, [`ItemPanels::dim`] wide.
    fn query_vector(&self, query: &Query<'_>) -> Vec<f32>;

    /// The vectors of `queries`, one row each.
    fn query_vectors(&self, queries: &[Query<'_>]) -> Vec<f32> {
        queries.iter().flat_map(|q| self.query_vector(q)).collect()
    }
}

/// Writes `score`, `score_batch`, `recommend` and `recommend_batch` of a
/// [`DotScorer`](crate::panels::DotScorer) inside its `impl Retriever`.
#[macro_export]
macro_rules! dot_scoring {
    () => {
        fn score(&self, query: &$crate::Query<'_>, out: &mut [f32]) {
            use $crate::panels::DotScorer;
            self.panels().scores(&self.query_vector(query), out)
        }

        fn score_batch(&self, queries: &[$crate::Query<'_>], out: &mut [f32]) {
            use $crate::panels::DotScorer;
            self.panels().scores(&self.query_vectors(queries), out)
        }

        fn score_items(&self, query: &$crate::Query<'_>, items: &[u32], out: &mut [f32]) {
            use $crate::panels::DotScorer;
            self.panels().score_items(&self.query_vector(query), items, out)
        }

        fn recommend(&self, query: &$crate::Query<'_>, k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<$crate::Scored> {
            use $crate::panels::DotScorer;
            self.panels().top_k(&self.query_vector(query), k, &|_, i| keep(i)).pop().unwrap_or_default()
        }

        fn recommend_batch(
            &self,
            queries: &[$crate::Query<'_>],
            k: usize,
            keep: &dyn Fn(usize, u32) -> bool,
        ) -> Vec<Vec<$crate::Scored>> {
            use $crate::panels::DotScorer;
            self.panels().top_k(&self.query_vectors(queries), k, keep)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topk::top_k;
    use rand::SeedableRng;

    fn random(rows: usize, dim: usize, seed: u64) -> Factors {
        Factors::normal(rows, dim, 1.0, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn scores_match_plain_products_and_do_not_depend_on_the_batch() {
        for (n, d, q) in [(1, 1, 1), (37, 5, 13), (100, 64, 7), (16, 3, 6)] {
            let (items, users) = (random(n, d, 1), random(q, d, 2));
            let p = ItemPanels::pack(&items);
            let mut all = vec![0f32; q * n];
            p.scores(users.as_slice(), &mut all);
            for u in 0..q {
                let mut one = vec![0f32; n];
                p.scores(users.row(u), &mut one);
                assert_eq!(one, all[u * n..(u + 1) * n], "query {u} alone and in a batch of {q}");
                let asked: Vec<u32> = (0..n as u32 + 2).rev().collect();
                let mut some = vec![0f32; asked.len()];
                p.score_items(users.row(u), &asked, &mut some);
                let want: Vec<f32> =
                    asked.iter().map(|&i| one.get(i as usize).copied().unwrap_or(f32::NEG_INFINITY)).collect();
                assert!(
                    some.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "score_items: {some:?} vs {want:?}"
                );
                for (i, &got) in one.iter().enumerate() {
                    let plain: f32 = users.row(u).iter().zip(items.row(i)).map(|(a, b)| a * b).sum();
                    assert!((got - plain).abs() <= 1e-4 * (1.0 + plain.abs()), "{n}x{d}: {got} vs {plain}");
                }
            }
        }
    }

    #[test]
    fn fused_top_k_equals_top_k_over_the_scores() {
        // Ties and NaN included: rounded scores tie often.
        let mut items = random(203, 4, 3);
        items.as_mut_slice().iter_mut().for_each(|v| *v = (*v * 2.0).round());
        items.row_mut(5)[0] = f32::NAN;
        let users = random(11, 4, 4);
        let p = ItemPanels::pack(&items);
        let mut scores = vec![0f32; 11 * 203];
        p.scores(users.as_slice(), &mut scores);
        let keep = |q: usize, i: u32| !(i as usize + q).is_multiple_of(3);
        for k in [0, 1, 12, 150, 500] {
            let fused = p.top_k(users.as_slice(), k, &keep);
            for (q, list) in fused.iter().enumerate() {
                let want = top_k(&scores[q * 203..(q + 1) * 203], k, |i| keep(q, i));
                assert_eq!(list, &want, "query {q}, k {k}");
            }
        }
    }

    /// Long-tailed vector lengths (as ALS gives popular items) make the scan stop early for
    /// most queries; the lists stay exactly those of every score, exclusions and ties included.
    #[test]
    fn stopping_early_on_the_length_bound_keeps_the_exact_lists() {
        let (n, d) = (5000, 16);
        let mut items = random(n, d, 7);
        for i in 0..n {
            let scale = 10f32.powf(-3.0 * i as f32 / n as f32);
            items.row_mut(i).iter_mut().for_each(|v| *v = (*v * scale * 64.0).round() / 64.0);
        }
        let users = random(40, d, 8);
        let p = ItemPanels::pack(&items);
        let mut scores = vec![0f32; 40 * n];
        p.scores(users.as_slice(), &mut scores);
        let keep = |q: usize, i: u32| !(i as usize * 7 + q).is_multiple_of(11);
        for k in [1, 12, 100] {
            let fused = p.top_k(users.as_slice(), k, &keep);
            for (q, list) in fused.iter().enumerate() {
                assert_eq!(list, &top_k(&scores[q * n..(q + 1) * n], k, |i| keep(q, i)), "query {q}, k {k}");
            }
        }
    }
}
