//! `random`: every item gets a seeded random score per user. The floor of any evaluation — a
//! model at or below it learned nothing — and the worked example of adding a model kind
//! (ARCHITECTURE.md): this file plus one line in `tandem_rank::registry::KINDS`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::artifact::{Artifact, Tensor, TensorReader, Tensors};
use crate::error::Result;
use crate::kind::{saved_params, Fit, ModelParams};
use crate::retriever::{Query, Retriever};

/// Parameters of [`Random`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomParams {
    /// Seed of the scores (default 42).
    pub seed: u64,
}

impl Default for RandomParams {
    fn default() -> Self {
        RandomParams { seed: 42 }
    }
}

/// Scores in [0, 1), fixed for a query: a trained user by index, anyone else by their history.
#[derive(Debug, Clone)]
pub struct Random {
    params: RandomParams,
    n_items: usize,
}

/// SplitMix64's finaliser: nearby inputs land far apart.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Retriever for Random {
    fn n_items(&self) -> usize {
        self.n_items
    }

    crate::kind_and_params!("random");

    fn artifact(&self) -> Artifact {
        Artifact {
            kind: "random",
            params: self.params(),
            tensors: [("n_items".to_string(), Tensor::u32(vec![self.n_items as u32]))].into(),
        }
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        let who = match query.trained {
            Some(u) => mix(u as u64),
            None => query.items.iter().fold(0x5EED, |h, &i| mix(h ^ i as u64)),
        };
        let base = mix(self.params.seed ^ who);
        for (i, o) in out.iter_mut().enumerate() {
            *o = (mix(base ^ i as u64) >> 40) as f32 / (1u64 << 24) as f32;
        }
    }
}

impl ModelParams for RandomParams {
    fn check(&self) -> Result<()> {
        Ok(())
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(Random { params: self.clone(), n_items: fit.train.n_items() }))
    }

    fn load(kind: &str, params: Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let n_items = TensorReader::new(tensors, "random").u32("n_items")?.first().copied().unwrap_or(0) as usize;
        Ok(Box::new(Random { params: saved_params(kind, params)?, n_items }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{checkerboard, conformance};
    use tandem_data::NoProgress;

    #[test]
    fn scores_are_seeded_per_user_and_round_trip() {
        let t = checkerboard();
        let fit = |p: RandomParams| {
            p.fit(&mut Fit {
                kind: "random",
                train: &t,
                side: Default::default(),
                progress: &NoProgress,
                validate: None,
            })
        };
        let m = fit(RandomParams::default()).unwrap();
        conformance::<RandomParams>(&*m, &t, 0.0);
        let score = |m: &dyn Retriever, user| {
            let mut s = vec![0f32; t.n_items()];
            m.score(&Query { trained: Some(user), items: &[], weights: &[] }, &mut s);
            s
        };
        assert_eq!(score(&*m, 1), score(&*m, 1));
        assert_ne!(score(&*m, 1), score(&*m, 2));
        assert!(score(&*m, 3).iter().all(|s| (0.0..1.0).contains(s)));
        let other = fit(RandomParams { seed: 7 }).unwrap();
        assert_ne!(score(&*m, 1), score(&*other, 1));
    }
}
