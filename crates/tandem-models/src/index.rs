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

use crate::{top_k, Factors, Scored};

/// Which index serves candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    /// Every item scored (exact).
    Exact,
    /// Inverted file: k-means lists, the best-matching share of them scanned (approximate).
    Ivf,
}

/// An index over item vectors.
pub struct ItemIndex(Inner);

enum Inner {
    /// Exact scan.
    Exact(Factors),
    /// Inverted file.
    Ivf(Box<Ivf>),
}

impl ItemIndex {
    /// Builds `kind` over `items` (rows = item indices); an IVF query scans `probe_share` of
    /// its lists (0 < share <= 1).
    pub fn build(kind: IndexKind, items: &Factors, probe_share: f64) -> ItemIndex {
        match kind {
            IndexKind::Exact => ItemIndex(Inner::Exact(items.clone())),
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
        match &self.0 {
            Inner::Exact(items) => {
                let mut scores = vec![0f32; items.rows()];
                items.scores(query, &mut scores);
                top_k(&scores, k, keep)
            }
            Inner::Ivf(ivf) => ivf.top_k(query, k, keep),
        }
    }
}

/// A model whose trained users are answered from an index over its item vectors: what a
/// submission with `index: ivf` ranks every customer with. Queries without a trained vector,
/// and every call but `recommend`, go to the model itself. The index ranks by `user · item`,
/// the score of ALS and the two-tower (MF's biases are left out).
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
        let users = self.model.embeddings().map(|e| e.users);
        match (users, query.trained) {
            (Some(users), Some(u)) if (u as usize) < users.rows() => self.index.top_k(users.row(u as usize), k, keep),
            _ => self.model.recommend(query, k, keep),
        }
    }
}

/// An inverted file: k-means (trained on a sample of 64 items per list) splits the items into
/// about √n lists; a query scans the `probe` lists whose centroids have the largest inner
/// product with it and scores their items exactly.
pub struct Ivf {
    /// Centroids (`lists x d`).
    centroids: Vec<f32>,
    /// Items of list `l`: `members[offsets[l]..offsets[l + 1]]`.
    offsets: Vec<usize>,
    members: Vec<u32>,
    /// The members' vectors in list order, so a list is scanned from contiguous memory.
    vectors: Vec<f32>,
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
        let vectors = members.iter().flat_map(|&i| items.row(i as usize).iter().copied()).collect();
        Ivf { centroids, offsets, members, vectors, probe }
    }

    /// The best `k` kept items of the probed lists, or of all lists when those hold fewer
    /// than `k` (then the answer is exact).
    fn top_k(&self, query: &[f32], k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Scored> {
        let d = query.len();
        let mut by_score: Vec<(f32, usize)> =
            self.centroids.chunks_exact(d).enumerate().map(|(l, c)| (crate::dot(query, c), l)).collect();
        by_score.select_nth_unstable_by(self.probe - 1, |x, y| y.0.total_cmp(&x.0));
        // `keep` (a search of the user's history, often) is asked only of items the list would
        // take: most scanned items score below its threshold.
        let scan = |lists: &mut dyn Iterator<Item = usize>| {
            let mut top = crate::TopK::new(k);
            for l in lists {
                let (a, b) = (self.offsets[l], self.offsets[l + 1]);
                for (&i, v) in self.members[a..b].iter().zip(self.vectors[a * d..b * d].chunks_exact(d)) {
                    let s = crate::dot(query, v);
                    if top.admits(s) && keep(i) {
                        top.push(i, s);
                    }
                }
            }
            top.into_sorted()
        };
        // Fewer than k kept items in the probed lists: every list is scanned.
        let top = scan(&mut by_score[..self.probe].iter().map(|x| x.1));
        if top.len() >= k {
            return top;
        }
        scan(&mut (0..self.offsets.len() - 1))
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
            let keep = |i: u32| i % 7 != 0;
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
        for u in 0..t.n_users() as u32 {
            let q = Query::from_row(&t.user_items, u);
            let keep = |i: u32| q.items.binary_search(&i).is_err();
            let (a, b) = (exact.recommend(&q, 3, &keep), als.recommend(&q, 3, &keep));
            // The index sums its products in another order: equal scores up to rounding (the
            // checkerboard ties items exactly, so their order may differ).
            for (x, y) in a.iter().zip(&b) {
                assert!((x.score - y.score).abs() <= 1e-5 * y.score.abs().max(1.0), "user {u}: {a:?} vs {b:?}");
            }
        }
        let popular = crate::PopularityParams::default().fit(&t).unwrap();
        assert!(Indexed::new(Box::new(popular), IndexKind::Ivf, 0.5).is_err(), "no vectors, no index");
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
