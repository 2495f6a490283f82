//! EASE (Steck 2019): a closed-form item-item model, `B = I - P · diag(1 / diag(P))` with
//! `P = (XᵀX + λI)⁻¹` and a zero diagonal; with `dropout` p > 0 the emphasised denoising variant
//! EDLAE (Steck 2020), which adds `p / (1 - p) · diag(XᵀX)` to the regulariser, so that popular
//! items are shrunk more. Strong on catalogues up to ~30k items (the dense item x item inverse
//! is the cost).

use std::ops::Bound::{Excluded, Unbounded};

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use serde::{Deserialize, Serialize};
use tandem_data::Progress;

use crate::artifact::{TensorReader, Tensors};
use crate::error::{within, ModelError, Result};
use crate::kind::{saved_params, Dim, Fit, ModelParams};
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
}

impl Default for EaseParams {
    fn default() -> Self {
        EaseParams { lambda: 400.0, dropout: 0.0 }
    }
}

/// Item x item weights; a user's scores are their history row times `B`.
#[derive(Debug, Clone)]
pub struct Ease {
    params: EaseParams,
    n: usize,
    /// Row-major `n x n`.
    b: Vec<f32>,
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
        Ok(Ease { params: self.clone(), n, b })
    }
}

impl Ease {
    /// The weight matrix, row-major `n x n`.
    pub fn weights(&self) -> &[f32] {
        &self.b
    }

    /// Rebuilds a model from saved weights.
    pub fn from_weights(params: EaseParams, n: usize, b: Vec<f32>) -> Self {
        assert_eq!(b.len(), n * n);
        Ease { params, n, b }
    }
}

impl Retriever for Ease {
    fn n_items(&self) -> usize {
        self.n
    }

    crate::kind_and_params!("ease");

    fn artifact(&self) -> crate::artifact::Artifact {
        crate::artifact::Artifact {
            kind: "ease",
            params: self.params(),
            tensors: [("weights".to_string(), crate::artifact::Tensor::matrix(self.n, self.n, self.b.clone()))].into(),
        }
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        out.fill(0.0);
        for (&j, &w) in query.items.iter().zip(query.weights) {
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
        within("dropout", self.dropout, 0.0..=0.95)
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(EaseParams::fit(self, fit.train, fit.progress)?))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let w = TensorReader::new(tensors, "ease").matrix("weights")?;
        if w.rows() != w.dim() {
            return Err(ModelError::Artifact { path: "ease model".into(), message: "weights are not square".into() });
        }
        Ok(Box::new(Ease::from_weights(saved_params(kind, params)?, w.rows(), w.as_slice().to_vec())))
    }

    fn space() -> Vec<Dim> {
        vec![Dim::float("lambda", 1.0, 10_000.0, true), Dim::float("dropout", 0.0, 0.75, false)]
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
        let m = EaseParams { lambda: 1.0, dropout: 0.5 }.fit(&TrainSet::new(log, 2, 2), &NoProgress).unwrap();
        let w = m.weights();
        assert!((w[1] - 1.0 / 3.0).abs() < 1e-6 && (w[2] - 0.2).abs() < 1e-6, "{w:?}");
        let e = EaseParams { dropout: 1.0, ..Default::default() }.fit(&checkerboard(), &NoProgress).unwrap_err();
        assert!(e.to_string().contains("dropout"), "{e}");
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
