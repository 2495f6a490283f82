//! Item-item collaborative filtering with exact top-k neighbours.

use rayon::prelude::*;
use tandem_data::{Csr, Progress};

use super::params::KnnParams;
use super::weighting::Weigher;
use crate::error::{ModelError, Result};
use crate::kind::ModelParams;
use crate::retriever::{Query, Retriever, TrainSet};
use crate::topk::{Scored, TopK};

/// Item-item CF: `score(i) = sum over history items j of w_j * sim(j, i)`, where each item
/// keeps only its `neighbours` most similar items (itself included, as in `implicit`).
#[derive(Debug, Clone)]
pub struct ItemKnn {
    params: KnnParams,
    /// Row j: j's neighbours and similarities.
    neighbours: Csr,
    /// With `latest`: each user's latest items (users x items).
    latest: Option<Csr>,
    /// With `recency_half_life`: the trained users' recency-weighted histories (users x items).
    history: Option<Csr>,
}

/// Accumulates sparse dot products of one row against all rows; reset by the touched list.
pub(crate) struct Accumulator {
    pub(crate) sums: Vec<f32>,
    pub(crate) counts: Vec<u32>,
    pub(crate) touched: Vec<u32>,
}

impl Accumulator {
    pub(crate) fn new(n: usize) -> Self {
        Accumulator { sums: vec![0.0; n], counts: vec![0; n], touched: Vec::new() }
    }

    /// Adds `w * row_j(of by_col)` for every (col, w) in the query row.
    #[inline]
    pub(crate) fn add(&mut self, cols: &[u32], vals: &[f32], by_col: &Csr) {
        for (&c, &w) in cols.iter().zip(vals) {
            let (rows, ws) = by_col.row(c as usize);
            for (&r, &v) in rows.iter().zip(ws) {
                let r = r as usize;
                if self.counts[r] == 0 {
                    self.touched.push(r as u32);
                }
                self.counts[r] += 1;
                self.sums[r] += w * v;
            }
        }
    }

    /// Pushes the accumulated rows (shrunk) into a top-k and resets.
    pub(crate) fn drain_top(&mut self, k: usize, shrink: f32, skip: Option<u32>) -> Vec<crate::topk::Scored> {
        self.touched.sort_unstable();
        let mut top = TopK::new(k);
        for &r in &self.touched {
            let (s, n) = (self.sums[r as usize], self.counts[r as usize] as f32);
            if Some(r) != skip {
                top.push(r, if shrink > 0.0 { s * n / (n + shrink) } else { s });
            }
            self.sums[r as usize] = 0.0;
            self.counts[r as usize] = 0;
        }
        self.touched.clear();
        top.into_sorted()
    }
}

impl KnnParams {
    /// Fits item-item CF: weights the item x user matrix, then finds each item's exact top
    /// neighbours by sparse dot products (parallel over items).
    pub fn fit_item_knn(&self, all: &TrainSet, progress: &dyn Progress) -> Result<ItemKnn> {
        self.check()?;
        let recent;
        let train = match self.window_days {
            Some(days) => {
                recent = crate::recent::last_days(all, days);
                &recent
            }
            None => all,
        };
        if train.user_items.nnz() == 0 {
            return Err(ModelError::EmptyTrainingData { model: "item_knn" });
        }
        let item_users = train.user_items.transpose();
        let weighted = Weigher::fit(&item_users, self.weighting, self.bm25_k1, self.bm25_b).weigh_matrix(&item_users);
        let user_items_w = weighted.transpose();
        let n_items = train.n_items();
        let step = progress.step("item-item similarities", n_items as u64);
        let rows: Vec<Vec<crate::topk::Scored>> = (0..n_items)
            .into_par_iter()
            .map_init(
                || Accumulator::new(n_items),
                |acc, i| {
                    let (users, ws) = weighted.row(i);
                    acc.add(users, ws, &user_items_w);
                    if i % 256 == 0 {
                        step.inc(256.min(n_items - i) as u64);
                    }
                    acc.drain_top(self.neighbours, self.shrink, None)
                },
            )
            .collect();
        let (mut r, mut c, mut v) = (Vec::new(), Vec::new(), Vec::new());
        for (i, row) in rows.iter().enumerate() {
            for s in row {
                r.push(i as u32);
                c.push(s.item);
                v.push(s.score);
            }
        }
        let latest = (self.latest > 0).then(|| crate::recent::latest_items(all, self.latest));
        let history =
            (self.recency_half_life > 0.0).then(|| crate::recent::recency_weighted(all, self.recency_half_life));
        let neighbours = Csr::from_triplets(n_items, n_items, &r, &c, &v);
        Ok(ItemKnn { params: self.clone(), neighbours, latest, history })
    }
}

impl ItemKnn {
    /// Adds the query's weighted neighbour rows into `out`, calling `reach` on every item met.
    #[inline]
    fn accumulate(&self, query: &Query<'_>, out: &mut [f32], mut reach: impl FnMut(u32)) {
        self.each_history_item(query, |j, w| {
            let (nb, sims) = self.neighbours.row(j as usize);
            for (&i, &s) in nb.iter().zip(sims) {
                out[i as usize] += w * s;
                reach(i);
            }
        });
    }

    /// Calls `visit(item, weight)` for each history item the query scores from: a trained
    /// user's latest items (weight 1) with `latest`, their recency-weighted history with
    /// `recency_half_life`, else the query's items and weights.
    #[inline]
    fn each_history_item(&self, query: &Query<'_>, mut visit: impl FnMut(u32, f32)) {
        if let Some((items, _)) = query.trained_row(self.latest.as_ref()) {
            items.iter().for_each(|&j| visit(j, 1.0));
        } else {
            let (items, weights) = query.trained_row(self.history.as_ref()).unwrap_or((query.items, query.weights));
            items.iter().zip(weights).for_each(|(&j, &w)| visit(j, w));
        }
    }

    /// Rebuilds a model from a saved neighbour matrix (and latest items with `latest`,
    /// recency-weighted histories with `recency_half_life`).
    pub fn from_neighbours(params: KnnParams, neighbours: Csr, latest: Option<Csr>, history: Option<Csr>) -> Self {
        ItemKnn { params, neighbours, latest, history }
    }

    /// The neighbour matrix (row j: j's neighbours).
    pub fn neighbours(&self) -> &Csr {
        &self.neighbours
    }
}

impl Retriever for ItemKnn {
    fn n_items(&self) -> usize {
        self.neighbours.n_rows()
    }

    crate::kind_and_params!("item_knn");

    fn artifact(&self) -> crate::artifact::Artifact {
        let mut tensors = crate::artifact::Tensors::new();
        crate::artifact::put_csr(&mut tensors, "neighbours", &self.neighbours);
        if let Some(l) = &self.latest {
            crate::artifact::put_csr(&mut tensors, "latest", l);
        }
        if let Some(h) = &self.history {
            crate::artifact::put_csr(&mut tensors, "history", h);
        }
        crate::artifact::Artifact { kind: "item_knn", params: self.params(), tensors }
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        out.fill(0.0);
        self.accumulate(query, out, |_| {});
    }

    /// Each item's score from the neighbour rows of the history items that hold it (rows are
    /// sorted), in the order [`score`](Retriever::score) adds them.
    fn score_items(&self, query: &Query<'_>, items: &[u32], out: &mut [f32]) {
        let n = self.n_items();
        out.iter_mut().zip(items).for_each(|(o, &i)| *o = if (i as usize) < n { 0.0 } else { f32::NEG_INFINITY });
        self.each_history_item(query, |j, w| {
            let (nb, sims) = self.neighbours.row(j as usize);
            for (o, i) in out.iter_mut().zip(items) {
                if let Ok(k) = nb.binary_search(i) {
                    *o += w * sims[k];
                }
            }
        });
    }

    fn recommend(&self, query: &Query<'_>, k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Scored> {
        self.recommend_batch(std::slice::from_ref(query), k, &|_, i| keep(i)).pop().unwrap_or_default()
    }

    /// Only the items a query's neighbours reach are scored (and reset after): the rest score 0
    /// and are offered as the lowest-indexed `k` of them, which is all a top-k can take.
    fn recommend_batch(&self, queries: &[Query<'_>], k: usize, keep: &dyn Fn(usize, u32) -> bool) -> Vec<Vec<Scored>> {
        let n = self.n_items();
        let (mut scores, mut reached, mut touched) = (vec![0f32; n], vec![false; n], Vec::new());
        queries
            .iter()
            .enumerate()
            .map(|(q, query)| {
                self.accumulate(query, &mut scores, |i| {
                    if !std::mem::replace(&mut reached[i as usize], true) {
                        touched.push(i)
                    }
                });
                let mut best = TopK::new(k);
                for &i in &touched {
                    if keep(q, i) {
                        best.push(i, scores[i as usize]);
                    }
                }
                let unreached = (0..n as u32).filter(|&i| !reached[i as usize] && keep(q, i));
                unreached.take(k).for_each(|i| best.push(i, 0.0));
                for i in touched.drain(..) {
                    (scores[i as usize], reached[i as usize]) = (0.0, false);
                }
                best.into_sorted()
            })
            .collect()
    }
}
