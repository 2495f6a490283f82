//! User-user collaborative filtering with exact top-k neighbours, computed per query.

use tandem_data::{Csr, Progress};

use super::item::Accumulator;
use super::params::KnnParams;
use super::weighting::Weigher;
use crate::error::{ModelError, Result};
use crate::kind::ModelParams;
use crate::retriever::{Query, Retriever, TrainSet};

/// User-user CF: the query's weighted vector finds its `neighbours` most similar training users
/// (exactly, over all users); `score(i) = sum over neighbours v of sim(u, v) * r_vi`.
#[derive(Debug, Clone)]
pub struct UserKnn {
    params: KnnParams,
    weigher: Weigher,
    /// Weighted user x item rows (known users' query vectors).
    weighted: Csr,
    /// Item x user, weighted: the inverted index for similarities.
    item_users_w: Csr,
    /// Raw user x item rows the neighbours vote with.
    user_items: Csr,
}

impl KnnParams {
    /// Fits user-user CF: weights user rows (users are documents, items are terms).
    pub fn fit_user_knn(&self, train: &TrainSet, _progress: &dyn Progress) -> Result<UserKnn> {
        self.check()?;
        if train.user_items.nnz() == 0 {
            return Err(ModelError::EmptyTrainingData { model: "user_knn" });
        }
        Ok(UserKnn::from_matrix(self.clone(), train.user_items.clone()))
    }
}

impl UserKnn {
    /// Builds the model from its user x item matrix (what it saves).
    pub fn from_matrix(params: KnnParams, user_items: Csr) -> Self {
        let weigher = Weigher::fit(&user_items, params.weighting, params.bm25_k1, params.bm25_b);
        let weighted = weigher.weigh_matrix(&user_items);
        let item_users_w = weighted.transpose();
        UserKnn { params, weigher, weighted, item_users_w, user_items }
    }
}

impl Retriever for UserKnn {
    fn n_items(&self) -> usize {
        self.user_items.n_cols()
    }

    crate::kind_and_params!("user_knn");

    fn artifact(&self) -> crate::artifact::Artifact {
        let mut tensors = crate::artifact::Tensors::new();
        crate::artifact::put_csr(&mut tensors, "user_items", &self.user_items);
        crate::artifact::Artifact { kind: "user_knn", params: self.params(), tensors }
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        out.fill(0.0);
        // Known users whose query is their stored row use the stored weights; other histories
        // (anonymous, or live) are weighted the same way on the fly.
        let stored = query.trained.map(|u| self.user_items.row(u as usize));
        let owned;
        let (cols, vals): (&[u32], &[f32]) = match (stored, query.trained) {
            (Some((c, v)), Some(u)) if c == query.items && v == query.weights => self.weighted.row(u as usize),
            _ => {
                let mut v = query.weights.to_vec();
                self.weigher.weigh(query.items, &mut v);
                owned = v;
                (query.items, &owned)
            }
        };
        let mut acc = Accumulator::new(self.user_items.n_rows());
        acc.add(cols, vals, &self.item_users_w);
        for nb in acc.drain_top(self.params.neighbours, self.params.shrink, query.trained) {
            let (items, rs) = self.user_items.row(nb.item as usize);
            for (&i, &r) in items.iter().zip(rs) {
                out[i as usize] += nb.score * r;
            }
        }
    }
}
