//! Negative sampling shared by every trained model (SPEC §4): uniform draws that exclude a
//! user's known positives, the NCF regime ([`pointwise_epoch`]), and deterministic per-user
//! random streams so results do not depend on the number of threads. (Evaluation's
//! popularity-proportional negatives live in `tandem-eval`.)

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Csr;

/// A random stream for (seed, epoch, user): the same draws whatever thread handles the user.
pub fn user_rng(seed: u64, epoch: u64, user: u32) -> ChaCha8Rng {
    // SplitMix64-style mixing keeps nearby inputs far apart.
    let mut z = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (user as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ChaCha8Rng::seed_from_u64(z ^ (z >> 31))
}

/// Draws items a user has not interacted with.
#[derive(Debug, Clone, Copy)]
pub struct NegativeSampler<'a> {
    /// Users x items; rows sorted by item (as [`Csr`] keeps them).
    positives: &'a Csr,
}

impl<'a> NegativeSampler<'a> {
    /// A sampler excluding the entries of `positives` (users x items).
    pub fn new(positives: &'a Csr) -> Self {
        NegativeSampler { positives }
    }

    /// Whether `item` is one of `user`'s positives.
    #[inline]
    pub fn is_positive(&self, user: u32, item: u32) -> bool {
        self.positives.row(user as usize).0.binary_search(&item).is_ok()
    }

    /// One uniform negative for `user`, or `None` when the user has every item.
    pub fn uniform(&self, user: u32, rng: &mut impl Rng) -> Option<u32> {
        let n = self.positives.n_cols() as u32;
        let seen = self.positives.row_len(user as usize) as u32;
        if seen >= n {
            return None;
        }
        if seen * 2 < n {
            // Rejection is fast while most items are negatives.
            loop {
                let i = rng.random_range(0..n);
                if !self.is_positive(user, i) {
                    return Some(i);
                }
            }
        }
        // Dense users: draw the k-th negative directly.
        let mut k = rng.random_range(0..n - seen);
        for (pos, &p) in self.positives.row(user as usize).0.iter().enumerate() {
            if k + (pos as u32) < p {
                return Some(k + pos as u32);
            }
        }
        k += seen;
        Some(k)
    }

    /// `count` uniform negatives (with replacement) appended to `out`.
    pub fn uniform_many(&self, user: u32, count: usize, rng: &mut impl Rng, out: &mut Vec<u32>) {
        for _ in 0..count {
            match self.uniform(user, rng) {
                Some(i) => out.push(i),
                None => return,
            }
        }
    }

    /// A uniform draw among the items of `pool` that are not `user`'s positives (`None` when
    /// there is none): rejection while draws are likely to succeed, then the k-th negative of
    /// the pool directly. Both stages are uniform over the pool's negatives.
    pub fn uniform_among(&self, user: u32, pool: &[u32], rng: &mut impl Rng) -> Option<u32> {
        if pool.is_empty() {
            return None;
        }
        for _ in 0..32 {
            let i = pool[rng.random_range(0..pool.len())];
            if !self.is_positive(user, i) {
                return Some(i);
            }
        }
        let negatives = pool.iter().filter(|&&i| !self.is_positive(user, i)).count();
        if negatives == 0 {
            return None;
        }
        let k = rng.random_range(0..negatives);
        pool.iter().copied().filter(|&i| !self.is_positive(user, i)).nth(k)
    }
}

/// One epoch of pointwise examples in the NCF regime (He et al. 2017): every positive of
/// `positives` (label 1) followed by `per_positive` uniform negatives (label 0) drawn for that
/// user, excluding all of the user's known positives, resampled every epoch. Deterministic for
/// (seed, epoch) whatever the thread count; users in index order.
pub fn pointwise_epoch(positives: &Csr, per_positive: usize, seed: u64, epoch: u64) -> Vec<(u32, u32, f32)> {
    let sampler = NegativeSampler::new(positives);
    let mut out = Vec::with_capacity(positives.nnz() * (1 + per_positive));
    let mut negs = Vec::with_capacity(per_positive);
    for u in 0..positives.n_rows() as u32 {
        let mut rng = user_rng(seed, epoch, u);
        for &i in positives.row(u as usize).0 {
            out.push((u, i, 1.0));
            negs.clear();
            sampler.uniform_many(u, per_positive, &mut rng, &mut negs);
            out.extend(negs.iter().map(|&j| (u, j, 0.0)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_negatives_exclude_positives_sparse_and_dense() {
        // user 0 has 2 of 10 items; user 1 has 8 of 10; user 2 has all.
        let rows = [0u32, 0, 1, 1, 1, 1, 1, 1, 1, 1];
        let cols = [3u32, 7, 0, 1, 2, 3, 5, 6, 8, 9];
        let mut r = rows.to_vec();
        let mut c = cols.to_vec();
        r.extend(std::iter::repeat_n(2, 10));
        c.extend(0..10);
        let m = Csr::from_triplets(3, 10, &r, &c, &vec![1.0; r.len()]);
        let s = NegativeSampler::new(&m);
        let mut rng = user_rng(1, 0, 0);
        let mut seen1 = [false; 10];
        for _ in 0..500 {
            let a = s.uniform(0, &mut rng).unwrap();
            assert!(a != 3 && a != 7);
            let b = s.uniform(1, &mut rng).unwrap();
            assert!(b == 4 || b == 7, "{b}");
            seen1[b as usize] = true;
        }
        assert!(seen1[4] && seen1[7], "both negatives of the dense user are drawn");
        assert_eq!(s.uniform(2, &mut rng), None);
        let mut out = Vec::new();
        s.uniform_many(0, 4, &mut rng, &mut out);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn negatives_among_a_pool_are_uniform_over_its_non_positives() {
        // user 0 has items 1, 2, 3 of the pool [1, 2, 3, 4, 6]; user 1 has the whole pool.
        let m = Csr::from_triplets(2, 8, &[0, 0, 0, 1, 1, 1, 1, 1], &[1, 2, 3, 1, 2, 3, 4, 6], &[1.0; 8]);
        let s = NegativeSampler::new(&m);
        let pool = [1u32, 2, 3, 4, 6];
        let mut rng = user_rng(3, 0, 0);
        let mut counts = [0usize; 8];
        for _ in 0..4000 {
            counts[s.uniform_among(0, &pool, &mut rng).unwrap() as usize] += 1;
        }
        assert_eq!(counts[4] + counts[6], 4000, "only the pool's negatives: {counts:?}");
        assert!(counts[4].abs_diff(2000) < 200 && counts[6].abs_diff(2000) < 200, "uniform: {counts:?}");
        assert_eq!(s.uniform_among(1, &pool, &mut rng), None, "no negative left in the pool");
        assert_eq!(s.uniform_among(0, &[], &mut rng), None);
    }

    #[test]
    fn ncf_regime_four_fresh_negatives_per_positive() {
        let m = Csr::from_triplets(2, 50, &[0, 0, 1], &[1, 2, 3], &[1.0; 3]);
        let e1 = pointwise_epoch(&m, 4, 9, 1);
        assert_eq!(e1.len(), 3 * 5);
        assert_eq!(e1.iter().filter(|e| e.2 == 1.0).count(), 3);
        for &(u, i, y) in &e1 {
            assert_eq!(y == 1.0, m.row(u as usize).0.contains(&i), "negatives exclude every known positive");
        }
        assert_eq!(e1, pointwise_epoch(&m, 4, 9, 1), "seeded");
        assert_ne!(e1, pointwise_epoch(&m, 4, 9, 2), "resampled every epoch");
    }

    #[test]
    fn streams_are_reproducible_per_user() {
        let a: u64 = user_rng(7, 3, 11).random();
        let b: u64 = user_rng(7, 3, 11).random();
        let c: u64 = user_rng(7, 4, 11).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
