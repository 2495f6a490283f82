//! Drawing negatives for sampled ranking: uniform or popularity-proportional, excluding each
//! user's training and held-out items, seeded.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_data::Csr;

use crate::protocol::TestSet;

/// How negatives are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeSampling {
    /// Every eligible item equally likely.
    #[default]
    Uniform,
    /// Proportional to the item's training count.
    Popularity,
}

/// Draws `n` distinct negatives per test user among the items with training interactions
/// (`item_counts[i] > 0`, the training rows of item `i`) that the user is not known to have:
/// neither in `known` (every part of the split: train, valid and test) nor held out.
/// Popularity sampling weighs an item by its training interaction count. A user with fewer
/// eligible items gets all of them.
pub fn sample_negatives(
    test: &TestSet,
    known: &Csr,
    item_counts: &[u32],
    n: usize,
    sampling: NegativeSampling,
    seed: u64,
) -> Vec<Vec<u32>> {
    let n_items = item_counts.len();
    let weights: Vec<f64> = item_counts
        .iter()
        .map(|&c| match sampling {
            NegativeSampling::Uniform => (c > 0) as u8 as f64,
            NegativeSampling::Popularity => c as f64,
        })
        .collect();
    let mut cumulative = Vec::with_capacity(n_items);
    let mut total = 0.0;
    for w in &weights {
        total += w;
        cumulative.push(total);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut taken = vec![false; n_items];
    test.users
        .iter()
        .zip(&test.truth)
        .map(|(&u, truth)| {
            let seen = if (u as usize) < known.n_rows() { known.row(u as usize).0 } else { &[] };
            let blocked = |i: u32| seen.binary_search(&i).is_ok() || truth.binary_search(&i).is_ok();
            let eligible: Vec<u32> =
                (0..n_items as u32).filter(|&i| weights[i as usize] > 0.0 && !blocked(i)).collect();
            if eligible.len() <= n {
                return eligible;
            }
            let mut out = Vec::with_capacity(n);
            let mut tries = 0usize;
            while out.len() < n && tries < 100 * n {
                tries += 1;
                let x = rng.random::<f64>() * total;
                let i = cumulative.partition_point(|&c| c <= x).min(n_items - 1) as u32;
                if weights[i as usize] > 0.0 && !blocked(i) && !taken[i as usize] {
                    taken[i as usize] = true;
                    out.push(i);
                }
            }
            // Rejection can stall when the user's items hold most of the mass: fill uniformly.
            for &i in &eligible {
                if out.len() == n {
                    break;
                }
                if !taken[i as usize] {
                    taken[i as usize] = true;
                    out.push(i);
                }
            }
            for &i in &out {
                taken[i as usize] = false;
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negatives_avoid_known_items_and_are_seeded() {
        // Known: user 0 has 1, 2 (train) and 6 (valid); user 1 has 3. Items 0..49 except 49
        // have training rows.
        let known = Csr::from_triplets(2, 50, &[0, 0, 0, 1], &[1, 2, 6, 3], &[1.0; 4]);
        let test = TestSet { users: vec![0, 1], truth: vec![vec![4], vec![5]] };
        let mut counts = vec![1u32; 50];
        counts[49] = 0;
        for sampling in [NegativeSampling::Uniform, NegativeSampling::Popularity] {
            let a = sample_negatives(&test, &known, &counts, 10, sampling, 1);
            assert_eq!(a, sample_negatives(&test, &known, &counts, 10, sampling, 1));
            for (k, negs) in a.iter().enumerate() {
                let mut d = negs.clone();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), negs.len(), "distinct");
                for &i in negs {
                    assert!(i != 49 && !known.row(k).0.contains(&i) && !test.truth[k].contains(&i));
                }
            }
        }
        // Popularity sampling can only draw items with training rows.
        let mut sparse = vec![0u32; 50];
        sparse[1] = 1;
        sparse[2] = 1;
        sparse[3] = 1;
        let p = sample_negatives(&test, &known, &sparse, 10, NegativeSampling::Popularity, 1);
        assert_eq!(p[0], vec![3]);
        // A user beyond the known matrix avoids only their held-out items.
        let lone = TestSet { users: vec![7], truth: vec![vec![0]] };
        assert_eq!(sample_negatives(&lone, &known, &sparse, 10, NegativeSampling::Uniform, 1)[0].len(), 3);
    }

    /// Popularity means interaction counts: an item with one heavily weighted row is drawn a
    /// quarter as often as one with four rows.
    #[test]
    fn popularity_weights_are_interaction_counts() {
        let mut log = tandem_data::Interactions::new();
        log.push(tandem_data::Interaction { user: 0, item: 0, time: 0, weight: 5.0 });
        for u in 0..4 {
            log.push(tandem_data::Interaction { user: u, item: 1, time: 0, weight: 1.0 });
        }
        let counts = log.item_counts(2);
        assert_eq!(counts, vec![1, 4]);
        let users = 4000u32;
        let test = TestSet { users: (10..10 + users).collect(), truth: vec![vec![5]; users as usize] };
        let known = Csr::from_triplets(0, 2, &[], &[], &[]);
        let negs = sample_negatives(&test, &known, &counts, 1, NegativeSampling::Popularity, 3);
        let zeros = negs.iter().filter(|n| n == &&vec![0]).count() as f64 / users as f64;
        assert!((zeros - 0.2).abs() < 0.03, "item 0 drawn {zeros} of the time, not 1/5");
    }
}
