//! `repurchase`: the customer's own past items, by recency and frequency — the strongest single
//! candidate source in retail (H&M's winners all started from it). An item scores the sum over
//! the user's purchases of it of `0.5^(days before the end of training / half_life_days)`; items
//! the user never bought score -inf (not proposed).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tandem_data::Csr;

use crate::artifact::{put_csr, Artifact, TensorReader, Tensors};
use crate::error::{within, ModelError, Result};
use crate::kind::{saved_params, Dim, Fit, ModelParams};
use crate::recent::{last_day, DAY};
use crate::retriever::{Query, Retriever, TrainSet};
use crate::topk::Scored;

/// Parameters of [`Repurchase`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepurchaseParams {
    /// Days after which a purchase counts half (default 30, > 0).
    pub half_life_days: f32,
    /// Only purchases in the last `window_days` days of training count (default: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_days: Option<u32>,
}

impl Default for RepurchaseParams {
    fn default() -> Self {
        RepurchaseParams { half_life_days: 30.0, window_days: None }
    }
}

/// Each user's bought items with their recency-weighted counts.
#[derive(Debug, Clone)]
pub struct Repurchase {
    params: RepurchaseParams,
    /// Users x items: the decayed purchase counts.
    scores: Csr,
}

impl RepurchaseParams {
    /// Weighs every training purchase by its age.
    pub fn fit(&self, train: &TrainSet) -> Result<Repurchase> {
        self.check()?;
        let log = &train.log;
        if log.is_empty() {
            return Err(ModelError::EmptyTrainingData { model: "repurchase" });
        }
        let end = last_day(train);
        let from = self.window_days.map_or(i64::MIN, |w| end - w as i64 + 1);
        let (mut users, mut items, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..log.len() {
            let day = log.time[r].div_euclid(DAY);
            if day >= from {
                users.push(log.user[r]);
                items.push(log.item[r]);
                weights.push(0.5f32.powf((end - day) as f32 / self.half_life_days));
            }
        }
        Ok(Repurchase {
            params: self.clone(),
            scores: Csr::from_triplets(train.n_users(), train.n_items(), &users, &items, &weights),
        })
    }
}

impl crate::SparseScorer for Repurchase {
    /// The query's bought items and their scores: the trained user's decayed counts, or for a
    /// history without a trained row its weights (counts; no times are known).
    fn proposed(&self, query: &Query<'_>) -> Vec<Scored> {
        let (items, scores) = match query.trained {
            Some(u) if (u as usize) < self.scores.n_rows() => self.scores.row(u as usize),
            _ => (query.items, query.weights),
        };
        items.iter().zip(scores).map(|(&item, &score)| Scored { item, score }).collect()
    }
}

impl Retriever for Repurchase {
    fn n_items(&self) -> usize {
        self.scores.n_cols()
    }

    crate::kind_and_params!("repurchase");

    fn artifact(&self) -> Artifact {
        let mut tensors = Tensors::new();
        put_csr(&mut tensors, "scores", &self.scores);
        Artifact { kind: "repurchase", params: self.params(), tensors }
    }

    crate::sparse_scoring!();
}

impl ModelParams for RepurchaseParams {
    fn check(&self) -> Result<()> {
        within("half_life_days", self.half_life_days, (std::ops::Bound::Excluded(0.0), std::ops::Bound::Unbounded))?;
        self.window_days.map_or(Ok(()), |w| within("window_days", w, 1..))
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(RepurchaseParams::fit(self, fit.train)?))
    }

    fn load(kind: &str, params: Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let scores = TensorReader::new(tensors, "repurchase").csr("scores")?;
        Ok(Box::new(Repurchase { params: saved_params(kind, params)?, scores }))
    }

    fn space() -> Vec<Dim> {
        vec![Dim::float("half_life_days", 1.0, 365.0, true)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{checkerboard, conformance};
    use tandem_data::{Interaction, Interactions};

    #[test]
    fn recent_and_frequent_purchases_first_unbought_items_never_proposed() {
        let mut log = Interactions::new();
        // user 0: item 2 twice long ago (days 0, 0), item 4 on the last day (30), item 1 on day 20.
        for (item, day) in [(2, 0), (2, 0), (4, 30), (1, 20)] {
            log.push(Interaction { user: 0, item, time: day * DAY, weight: 1.0 });
        }
        log.push(Interaction { user: 1, item: 3, time: 30 * DAY, weight: 1.0 });
        let t = TrainSet::new(log, 2, 6);
        let m = RepurchaseParams { half_life_days: 10.0, window_days: None }.fit(&t).unwrap();
        let q = Query::from_row(&t.user_items, 0);
        let got = m.recommend(&q, 3, &|_| true);
        // 1.0 (item 4), 0.5 (item 1), 2 * 0.125 (item 2).
        assert_eq!(got.iter().map(|s| (s.item, s.score)).collect::<Vec<_>>(), vec![(4, 1.0), (1, 0.5), (2, 0.25)]);
        let mut all = vec![0f32; 6];
        m.score(&q, &mut all);
        assert_eq!(all[0], f32::NEG_INFINITY, "never bought: not proposed");
        // A window drops the old purchases.
        let w = RepurchaseParams { half_life_days: 10.0, window_days: Some(15) }.fit(&t).unwrap();
        assert_eq!(w.recommend(&q, 2, &|_| true).iter().map(|s| s.item).collect::<Vec<_>>(), vec![4, 1]);
        assert_eq!(w.recommend(&q, 3, &|_| true)[2].score, f32::NEG_INFINITY);
        let e = RepurchaseParams { half_life_days: 0.0, window_days: None }.fit(&t).unwrap_err();
        assert!(e.to_string().contains("half_life_days"), "{e}");
    }

    #[test]
    fn conformance_suite() {
        let t = checkerboard();
        conformance::<RepurchaseParams>(&RepurchaseParams::default().fit(&t).unwrap(), &t, 0.0);
    }
}
