//! EASE (Steck 2019): a closed-form item-item model, `B = I - P · diag(1 / diag(P))` with
//! `P = (XᵀX + λI)⁻¹` and a zero diagonal; with `dropout` p > 0 the emphasised denoising variant
//! EDLAE (Steck 2020), which adds `p / (1 - p) · diag(XᵀX)` to the regulariser, so that popular
//! items are shrunk more. With `session_weight` β > 0 the Gram matrix also counts, β times, the
//! pairs of items a user took in one session (rows at most `session_gap` seconds apart): what a
//! user takes together (a basket, one sitting of ratings) says more than what the same user took
//! months apart. Strong on catalogues up to ~30k items (the dense item x item inverse is the
//! cost).

use std::ops::Bound::{Excluded, Unbounded};

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use serde::{Deserialize, Serialize};
use tandem_data::{Csr, Progress};

use crate::artifact::{TensorReader, Tensors};
use crate::error::{within, ModelError, Result};
use crate::kind::{saved_params, Dim, Fit, ModelParams};
use crate::recent::recency_weighted;
use crate::retriever::{Query, Retriever, TrainSet};

// Chosen on validation splits of ml-100k train (temporal, ratio and loo all pick 400).

/// The largest catalogue EASE accepts (its dense matrices need 12 bytes per item pair).
pub const EASE_MAX_ITEMS: usize = 30_000;

/// Parameters of [`Ease`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EaseParams {
    /// L2 regularisation λ on the diagonal of the Gram matrix (default 400, > 0).
    pub lambda: f32,
    /// EDLAE's dropout probability p: item i's regulariser becomes `λ + p / (1 - p) · G_ii`
    /// (default 0: plain EASE; 0 <= p <= 0.95).
    pub dropout: f32,
    /// Weight β of the session co-occurrence term added to the Gram matrix (default 0: none;
    /// 0 <= β <= 100).
    pub session_weight: f32,
    /// Largest gap in seconds between a user's consecutive rows of one session (default 60:
    /// on three random 10% carvings of ml-100k ratio's train, β = 1, λ 200, p 0.5, gaps of
    /// 30-60 s validated best, NDCG@10 0.2026 at 60 s against 0.1993 at 1800 s and 0.1986
    /// without sessions).
    pub session_gap: u64,
    /// Recency half-life in rows (default 0 = off): a trained user is scored from their
    /// training history with each row's weight times `0.5^(age / half_life)`, age being how
    /// many of their rows came after it, so the latest items say most about the next ones.
    pub recency_half_life: f32,
}

impl Default for EaseParams {
    fn default() -> Self {
        EaseParams { lambda: 400.0, dropout: 0.0, session_weight: 0.0, session_gap: 60, recency_half_life: 0.0 }
    }
}

/// Item x item weights; a user's scores are their history row times `B`.
#[derive(Debug, Clone)]
pub struct Ease {
    params: EaseParams,
    n: usize,
    /// Row-major `n x n`.
    b: Vec<f32>,
    /// With `recency_half_life`: the trained users' recency-weighted histories (users x items).
    history: Option<Csr>,
}

impl EaseParams {
    /// Fits EASE on `train`'s user x item matrix (weights as given).
    pub fn fit(&self, train: &TrainSet, progress: &dyn Progress) -> Result<Ease> {
        self.check()?;
        let n = train.n_items();
        if n > EASE_MAX_ITEMS {
            return Err(ModelError::TooLarge {
                model: "ease",
                what: format!("{n} items"),
                limit: "at most 30000 items; use als or item_knn for larger catalogues",
            });
        }
        if train.user_items.nnz() == 0 {
            return Err(ModelError::EmptyTrainingData { model: "ease" });
        }
        let step = progress.step("EASE: Gram matrix and inverse", 2);
        let mut g = Mat::<f64>::zeros(n, n);
        let m = &train.user_items;
        for u in 0..m.n_rows() {
            let (cols, vals) = m.row(u);
            for (a, (&i, &wi)) in cols.iter().zip(vals).enumerate() {
                for (&j, &wj) in cols[a..].iter().zip(&vals[a..]) {
                    g[(i as usize, j as usize)] += wi as f64 * wj as f64;
                }
            }
        }
        if self.session_weight > 0.0 {
            add_sessions(&mut g, train, self.session_gap, self.session_weight as f64);
        }
        let emphasis = self.dropout as f64 / (1.0 - self.dropout as f64);
        for i in 0..n {
            for j in 0..i {
                g[(i, j)] = g[(j, i)];
            }
            g[(i, i)] += self.lambda as f64 + emphasis * g[(i, i)];
        }
        step.inc(1);
        let p = g
            .llt(Side::Lower)
            .map_err(|_| ModelError::Diverged { model: "ease", hint: "increase lambda".into() })?
            .inverse();
        step.inc(1);
        let mut b = vec![0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    b[i * n + j] = (-p[(i, j)] / p[(j, j)]) as f32;
                }
            }
        }
        if b.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::Diverged { model: "ease", hint: "increase lambda".into() });
        }
        let history = (self.recency_half_life > 0.0).then(|| recency_weighted(train, self.recency_half_life));
        Ok(Ease { params: self.clone(), n, b, history })
    }
}

/// Adds `weight` to the upper triangle of `g` (diagonal included) once per session and pair of
/// distinct items in it: a session is a run of one user's rows (by time) with no gap over `gap`
/// seconds.
fn add_sessions(g: &mut Mat<f64>, train: &TrainSet, gap: u64, weight: f64) {
    let (log, sequences) = (&train.log, train.rows_in_time());
    let mut items: Vec<usize> = Vec::new();
    let mut flush = |items: &mut Vec<usize>| {
        items.sort_unstable();
        items.dedup();
        for (a, &i) in items.iter().enumerate() {
            for &j in &items[a..] {
                g[(i, j)] += weight;
            }
        }
        items.clear();
    };
    for u in 0..train.n_users() {
        let mut last: Option<i64> = None;
        for &r in sequences.user(u) {
            let t = log.time[r as usize];
            if last.is_some_and(|l| t.abs_diff(l) > gap) {
                flush(&mut items);
            }
            items.push(log.item[r as usize] as usize);
            last = Some(t);
        }
        flush(&mut items);
    }
}

impl Ease {
    /// The weight matrix, row-major `n x n`.
    pub fn weights(&self) -> &[f32] {
        &self.b
    }

    /// Rebuilds a model from saved weights (and histories, with `recency_half_life`).
    pub fn from_weights(params: EaseParams, n: usize, b: Vec<f32>, history: Option<Csr>) -> Self {
        assert_eq!(b.len(), n * n);
        Ease { params, n, b, history }
    }
}

impl Retriever for Ease {
    fn n_items(&self) -> usize {
        self.n
    }

    crate::kind_and_params!("ease");

    fn artifact(&self) -> crate::artifact::Artifact {
        let mut tensors: Tensors =
            [("weights".to_string(), crate::artifact::Tensor::matrix(self.n, self.n, self.b.clone()))].into();
        if let Some(h) = &self.history {
            crate::artifact::put_csr(&mut tensors, "history", h);
        }
        crate::artifact::Artifact { kind: "ease", params: self.params(), tensors }
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        out.fill(0.0);
        let (items, weights) = query.trained_row(self.history.as_ref()).unwrap_or((query.items, query.weights));
        for (&j, &w) in items.iter().zip(weights) {
            if (j as usize) < self.n {
                crate::factors::axpy(w, &self.b[j as usize * self.n..(j as usize + 1) * self.n], out);
            }
        }
    }
}

impl ModelParams for EaseParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        within("lambda", self.lambda, (Excluded(0.0), Unbounded))?;
        within("dropout", self.dropout, 0.0..=0.95)?;
        within("session_weight", self.session_weight, 0.0..=100.0)?;
        within("session_gap", self.session_gap, 1..=10 * 365 * 86_400)?;
        within("recency_half_life", self.recency_half_life, 0.0..)
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(EaseParams::fit(self, fit.train, fit.progress)?))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let r = TensorReader::new(tensors, "ease");
        let w = r.matrix("weights")?;
        if w.rows() != w.dim() {
            return Err(ModelError::Artifact { path: "ease model".into(), message: "weights are not square".into() });
        }
        let history = r.optional_csr("history")?;
        Ok(Box::new(Ease::from_weights(saved_params(kind, params)?, w.rows(), w.as_slice().to_vec(), history)))
    }

    fn space() -> Vec<Dim> {
        vec![
            Dim::float("lambda", 1.0, 10_000.0, true),
            Dim::float("dropout", 0.0, 0.75, false),
            Dim::float("session_weight", 0.0, 4.0, false),
            Dim::int("session_gap", 10, 3_600, true),
            // Recency weighting: what lifted ALS on ml-100k temporal (next items per user).
            Dim::float("recency_half_life", 0.0, 20.0, false).next_items(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{checkerboard, conformance};
    use tandem_data::NoProgress;

    #[test]
    fn matches_the_closed_form_on_a_tiny_case() {
        // Two users: {0, 1} and {1}. G = [[1,1],[1,2]] + λI with λ = 1 -> [[2,1],[1,3]];
        // P = 1/5 [[3,-1],[-1,2]]; B01 = -P01/P11 = 1/2, B10 = -P10/P00 = 1/3.
        let mut log = tandem_data::Interactions::new();
        for (u, i) in [(0, 0), (0, 1), (1, 1)] {
            log.push(tandem_data::Interaction { user: u, item: i, time: 0, weight: 1.0 });
        }
        let m = EaseParams { lambda: 1.0, ..Default::default() }.fit(&TrainSet::new(log, 2, 2), &NoProgress).unwrap();
        let w = m.weights();
        assert!((w[1] - 0.5).abs() < 1e-6 && (w[2] - 1.0 / 3.0).abs() < 1e-6 && w[0] == 0.0 && w[3] == 0.0);
    }

    #[test]
    fn dropout_adds_the_emphasis_of_edlae() {
        // The same users; p = 0.5 adds p / (1 - p) = 1 times diag(G) = (1, 2) as well:
        // G + Λ = [[3,1],[1,5]], P = 1/14 [[5,-1],[-1,3]]; B01 = 1/3, B10 = 1/5.
        let mut log = tandem_data::Interactions::new();
        for (u, i) in [(0, 0), (0, 1), (1, 1)] {
            log.push(tandem_data::Interaction { user: u, item: i, time: 0, weight: 1.0 });
        }
        let m = EaseParams { lambda: 1.0, dropout: 0.5, ..Default::default() }
            .fit(&TrainSet::new(log, 2, 2), &NoProgress)
            .unwrap();
        let w = m.weights();
        assert!((w[1] - 1.0 / 3.0).abs() < 1e-6 && (w[2] - 0.2).abs() < 1e-6, "{w:?}");
        let e = EaseParams { dropout: 1.0, ..Default::default() }.fit(&checkerboard(), &NoProgress).unwrap_err();
        assert!(e.to_string().contains("dropout"), "{e}");
    }

    #[test]
    fn sessions_count_as_extra_users_of_their_items() {
        // User 0: items 0 and 1 ten seconds apart, item 2 an hour later, item 0 again two
        // hours later; user 1: item 1. With a 60 s gap the sessions are {0, 1}, {2} and {0}
        // for user 0 and {1} for user 1: β = 1 adds them to the Gram matrix as if they were
        // users of their own.
        let rows = |rows: &[(u32, u32, i64)]| {
            let mut log = tandem_data::Interactions::new();
            for &(user, item, time) in rows {
                log.push(tandem_data::Interaction { user, item, time, weight: 1.0 });
            }
            log
        };
        let given = [(0, 0, 0), (0, 1, 10), (0, 2, 3_610), (0, 0, 7_300), (1, 1, 50)];
        let with_sessions = EaseParams { lambda: 1.0, session_weight: 1.0, session_gap: 60, ..Default::default() }
            .fit(&TrainSet::new(rows(&given), 2, 3), &NoProgress)
            .unwrap();
        let mut as_users = given.to_vec();
        as_users.extend([(2, 0, 0), (2, 1, 0), (3, 2, 0), (4, 0, 0), (5, 1, 0)]);
        let plain = EaseParams { lambda: 1.0, ..Default::default() }
            .fit(&TrainSet::new(rows(&as_users), 6, 3), &NoProgress)
            .unwrap();
        for (a, b) in with_sessions.weights().iter().zip(plain.weights()) {
            assert!((a - b).abs() < 1e-6, "{:?} vs {:?}", with_sessions.weights(), plain.weights());
        }
        assert!(with_sessions.weights().iter().any(|&w| w != 0.0));
        let e =
            EaseParams { session_weight: -1.0, ..Default::default() }.fit(&checkerboard(), &NoProgress).unwrap_err();
        assert!(e.to_string().contains("session_weight"), "{e}");
    }

    #[test]
    fn recency_half_life_scores_trained_users_from_their_decayed_history() {
        // The tiny case above (B01 = 1/2, B10 = 1/3) with user 0 taking item 1 before item 0:
        // with half-life 1 item 1 weighs 1/2, item 0 weighs 1, so user 0 scores
        // [1/2 · B10, 1 · B01] = [1/6, 1/2]; an anonymous query keeps its own weights.
        let mut log = tandem_data::Interactions::new();
        for (u, i, t) in [(0, 1, 0), (0, 0, 1), (1, 1, 0)] {
            log.push(tandem_data::Interaction { user: u, item: i, time: t, weight: 1.0 });
        }
        let t = TrainSet::new(log, 2, 2);
        let m = EaseParams { lambda: 1.0, recency_half_life: 1.0, ..Default::default() }.fit(&t, &NoProgress).unwrap();
        let mut out = vec![0.0; 2];
        m.score(&Query::from_row(&t.user_items, 0), &mut out);
        assert!((out[0] - 1.0 / 6.0).abs() < 1e-6 && (out[1] - 0.5).abs() < 1e-6, "{out:?}");
        m.score(&Query { trained: None, items: &[0, 1], weights: &[1.0, 1.0] }, &mut out);
        assert!((out[0] - 1.0 / 3.0).abs() < 1e-6 && (out[1] - 0.5).abs() < 1e-6, "{out:?}");
        let c = checkerboard();
        let m = EaseParams { lambda: 1.0, recency_half_life: 3.0, ..Default::default() }.fit(&c, &NoProgress).unwrap();
        conformance::<EaseParams>(&m, &c, 1.0);
        let e = EaseParams { recency_half_life: -1.0, ..Default::default() }.fit(&c, &NoProgress).unwrap_err();
        assert!(e.to_string().contains("recency_half_life"), "{e}");
    }

    #[test]
    fn conformance_suite() {
        let t = checkerboard();
        conformance::<EaseParams>(
            &EaseParams { lambda: 1.0, ..Default::default() }.fit(&t, &NoProgress).unwrap(),
            &t,
            1.0,
        );
    }

    #[test]
    fn rejects_bad_lambda() {
        let e = EaseParams { lambda: 0.0, ..Default::default() }.fit(&checkerboard(), &NoProgress).unwrap_err();
        assert!(e.to_string().contains("lambda"));
    }
}
