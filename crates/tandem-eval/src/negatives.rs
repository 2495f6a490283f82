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

/// Draws `n` distinct negatives per test user among catalogue items the user has neither in
/// training (`history`) nor held out. A user with fewer eligible items gets all of them.
pub fn sample_negatives(
    test: &TestSet,
    history: &Csr,
    catalogue: &[bool],
    n: usize,
    sampling: NegativeSampling,
    seed: u64,
) -> Vec<Vec<u32>> {
    let n_items = catalogue.len();
    let counts = history.column_sums();
    let weights: Vec<f64> = (0..n_items)
        .map(|i| match sampling {
            NegativeSampling::Uniform => catalogue[i] as u8 as f64,
            NegativeSampling::Popularity => {
                if catalogue[i] {
                    counts.get(i).copied().unwrap_or(0.0)
                } else {
                    0.0
                }
            }
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
            let seen = history.row(u as usize).0;
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
        let history = Csr::from_triplets(2, 50, &[0, 0, 1], &[1, 2, 3], &[1.0, 1.0, 1.0]);
        let test = TestSet { users: vec![0, 1], truth: vec![vec![4], vec![5]] };
        let mut catalogue = vec![true; 50];
        catalogue[49] = false;
        for sampling in [NegativeSampling::Uniform, NegativeSampling::Popularity] {
            let a = sample_negatives(&test, &history, &catalogue, 10, sampling, 1);
            assert_eq!(a, sample_negatives(&test, &history, &catalogue, 10, sampling, 1));
            for (k, negs) in a.iter().enumerate() {
                let mut d = negs.clone();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), negs.len(), "distinct");
                for &i in negs {
                    assert!(i != 49 && !history.row(k).0.contains(&i) && !test.truth[k].contains(&i));
                }
            }
        }
        let u = sample_negatives(&test, &history, &catalogue, 10, NegativeSampling::Uniform, 1);
        assert!(u.iter().all(|n| n.len() == 10));
        // Popularity sampling can only draw items with training counts: items 1, 2, 3 minus known ones.
        let p = sample_negatives(&test, &history, &catalogue, 10, NegativeSampling::Popularity, 1);
        assert_eq!(p[0], vec![3]);
    }
}
