//! Popularity: global counts, a recent window, or time-decayed counts.

use serde::{Deserialize, Serialize};

use crate::artifact::{TensorReader, Tensors};
use crate::error::{within, ModelError, Result};
use crate::kind::{saved_params, Fit, ModelParams};
use crate::retriever::{Query, Retriever, TrainSet};
use crate::topk::{top_k, Scored};

const DAY: i64 = 86_400;

/// Which popularity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PopularityMode {
    /// Number of training rows per item.
    #[default]
    Global,
    /// Rows in the last `window_days` days of training (ties broken by global count).
    Recent,
    /// Sum over rows of 1 / days-ago, where the last training day is 1 day ago.
    Decay,
}

/// Parameters of [`Popularity`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PopularityParams {
    /// `global` (default), `recent` or `decay`.
    pub mode: PopularityMode,
    /// Window of `recent`, in days (default 7, >= 1).
    pub window_days: u32,
}

impl Default for PopularityParams {
    fn default() -> Self {
        PopularityParams { mode: PopularityMode::Global, window_days: 7 }
    }
}

/// Scores every item by its popularity in training; the same list for every user.
#[derive(Debug, Clone)]
pub struct Popularity {
    params: PopularityParams,
    scores: Vec<f32>,
    /// Every item, best first: the one list every query walks.
    order: Vec<Scored>,
}

impl PopularityParams {
    /// Counts the training log.
    pub fn fit(&self, train: &TrainSet) -> Result<Popularity> {
        self.check()?;
        let log = &train.log;
        if log.is_empty() {
            return Err(ModelError::EmptyTrainingData { model: "popularity" });
        }
        let mut global = vec![0f64; train.n_items()];
        for &i in &log.item {
            global[i as usize] += 1.0;
        }
        let last_day = log.max_time().unwrap_or(0).div_euclid(DAY);
        let scores: Vec<f64> = match self.mode {
            PopularityMode::Global => global,
            PopularityMode::Recent => {
                let from = last_day - self.window_days as i64 + 1;
                let mut recent = vec![0f64; train.n_items()];
                for (&i, &t) in log.item.iter().zip(&log.time) {
                    if t.div_euclid(DAY) >= from {
                        recent[i as usize] += 1.0;
                    }
                }
                // Integer counts plus a fraction < 1 from the global count: ties go to the
                // overall more popular item.
                let max = global.iter().copied().fold(0.0, f64::max) + 1.0;
                recent.iter().zip(&global).map(|(r, g)| r + g / max).collect()
            }
            PopularityMode::Decay => {
                let mut decayed = vec![0f64; train.n_items()];
                for (&i, &t) in log.item.iter().zip(&log.time) {
                    let days_ago = (last_day - t.div_euclid(DAY) + 1).max(1);
                    decayed[i as usize] += 1.0 / days_ago as f64;
                }
                decayed
            }
        };
        Ok(Popularity::from_scores(self.clone(), scores.into_iter().map(|s| s as f32).collect()))
    }
}

impl Popularity {
    /// Rebuilds a model from saved scores.
    pub fn from_scores(params: PopularityParams, scores: Vec<f32>) -> Self {
        let order = top_k(&scores, scores.len(), |_| true);
        Popularity { params, scores, order }
    }

    /// The score of every item.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

impl Retriever for Popularity {
    fn n_items(&self) -> usize {
        self.scores.len()
    }

    crate::kind_and_params!("popularity");

    fn artifact(&self) -> crate::artifact::Artifact {
        crate::artifact::Artifact {
            kind: "popularity",
            params: self.params(),
            tensors: [("scores".to_string(), crate::artifact::Tensor::f32(self.scores.clone()))].into(),
        }
    }

    fn score(&self, _query: &Query<'_>, out: &mut [f32]) {
        out.copy_from_slice(&self.scores);
    }

    fn recommend(&self, _query: &Query<'_>, k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Scored> {
        self.order.iter().filter(|s| keep(s.item)).take(k).copied().collect()
    }
}

impl ModelParams for PopularityParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        within("window_days", self.window_days, 1..)
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(PopularityParams::fit(self, fit.train)?))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let p = saved_params(kind, params)?;
        Ok(Box::new(Popularity::from_scores(p, TensorReader::new(tensors, "popularity").f32("scores")?.1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::{Interaction, Interactions};

    fn train() -> TrainSet {
        let mut log = Interactions::new();
        // item 0: 3 rows long ago; item 1: 2 rows on the last day; item 2: 1 row, 1 day before the last.
        for (item, day) in [(0, 0), (0, 0), (0, 1), (1, 10), (1, 10), (2, 9)] {
            log.push(Interaction { user: 0, item, time: day * DAY + 5, weight: 1.0 });
        }
        TrainSet::new(log, 1, 4)
    }

    #[test]
    fn global_recent_and_decay() {
        let t = train();
        let g = PopularityParams::default().fit(&t).unwrap();
        assert_eq!(g.scores(), &[3.0, 2.0, 1.0, 0.0]);
        let r = PopularityParams { mode: PopularityMode::Recent, window_days: 2 }.fit(&t).unwrap();
        let order = r.recommend(&Query { trained: None, items: &[], weights: &[] }, 4, &|_| true);
        assert_eq!(order.iter().map(|s| s.item).collect::<Vec<_>>(), vec![1, 2, 0, 3]);
        let d = PopularityParams { mode: PopularityMode::Decay, window_days: 7 }.fit(&t).unwrap();
        // item 0: 2/11 + 1/10; item 1: 2/1; item 2: 1/2.
        let want = [2.0 / 11.0 + 0.1, 2.0, 0.5, 0.0];
        for (s, w) in d.scores().iter().zip(want) {
            assert!((s - w as f32).abs() < 1e-6);
        }
    }

    #[test]
    fn conformance_suite() {
        let t = crate::testing::checkerboard();
        for mode in [PopularityMode::Global, PopularityMode::Recent, PopularityMode::Decay] {
            let m = PopularityParams { mode, window_days: 7 }.fit(&t).unwrap();
            crate::testing::conformance::<PopularityParams>(&m, &t, 0.0);
        }
    }

    #[test]
    fn rejects_a_zero_window() {
        let e = PopularityParams { mode: PopularityMode::Recent, window_days: 0 }.fit(&train()).unwrap_err();
        assert!(e.to_string().contains("window_days"));
    }
}
