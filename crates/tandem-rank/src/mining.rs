//! A ranker's training examples (SPEC §4): every training positive, hard negatives mined from a
//! trained retriever, uniform random negatives and explicit negatives, each source with its
//! own weight for the weighted BCE.
//!
//! Hard negatives follow nanoRecSys: for each user, the retriever's top `skip + top_k` items
//! that are not the user's positives, minus the first `skip` (the very hardest are often
//! positives nobody logged), form a pool; each positive draws one item from it. Random
//! negatives are drawn uniformly outside the user's positives, `random_ratio` per positive
//! (fractions subsample: 0.25 gives one for about every fourth positive). Every draw comes from
//! a per-user seeded stream, so the examples do not depend on the number of threads.

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tandem_data::sample::{user_rng, NegativeSampler};
use tandem_data::Interactions;
use tandem_models::{Query, Retriever, TrainSet};

/// Where an example came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A training interaction (label 1).
    Positive,
    /// Drawn from the retriever's top items that are not the user's positives.
    Hard,
    /// Drawn uniformly from the items that are not the user's positives.
    Random,
    /// An interaction the user rated at or below the explicit-negative threshold.
    Explicit,
}

/// One weighted, labelled (user, item) pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Example {
    /// User index.
    pub user: u32,
    /// Item index.
    pub item: u32,
    /// 1 for positives, 0 for negatives.
    pub label: f32,
    /// The example's weight in the loss (its source's weight).
    pub weight: f32,
    /// Where it came from.
    pub source: Source,
}

/// How examples are mined (defaults: nanoRecSys's — one hard negative per positive from the
/// top 100, none skipped, one random negative per positive, all weights 1).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MiningSpec {
    /// Retriever candidates (after the skipped ones) a hard negative is drawn from; 0 mines none.
    pub top_k: usize,
    /// The retriever's hardest non-positive items left out of the pool.
    pub skip: usize,
    /// Uniform random negatives per positive; fractions subsample.
    pub random_ratio: f32,
    /// Weight of positives.
    pub positive_weight: f32,
    /// Weight of hard negatives.
    pub hard_weight: f32,
    /// Weight of random negatives.
    pub random_weight: f32,
    /// Weight of explicit negatives.
    pub explicit_weight: f32,
    /// Seed of every draw.
    pub seed: u64,
}

impl Default for MiningSpec {
    fn default() -> Self {
        MiningSpec {
            top_k: 100,
            skip: 0,
            random_ratio: 1.0,
            positive_weight: 1.0,
            hard_weight: 1.0,
            random_weight: 1.0,
            explicit_weight: 1.0,
            seed: 42,
        }
    }
}

/// A mining setting outside its allowed values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("mining: invalid {name} = {value} (allowed: {allowed})")]
pub struct InvalidMining {
    /// The setting.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What it may be.
    pub allowed: &'static str,
}

impl From<InvalidMining> for tandem_models::ModelError {
    fn from(e: InvalidMining) -> Self {
        tandem_models::ModelError::InvalidParameter { name: e.name.into(), value: e.value, allowed: e.allowed.into() }
    }
}

impl MiningSpec {
    /// Checks every setting.
    pub fn check(&self) -> Result<(), InvalidMining> {
        let bad = |name, value: &dyn std::fmt::Display, allowed| {
            Err(InvalidMining { name, value: value.to_string(), allowed })
        };
        if self.top_k > 100_000 || self.skip > 100_000 {
            let (name, v) = if self.top_k > 100_000 { ("top_k", self.top_k) } else { ("skip", self.skip) };
            return bad(name, &v, "0..=100000");
        }
        if !(0.0..=100.0).contains(&self.random_ratio) {
            return bad("random_ratio", &self.random_ratio, "0 <= random_ratio <= 100");
        }
        for (name, w) in [
            ("positive_weight", self.positive_weight),
            ("hard_weight", self.hard_weight),
            ("random_weight", self.random_weight),
            ("explicit_weight", self.explicit_weight),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return bad(name, &w, "a finite weight >= 0");
            }
        }
        Ok(())
    }
}

/// The rows of `log` whose weight (the rating, where the log keeps one) is at most
/// `threshold`, as (user, item) pairs: explicit negatives for [`mine`].
pub fn explicit_negatives(log: &Interactions, threshold: f32) -> Vec<(u32, u32)> {
    log.iter().filter(|r| r.weight <= threshold).map(|r| (r.user, r.item)).collect()
}

/// Every training positive of `train`, with hard negatives from `retriever` (fitted on
/// `train`), random negatives and the given explicit negatives, users in index order.
pub fn mine(
    retriever: &dyn Retriever,
    train: &TrainSet,
    explicit: &[(u32, u32)],
    spec: &MiningSpec,
) -> Result<Vec<Example>, InvalidMining> {
    spec.check()?;
    let m = &train.user_items;
    let sampler = NegativeSampler::new(m);
    let n_items = retriever.n_items().min(m.n_cols()) as u32;
    let per_user: Vec<Vec<Example>> = (0..m.n_rows() as u32)
        .into_par_iter()
        .map(|u| {
            let positives = m.row(u as usize).0;
            let mut out = Vec::with_capacity(positives.len() * 3);
            if positives.is_empty() {
                return out;
            }
            let mut rng = user_rng(spec.seed, 0, u);
            let pool: Vec<u32> = if spec.top_k > 0 {
                let q = Query::from_row(m, u);
                let keep = |i: u32| i < n_items && !sampler.is_positive(u, i);
                let top = retriever.recommend(&q, spec.skip + spec.top_k, &keep);
                top.into_iter().skip(spec.skip).map(|s| s.item).collect()
            } else {
                Vec::new()
            };
            let (whole, frac) = (spec.random_ratio.trunc() as usize, spec.random_ratio.fract());
            let example = |item, label, weight, source| Example { user: u, item, label, weight, source };
            for &item in positives {
                out.push(example(item, 1.0, spec.positive_weight, Source::Positive));
                if !pool.is_empty() {
                    let hard = pool[rng.random_range(0..pool.len())];
                    out.push(example(hard, 0.0, spec.hard_weight, Source::Hard));
                }
                let draws = whole + usize::from(frac > 0.0 && rng.random::<f32>() < frac);
                for _ in 0..draws {
                    if let Some(neg) = sampler.uniform(u, &mut rng) {
                        out.push(example(neg, 0.0, spec.random_weight, Source::Random));
                    }
                }
            }
            out
        })
        .collect();
    let mut examples: Vec<Example> = per_user.into_iter().flatten().collect();
    examples.extend(explicit.iter().map(|&(user, item)| Example {
        user,
        item,
        label: 0.0,
        weight: spec.explicit_weight,
        source: Source::Explicit,
    }));
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_models::artifact::Artifact;
    use tandem_models::testing::checkerboard;

    /// Scores item i as i: the "hardest" items are the highest ids.
    struct ById(usize);

    impl Retriever for ById {
        fn kind(&self) -> &'static str {
            "by_id"
        }
        fn n_items(&self) -> usize {
            self.0
        }
        fn artifact(&self) -> Artifact {
            unimplemented!("not saved in these tests")
        }
        fn score(&self, _: &Query<'_>, out: &mut [f32]) {
            out.iter_mut().enumerate().for_each(|(i, s)| *s = i as f32);
        }
    }

    fn count(ex: &[Example], source: Source) -> usize {
        ex.iter().filter(|e| e.source == source).count()
    }

    #[test]
    fn hard_negatives_come_from_the_pool_after_the_skipped_ones() {
        let t = checkerboard();
        let r = ById(t.n_items());
        let spec = MiningSpec { top_k: 2, skip: 1, random_ratio: 0.0, hard_weight: 0.5, ..Default::default() };
        let ex = mine(&r, &t, &[], &spec).unwrap();
        let positives = t.user_items.nnz();
        assert_eq!(count(&ex, Source::Positive), positives);
        assert_eq!(count(&ex, Source::Hard), positives, "one hard negative per positive");
        for e in ex.iter().filter(|e| e.source == Source::Hard) {
            // Unseen items by descending id: user u (parity p) sees items of parity p except u % 10,
            // so its non-positives are the other parity plus u % 10; skip the highest one.
            let seen = t.user_items.row(e.user as usize).0;
            let mut unseen: Vec<u32> = (0..10).filter(|i| !seen.contains(i)).collect();
            unseen.sort_unstable_by(|a, b| b.cmp(a));
            assert!(unseen[1..3].contains(&e.item), "user {}: {} not in {:?}", e.user, e.item, &unseen[1..3]);
            assert_eq!((e.label, e.weight), (0.0, 0.5));
        }
        let pos = ex.iter().find(|e| e.source == Source::Positive).unwrap();
        assert!(t.user_items.row(pos.user as usize).0.contains(&pos.item) && pos.label == 1.0);
    }

    #[test]
    fn random_negatives_follow_the_ratio_and_avoid_positives() {
        let t = checkerboard();
        let r = ById(t.n_items());
        let positives = t.user_items.nnz();
        for (ratio, lo, hi) in [(2.0, 2.0, 2.0), (0.5, 0.35, 0.65), (0.0, 0.0, 0.0)] {
            let spec = MiningSpec { top_k: 0, random_ratio: ratio, random_weight: 0.25, ..Default::default() };
            let ex = mine(&r, &t, &[], &spec).unwrap();
            let n = count(&ex, Source::Random);
            let per = n as f64 / positives as f64;
            assert!((lo..=hi).contains(&per), "ratio {ratio}: {per}");
            assert_eq!(count(&ex, Source::Hard), 0);
            for e in ex.iter().filter(|e| e.source == Source::Random) {
                assert!(!t.user_items.row(e.user as usize).0.contains(&e.item));
                assert_eq!(e.weight, 0.25);
            }
        }
    }

    #[test]
    fn explicit_negatives_are_kept_with_their_weight_and_runs_are_seeded() {
        let t = checkerboard();
        let r = ById(t.n_items());
        let spec = MiningSpec { explicit_weight: 2.0, ..Default::default() };
        let a = mine(&r, &t, &[(3, 4), (5, 0)], &spec).unwrap();
        let explicit: Vec<_> = a.iter().filter(|e| e.source == Source::Explicit).collect();
        assert_eq!(explicit.len(), 2);
        assert!(explicit.iter().all(|e| e.label == 0.0 && e.weight == 2.0));
        assert_eq!(a, mine(&r, &t, &[(3, 4), (5, 0)], &spec).unwrap(), "same seed, same examples");
        let b = mine(&r, &t, &[(3, 4), (5, 0)], &MiningSpec { seed: 7, ..spec }).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn low_ratings_are_explicit_negatives() {
        let mut log = Interactions::new();
        for (user, item, weight) in [(0, 1, 5.0), (0, 2, 2.0), (1, 1, 1.0)] {
            log.push(tandem_data::Interaction { user, item, time: 0, weight });
        }
        assert_eq!(explicit_negatives(&log, 2.0), vec![(0, 2), (1, 1)]);
    }

    #[test]
    fn bad_settings_are_named() {
        let t = checkerboard();
        let r = ById(t.n_items());
        for (spec, name) in [
            (MiningSpec { random_ratio: -1.0, ..Default::default() }, "random_ratio"),
            (MiningSpec { hard_weight: f32::NAN, ..Default::default() }, "hard_weight"),
            (MiningSpec { skip: 1 << 30, ..Default::default() }, "skip"),
        ] {
            let e = mine(&r, &t, &[], &spec).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }
}
