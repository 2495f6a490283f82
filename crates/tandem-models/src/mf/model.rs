//! A fitted MF model.

use crate::factors::Factors;
use crate::panels::{DotScorer, ItemPanels};
use crate::retriever::{Query, Retriever};

use super::params::MfParams;

/// Factors and biases; `score(u, i) = mu + b_u + b_i + p_u · q_i`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mf {
    pub(crate) params: MfParams,
    pub(crate) users: Factors,
    pub(crate) items: Factors,
    pub(crate) user_bias: Vec<f32>,
    pub(crate) item_bias: Vec<f32>,
    pub(crate) global_bias: f32,
    /// Rows `[q_i, b_i, 1]` packed for blocked scoring against `[p_u, 1, mu + b_u]`.
    panels: ItemPanels,
}

impl Mf {
    /// Rebuilds a model from its parts (as saved).
    pub fn from_parts(
        params: MfParams,
        users: Factors,
        items: Factors,
        user_bias: Vec<f32>,
        item_bias: Vec<f32>,
        global_bias: f32,
    ) -> Self {
        let f = items.dim();
        let rows = (0..items.rows()).flat_map(|i| items.row(i).iter().copied().chain([item_bias[i], 1.0]));
        let panels = ItemPanels::pack(&Factors::from_vec(items.rows(), f + 2, rows.collect()));
        Mf { params, users, items, user_bias, item_bias, global_bias, panels }
    }

    /// The parameters it was trained with.
    pub fn params(&self) -> &MfParams {
        &self.params
    }

    /// User factors `p_u`.
    pub fn user_factors(&self) -> &Factors {
        &self.users
    }

    /// Item factors `q_i`.
    pub fn item_factors(&self) -> &Factors {
        &self.items
    }

    /// Item biases `b_i`.
    pub fn item_bias(&self) -> &[f32] {
        &self.item_bias
    }

    /// User biases `b_u`.
    pub fn user_bias(&self) -> &[f32] {
        &self.user_bias
    }

    /// The global bias `mu`.
    pub fn global_bias(&self) -> f32 {
        self.global_bias
    }
}

impl Retriever for Mf {
    fn embeddings(&self) -> Option<crate::Embeddings<'_>> {
        Some(crate::Embeddings { users: self.user_factors(), items: self.item_factors() })
    }

    fn n_items(&self) -> usize {
        self.items.rows()
    }

    crate::kind_and_params!("mf");

    fn artifact(&self) -> crate::artifact::Artifact {
        use crate::artifact::Tensor;
        let m = |f: &Factors| Tensor::matrix(f.rows(), f.dim(), f.as_slice().to_vec());
        crate::artifact::Artifact {
            kind: "mf",
            params: Retriever::params(self),
            tensors: [
                ("user_factors".to_string(), m(&self.users)),
                ("item_factors".to_string(), m(&self.items)),
                ("user_bias".to_string(), Tensor::f32(self.user_bias.clone())),
                ("item_bias".to_string(), Tensor::f32(self.item_bias.clone())),
                ("global_bias".to_string(), Tensor::f32(vec![self.global_bias])),
            ]
            .into(),
        }
    }

    crate::dot_scoring!();
}

impl DotScorer for Mf {
    fn panels(&self) -> &ItemPanels {
        &self.panels
    }

    /// Known users use their vector; others are folded in as the mean of their items' factors.
    fn query_vector(&self, query: &Query<'_>) -> Vec<f32> {
        let (mut p, base) = match query.trained.filter(|&u| (u as usize) < self.users.rows()) {
            Some(u) => (self.users.row(u as usize).to_vec(), self.global_bias + self.user_bias[u as usize]),
            None => (self.items.mean_of(query.items), self.global_bias),
        };
        p.extend([1.0, base]);
        p
    }
}
