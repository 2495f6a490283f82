//! A fitted ALS model.

use crate::factors::{solve_spd, Factors};
use crate::panels::{DotScorer, ItemPanels};
use crate::retriever::{Query, Retriever};

use super::params::AlsParams;

/// User and item factors; a user's score for item i is `x_u · y_i`.
#[derive(Debug, Clone)]
pub struct Als {
    params: AlsParams,
    users: Factors,
    items: Factors,
    /// The item factors packed for blocked scoring.
    panels: ItemPanels,
    /// YᵀY + λI, for solving new users exactly.
    yty: Vec<f64>,
}

impl Als {
    pub(crate) fn new(params: AlsParams, users: Factors, items: Factors) -> Self {
        let mut yty = items.gram();
        let f = items.dim();
        for i in 0..f {
            yty[i * f + i] += params.regularization as f64;
        }
        Als { params, panels: ItemPanels::pack(&items), users, items, yty }
    }

    /// User factors.
    pub fn user_factors(&self) -> &Factors {
        &self.users
    }

    /// Item factors.
    pub fn item_factors(&self) -> &Factors {
        &self.items
    }

    /// The parameters it was fitted with.
    pub fn params(&self) -> &AlsParams {
        &self.params
    }

    /// Rebuilds a model from saved parts.
    pub fn from_parts(params: AlsParams, users: Factors, items: Factors) -> Self {
        Als::new(params, users, items)
    }

    /// The exact least-squares user vector for a history (implicit's `recalculate_user`).
    pub fn solve_user(&self, items: &[u32], weights: &[f32]) -> Vec<f32> {
        let f = self.items.dim();
        let mut a = self.yty.clone();
        let mut b = vec![0f64; f];
        let alpha = self.params.alpha as f64;
        for (&i, &w) in items.iter().zip(weights) {
            let Some(y) = (i as usize).lt(&self.items.rows()).then(|| self.items.row(i as usize)) else { continue };
            let c1 = alpha * w as f64;
            for p in 0..f {
                b[p] += (1.0 + c1) * y[p] as f64;
                for q in 0..f {
                    a[p * f + q] += c1 * y[p] as f64 * y[q] as f64;
                }
            }
        }
        if solve_spd(&mut a, &mut b, f) {
            b.into_iter().map(|v| v as f32).collect()
        } else {
            vec![0.0; f]
        }
    }
}

impl Retriever for Als {
    fn embeddings(&self) -> Option<crate::Embeddings<'_>> {
        Some(crate::Embeddings { users: &self.users, items: &self.items })
    }

    fn n_items(&self) -> usize {
        self.items.rows()
    }

    crate::kind_and_params!("als");

    fn artifact(&self) -> crate::artifact::Artifact {
        let m = |f: &Factors| crate::artifact::Tensor::matrix(f.rows(), f.dim(), f.as_slice().to_vec());
        crate::artifact::Artifact {
            kind: "als",
            params: Retriever::params(self),
            tensors: [("user_factors".to_string(), m(&self.users)), ("item_factors".to_string(), m(&self.items))]
                .into(),
        }
    }

    crate::dot_scoring!();
}

impl DotScorer for Als {
    fn panels(&self) -> &ItemPanels {
        &self.panels
    }

    /// Known users use their trained vector; anyone else is solved from the history.
    fn query_vector(&self, query: &Query<'_>) -> Vec<f32> {
        match query.trained.filter(|&u| (u as usize) < self.users.rows()) {
            Some(u) => self.users.row(u as usize).to_vec(),
            None => self.solve_user(query.items, query.weights),
        }
    }
}
