//! A fitted MF model.

use crate::factors::{dot, Factors};
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
        Mf { params, users, items, user_bias, item_bias, global_bias }
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

    /// The full score of one (user, item) pair.
    pub fn predict(&self, user: u32, item: u32) -> f32 {
        let (u, i) = (user as usize, item as usize);
        self.global_bias + self.user_bias[u] + self.item_bias[i] + dot(self.users.row(u), self.items.row(i))
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

    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        let f = self.items.dim();
        // Known users use their vector; others are folded in as the mean of their items' factors.
        let (p, base) = match query.trained.filter(|&u| (u as usize) < self.users.rows()) {
            Some(u) => (self.users.row(u as usize).to_vec(), self.global_bias + self.user_bias[u as usize]),
            None => {
                let mut p = vec![0f32; f];
                let known: Vec<u32> =
                    query.items.iter().copied().filter(|&i| (i as usize) < self.items.rows()).collect();
                for &i in &known {
                    crate::factors::axpy(1.0 / known.len() as f32, self.items.row(i as usize), &mut p);
                }
                (p, self.global_bias)
            }
        };
        self.items.scores(&p, out);
        for (o, b) in out.iter_mut().zip(&self.item_bias) {
            *o += base + b;
        }
    }
}
