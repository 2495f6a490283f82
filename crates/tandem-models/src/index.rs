//! Candidate retrieval over a model's item vectors, for models that score by `user · item`:
//! an exact index (every item's dot product through the SIMD kernels, then the shared top-k)
//! and an approximate one, an inverted file (IVF): k-means lists, of which a query scans those
//! whose centroids score highest with it.
//!
//! Why IVF and not HNSW: `instant-distance` 0.6 (HNSW, pure Rust) over the same ALS vectors,
//! with maximum inner product reduced to nearest neighbour by the usual extra coordinate,
//! recalled 0.83 of the exact top 100 at 20k items while slower than the exact scan (0.31 vs
//! 0.27 ms), and 0.69 at 100k items; IVF recalls 0.95 at a fifth of the exact scan's time
//! (`bash bench/index.sh`). The server uses them for single models, a two-stage pipeline for
//! its retrievers (`TwoStage::use_index` in tandem-rank).

use crate::panels::ItemPanels;
use crate::{Factors, Scored, TopK};

/// Which index serves candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    /// Every item scored (exact).
    Exact,
    /// Inverted file: k-means lists, the best-matching share of them scanned (approximate).
    Ivf,
}

/// An index over item vectors. Both kinds score through the blocked kernel of
/// [`ItemPanels`], so a score has the same bits in a batch of one or of many.
pub struct ItemIndex(Inner);

enum Inner {
    /// Exact scan.
    Exact(ItemPanels),
    /// Inverted file.
    Ivf(Box<Ivf>),
}

impl ItemIndex {
    /// Builds `kind` over `items` (rows = item indices); an IVF query scans `probe_share` of
    /// its lists (0 < share <= 1).
    pub fn build(kind: IndexKind, items: &Factors, probe_share: f64) -> ItemIndex {
        match kind {
            IndexKind::Exact => ItemIndex(Inner::Exact(ItemPanels::pack(items))),
            IndexKind::Ivf => ItemIndex(Inner::Ivf(Box::new(Ivf::build(items, probe_share)))),
        }
    }

    /// The kind.
    pub fn kind(&self) -> IndexKind {
        match self.0 {
            Inner::Exact(_) => IndexKind::Exact,
            Inner::Ivf(_) => IndexKind::Ivf,
        }
    }

    /// The `k` items of largest `query · item` that `keep` accepts, best first (ties by
    /// index). IVF scans every list when its probed ones hold fewer than `k` such items.
    pub fn top_k(&self, query: &[f32], k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Scored> {
        self.top_k_batch(query, k, &|_, i| keep(i)).pop().unwrap_or_default()
    }

    /// [`ItemIndex::top_k`] for each row of `queries` (`keep(row, item)`), the batch scored
    /// together: what ranking every customer through the index runs.
    pub fn top_k_batch(&self, queries: &[f32], k: usize, keep: &dyn Fn(usize, u32) -> bool) -> Vec<Vec<Scored>> {
        match &self.0 {
            Inner::Exact(panels) => panels.top_k(queries, k, keep),
            Inner::Ivf(ivf) => ivf.top_k_batch(queries, k, keep),
        }
    }
}

/// A model whose trained users are answered from an index over its item vectors: what a
/// submission with `index: ivf` ranks every customer with. Queries without a trained vector,
/// and every call but `recommend` and `recommend_batch`, go to the model itself. The index
/// ranks by `user · item`, the score of ALS and the two-tower (MF's biases are left out).
pub struct Indexed {
    model: Box<dyn crate::Retriever>,
    index: ItemIndex,
}

impl Indexed {
    /// Indexes `model`'s item vectors; `Err(model)` when it has none.
    pub fn new(
        model: Box<dyn crate::Retriever>,
        kind: IndexKind,
        probe_share: f64,
    ) -> Result<Indexed, Box<dyn crate::Retriever>> {
        let Some(index) = model.embeddings().map(|e| ItemIndex::build(kind, e.items, probe_share)) else {
            return Err(model);
        };
        Ok(Indexed { model, index })
    }

    /// The trained user row a query is answered from by the index, if any.
    fn indexed_row(&self, query: &crate::Query<'_>) -> Option<&[f32]> {
        let users = self.model.embeddings()?.users;
        query.trained.filter(|&u| (u as usize) < users.rows()).map(|u| users.row(u as usize))
    }
}

impl crate::Retriever for Indexed {
    fn kind(&self) -> &'static str {
        self.model.kind()
    }
    fn n_items(&self) -> usize {
        self.model.n_items()
    }
    fn artifact(&self) -> crate::artifact::Artifact {
        self.model.artifact()
    }
    fn params(&self) -> serde_json::Value {
        self.model.params()
    }
    fn score(&self, query: &crate::Query<'_>, out: &mut [f32]) {
        self.model.score(query, out)
    }
    fn score_items(&self, query: &crate::Query<'_>, items: &[u32], out: &mut [f32]) {
        self.model.score_items(query, items, out)
    }
    fn embeddings(&self) -> Option<crate::Embeddings<'_>> {
        self.model.embeddings()
    }
    fn recommend(&self, query: &crate::Query<'_>, k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Scored> {
        self.recommend_batch(std::slice::from_ref(query), k, &|_, i| keep(i)).pop().unwrap_or_default()
    }
    fn recommend_batch(
        &self,
        queries: &[crate::Query<'_>],
        k: usize,
        keep: &dyn Fn(usize, u32) -> bool,
    ) -> Vec<Vec<Scored>> {
        // Trained users through the index in one batch, the others through the model.
        let (mut indexed, mut rows, mut other) = (Vec::new(), Vec::new(), Vec::new());
        for (q, query) in queries.iter().enumerate() {
            match self.indexed_row(query) {
                Some(row) => {
                    indexed.push(q);
                    rows.extend_from_slice(row);
                }
                None => other.push(q),
            }
        }
        let mut lists = vec![Vec::new(); queries.len()];
        for (&q, list) in indexed.iter().zip(self.index.top_k_batch(&rows, k, &|r, i| keep(indexed[r], i))) {
            lists[q] = list;
        }
        if !other.is_empty() {
            let rest: Vec<crate::Query<'_>> = other.iter().map(|&q| queries[q]).collect();
            for (&q, list) in other.iter().zip(self.model.recommend_batch(&rest, k, &|r, i| keep(other[r], i))) {
                lists[q] = list;
            }
        }
        lists
    }
}

/// An inverted file: k-means (trained on a sample of 64 items per list) splits the items into
/// about √n lists; a query scans the `probe` lists of largest `q · c + |q| r` (centroid `c`,
/// `r` the largest distance of a member from it: no member can score above that) and scores
/// their items exactly. Ranking lists by the centroid's product alone misses the long vectors
/// of popular items, which sit far from the centroid of whatever list they fall in: on ALS
/// vectors of the H&M-size log it kept 0.88 of the exact top 12 at a tenth of the lists, the
/// bound 0.99. A batch of queries is scanned list by list
/// (each list's items packed as panels, every query probing it in one blocked pass), so the
/// list stays in cache while the queries go by.
pub struct Ivf {
    /// Centroids, packed (one "item" per list).
    centroids: ItemPanels,
    /// Per list: the largest distance of a member from its centroid.
    radii: Vec<f32>,
    /// Items of list `l`: `members[offsets[l]..offsets[l + 1]]`.
    offsets: Vec<usize>,
    members: Vec<u32>,
    /// Each list's vectors, packed in `members` order.
    lists: Vec<ItemPanels>,
    probe: usize,
}

/// Share of the lists a query scans by default (recall@100 0.95 on ALS vectors of 20k items).
pub const IVF_PROBE_SHARE: f64 = 0.25;

fn squared_distance(x: &[f32], c: &[f32]) -> f32 {
    x.iter().zip(c).map(|(p, q)| (p - q) * (p - q)).sum()
}

impl Ivf {
    fn build(items: &Factors, probe_share: f64) -> Ivf {
        use rand::seq::index::sample;
        use rand::SeedableRng;
        use rayon::prelude::*;
        let (n, d) = (items.rows(), items.dim());
        let lists = ((n as f64).sqrt().round() as usize).clamp(1, n.max(1));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        let train: Vec<usize> = sample(&mut rng, n, (lists * 64).min(n)).into_vec();
        let mut centroids: Vec<f32> =
            sample(&mut rng, train.len(), lists).iter().flat_map(|k| items.row(train[k]).to_vec()).collect();
        let nearest = |x: &[f32], c: &[f32]| -> usize {
            let mut best = (f32::INFINITY, 0);
            for (l, cl) in c.chunks_exact(d).enumerate() {
                let dist = squared_distance(x, cl);
                if dist < best.0 {
                    best = (dist, l);
                }
            }
            best.1
        };
        for _ in 0..10 {
            let assign: Vec<usize> = train.par_iter().map(|&i| nearest(items.row(i), &centroids)).collect();
            let mut sums = vec![0f64; lists * d];
            let mut counts = vec![0usize; lists];
            for (&i, &l) in train.iter().zip(&assign) {
                counts[l] += 1;
                for (s, &v) in sums[l * d..l * d + d].iter_mut().zip(items.row(i)) {
                    *s += v as f64;
                }
            }
            for l in 0..lists {
                // An empty list keeps its centroid.
                if counts[l] > 0 {
                    for (c, s) in centroids[l * d..l * d + d].iter_mut().zip(&sums[l * d..l * d + d]) {
                        *c = (*s / counts[l] as f64) as f32;
                    }
                }
            }
        }
        let assign: Vec<usize> = (0..n).into_par_iter().map(|i| nearest(items.row(i), &centroids)).collect();
        let mut offsets = vec![0usize; lists + 1];
        for &l in &assign {
            offsets[l + 1] += 1;
        }
        for l in 0..lists {
            offsets[l + 1] += offsets[l];
        }
        let mut next = offsets.clone();
        let mut members = vec![0u32; n];
        for (i, &l) in assign.iter().enumerate() {
            members[next[l]] = i as u32;
            next[l] += 1;
        }
        let probe = ((lists as f64 * probe_share).ceil() as usize).clamp(1, lists);
        let packed = (0..lists)
            .map(|l| {
                let rows = &members[offsets[l]..offsets[l + 1]];
                let data = rows.iter().flat_map(|&i| items.row(i as usize).iter().copied()).collect();
                ItemPanels::pack(&Factors::from_vec(rows.len(), d, data))
            })
            .collect();
        let radii = (0..lists)
            .map(|l| {
                let c = &centroids[l * d..(l + 1) * d];
                let far =
                    members[offsets[l]..offsets[l + 1]].iter().map(|&i| squared_distance(items.row(i as usize), c));
                far.fold(0f32, f32::max).sqrt()
            })
            .collect();
        let centroids = ItemPanels::pack(&Factors::from_vec(lists, d, centroids));
        Ivf { centroids, radii, offsets, members, lists: packed, probe }
    }

    /// For each row of `queries`, the best `k` kept items of its probed lists, or of all lists
    /// when those hold fewer than `k` (then the answer is exact).
    fn top_k_batch(&self, queries: &[f32], k: usize, keep: &dyn Fn(usize, u32) -> bool) -> Vec<Vec<Scored>> {
        let d = self.centroids.dim().max(1);
        let (n_queries, n_lists) = (queries.len() / d, self.lists.len());
        let mut by_list = vec![0f32; n_queries * n_lists];
        self.centroids.scores(queries, &mut by_list);
        for (q, scores) in by_list.chunks_exact_mut(n_lists.max(1)).enumerate() {
            let norm = crate::dot(&queries[q * d..(q + 1) * d], &queries[q * d..(q + 1) * d]).sqrt();
            scores.iter_mut().zip(&self.radii).for_each(|(s, &r)| *s += norm * r);
        }
        // Each query's probed lists (best bounds, ties by list), then who probes each.
        let mut probed = vec![0u32; n_queries * self.probe];
        let mut order: Vec<u32> = (0..n_lists as u32).collect();
        for (q, scores) in by_list.chunks_exact(n_lists.max(1)).enumerate() {
            let rank = |a: &u32, b: &u32| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b));
            order.select_nth_unstable_by(self.probe - 1, rank);
            probed[q * self.probe..(q + 1) * self.probe].copy_from_slice(&order[..self.probe]);
        }
        let mut probing: Vec<Vec<usize>> = vec![Vec::new(); n_lists];
        for (q, lists) in probed.chunks_exact(self.probe).enumerate() {
            lists.iter().for_each(|&l| probing[l as usize].push(q));
        }
        let mut best: Vec<TopK> = (0..n_queries).map(|_| TopK::new(k)).collect();
        let mut rows = Vec::new();
        for (l, who) in probing.iter().enumerate().filter(|(_, who)| !who.is_empty()) {
            rows.clear();
            who.iter().for_each(|&q| rows.extend_from_slice(&queries[q * d..(q + 1) * d]));
            self.lists[l].offer(&rows, who, self.members(l), &mut best, keep);
        }
        // Fewer than k kept items in the probed lists: the other lists are scanned too.
        let short: Vec<usize> = (0..n_queries).filter(|&q| best[q].len() < k).collect();
        for q in short {
            let seen = &probed[q * self.probe..(q + 1) * self.probe];
            for l in (0..n_lists).filter(|&l| !seen.contains(&(l as u32))) {
                self.lists[l].offer(&queries[q * d..(q + 1) * d], &[q], self.members(l), &mut best, keep);
            }
        }
        best.into_iter().map(TopK::into_sorted).collect()
    }

    fn members(&self, l: usize) -> &[u32] {
        &self.members[self.offsets[l]..self.offsets[l + 1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_items(n: usize, d: usize) -> Factors {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        Factors::from_vec(n, d, (0..n * d).map(|_| rng.random::<f32>() - 0.5).collect())
    }

    #[test]
    fn exact_matches_a_full_sort_and_ivf_recalls_most_of_it() {
        let items = random_items(2000, 16);
        let exact = ItemIndex::build(IndexKind::Exact, &items, IVF_PROBE_SHARE);
        let ivf = ItemIndex::build(IndexKind::Ivf, &items, IVF_PROBE_SHARE);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let (mut hits, mut total) = (0, 0);
        for _ in 0..50 {
            let q: Vec<f32> = (0..16).map(|_| rng.random::<f32>() - 0.5).collect();
            let keep = |i: u32| !i.is_multiple_of(7);
            let want = exact.top_k(&q, 100, &keep);
            let mut sorted: Vec<(u32, f32)> =
                (0..2000u32).filter(|&i| keep(i)).map(|i| (i, crate::dot(&q, items.row(i as usize)))).collect();
            sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(
                want.iter().map(|s| s.item).collect::<Vec<_>>(),
                sorted[..100].iter().map(|s| s.0).collect::<Vec<_>>()
            );
            let got = ivf.top_k(&q, 100, &keep);
            assert_eq!(got.len(), 100);
            assert!(got.iter().all(|s| keep(s.item)));
            hits += got.iter().filter(|s| want.iter().any(|w| w.item == s.item)).count();
            total += 100;
        }
        let recall = hits as f64 / total as f64;
        // Uniform random vectors have no clusters: the hard case.
        assert!(recall > 0.6, "IVF recall@100 {recall}");
        let all = ItemIndex::build(IndexKind::Ivf, &items, 1.0);
        let q = vec![0.2; 16];
        assert_eq!(all.top_k(&q, 50, &|_| true), exact.top_k(&q, 50, &|_| true), "every list scanned: exact");
    }

    #[test]
    fn an_indexed_model_answers_trained_users_from_the_index() {
        use crate::{AlsParams, Query, Retriever};
        let t = crate::testing::checkerboard();
        let als = AlsParams { factors: 4, ..Default::default() }.fit(&t, &tandem_data::NoProgress).unwrap();
        let exact = Indexed::new(Box::new(als.clone()), IndexKind::Exact, 1.0).ok().unwrap();
        // Trained users and a history-only query (answered by the model) in one batch; the
        // index scores through the model's own kernel, so the lists are the model's.
        let mut queries: Vec<Query<'_>> = (0..t.n_users() as u32).map(|u| Query::from_row(&t.user_items, u)).collect();
        queries.push(Query { trained: None, items: &[0, 2], weights: &[1.0, 1.0] });
        let keep = |q: usize, i: u32| queries[q].items.binary_search(&i).is_err();
        let lists = exact.recommend_batch(&queries, 3, &keep);
        for (q, query) in queries.iter().enumerate() {
            assert_eq!(lists[q], als.recommend(query, 3, &|i| keep(q, i)), "query {q}");
            assert_eq!(lists[q], exact.recommend(query, 3, &|i| keep(q, i)), "query {q} alone");
        }
        let popular = crate::PopularityParams::default().fit(&t).unwrap();
        assert!(Indexed::new(Box::new(popular), IndexKind::Ivf, 0.5).is_err(), "no vectors, no index");
    }

    /// A batch answers each query as it is answered alone (the kernel's bits do not depend on
    /// the batch), and each query's own exclusions apply, for the exact index and IVF.
    #[test]
    fn batches_answer_each_query_as_alone() {
        let items = random_items(1500, 24);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let queries: Vec<f32> = (0..37 * 24).map(|_| rng.random::<f32>() - 0.5).collect();
        let keep = |q: usize, i: u32| !(i as usize + q).is_multiple_of(5);
        for kind in [IndexKind::Exact, IndexKind::Ivf] {
            let index = ItemIndex::build(kind, &items, 0.2);
            let batch = index.top_k_batch(&queries, 20, &keep);
            assert_eq!(batch.len(), 37);
            for (q, list) in batch.iter().enumerate() {
                let alone = index.top_k(&queries[q * 24..(q + 1) * 24], 20, &|i| keep(q, i));
                assert_eq!(list, &alone, "{kind:?} query {q}");
                assert!(list.len() == 20 && list.iter().all(|s| keep(q, s.item)));
            }
        }
    }

    #[test]
    fn ivf_falls_back_to_exact_when_exclusions_eat_its_results() {
        let items = random_items(500, 8);
        let ivf = ItemIndex::build(IndexKind::Ivf, &items, 0.1);
        let exact = ItemIndex::build(IndexKind::Exact, &items, 0.1);
        let q = vec![0.3; 8];
        let keep = |i: u32| i >= 450;
        assert_eq!(ivf.top_k(&q, 40, &keep), exact.top_k(&q, 40, &keep));
    }
}
