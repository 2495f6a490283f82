//! Candidate retrieval over a model's item vectors: an exact index (every item's dot product,
//! through the SIMD kernels, then the shared top-k) and an approximate one (HNSW, from
//! `instant-distance`), for models that score by `user · item`.
//!
//! HNSW searches by Euclidean distance; maximum inner product becomes nearest neighbour by the
//! usual reduction (Bachrach et al. 2014): every item gets an extra coordinate
//! `sqrt(M² - |y|²)` (M the largest item norm) and the query a 0 there, so
//! `|q - y'|² = |q|² + M² - 2 q·y` is smallest where `q·y` is largest.

use instant_distance::{Builder, HnswMap, Point, Search};
use tandem_models::{top_k, Factors, Scored};

/// Which index serves candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    /// Every item scored (exact).
    Exact,
    /// HNSW graph search (approximate).
    Hnsw,
}

/// Results the HNSW search returns at most (its `ef`); requests for more (after exclusions) go
/// to the exact scan.
pub const HNSW_EF: usize = 256;

/// A vector with the MIPS coordinate appended.
#[derive(Clone, Debug)]
struct Augmented(Vec<f32>);

impl Point for Augmented {
    fn distance(&self, other: &Self) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| (a - b) * (a - b)).sum()
    }
}

/// An index over item vectors.
pub struct ItemIndex(Inner);

enum Inner {
    /// Exact scan.
    Exact(Factors),
    /// HNSW, keeping the vectors for exact scores of what it finds.
    Hnsw {
        /// The item vectors.
        items: Factors,
        /// The graph over augmented vectors; values are item indices.
        graph: Box<HnswMap<Augmented, u32>>,
    },
}

impl ItemIndex {
    /// Builds `kind` over `items` (rows = item indices).
    pub fn build(kind: IndexKind, items: &Factors) -> ItemIndex {
        match kind {
            IndexKind::Exact => ItemIndex(Inner::Exact(items.clone())),
            IndexKind::Hnsw => {
                let norms: Vec<f32> =
                    (0..items.rows()).map(|i| items.row(i).iter().map(|v| v * v).sum::<f32>()).collect();
                let max = norms.iter().copied().fold(0f32, f32::max);
                let points = (0..items.rows())
                    .map(|i| {
                        let mut v = items.row(i).to_vec();
                        v.push((max - norms[i]).max(0.0).sqrt());
                        Augmented(v)
                    })
                    .collect();
                let values = (0..items.rows() as u32).collect();
                let graph = Builder::default().ef_search(HNSW_EF).seed(42).build(points, values);
                ItemIndex(Inner::Hnsw { items: items.clone(), graph: Box::new(graph) })
            }
        }
    }

    /// The kind.
    pub fn kind(&self) -> IndexKind {
        match self.0 {
            Inner::Exact(_) => IndexKind::Exact,
            Inner::Hnsw { .. } => IndexKind::Hnsw,
        }
    }

    fn items(&self) -> &Factors {
        match &self.0 {
            Inner::Exact(items) | Inner::Hnsw { items, .. } => items,
        }
    }

    /// The `k` items of largest `query · item` that `keep` accepts, best first (ties by
    /// index). HNSW falls back to the exact scan when its `ef` results, less the excluded,
    /// are fewer than `k`.
    pub fn top_k(&self, query: &[f32], k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Scored> {
        if let Inner::Hnsw { items, graph } = &self.0 {
            let mut q = query.to_vec();
            q.push(0.0);
            let mut search = Search::default();
            let mut found: Vec<Scored> = graph
                .search(&Augmented(q), &mut search)
                .map(|m| *m.value)
                .filter(|&i| keep(i))
                .map(|i| Scored { item: i, score: tandem_models::dot(query, items.row(i as usize)) })
                .collect();
            if found.len() >= k {
                found.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
                found.truncate(k);
                return found;
            }
        }
        let items = self.items();
        let mut scores = vec![0f32; items.rows()];
        items.scores(query, &mut scores);
        top_k(&scores, k, keep)
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
    fn exact_matches_a_full_sort_and_hnsw_recalls_almost_all_of_it() {
        let items = random_items(2000, 16);
        let (exact, hnsw) = (ItemIndex::build(IndexKind::Exact, &items), ItemIndex::build(IndexKind::Hnsw, &items));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let (mut hits, mut total) = (0, 0);
        for _ in 0..50 {
            let q: Vec<f32> = (0..16).map(|_| rng.random::<f32>() - 0.5).collect();
            let keep = |i: u32| i % 7 != 0;
            let want = exact.top_k(&q, 100, &keep);
            let mut sorted: Vec<(u32, f32)> =
                (0..2000u32).filter(|&i| keep(i)).map(|i| (i, tandem_models::dot(&q, items.row(i as usize)))).collect();
            sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(
                want.iter().map(|s| s.item).collect::<Vec<_>>(),
                sorted[..100].iter().map(|s| s.0).collect::<Vec<_>>()
            );
            let got = hnsw.top_k(&q, 100, &keep);
            assert_eq!(got.len(), 100);
            assert!(got.iter().all(|s| keep(s.item)));
            hits += got.iter().filter(|s| want.iter().any(|w| w.item == s.item)).count();
            total += 100;
        }
        let recall = hits as f64 / total as f64;
        assert!(recall > 0.9, "HNSW recall@100 {recall}");
    }

    #[test]
    fn hnsw_falls_back_to_exact_when_exclusions_eat_its_results() {
        let items = random_items(500, 8);
        let hnsw = ItemIndex::build(IndexKind::Hnsw, &items);
        let exact = ItemIndex::build(IndexKind::Exact, &items);
        let q = vec![0.3; 8];
        let keep = |i: u32| i >= 450;
        assert_eq!(hnsw.top_k(&q, 40, &keep), exact.top_k(&q, 40, &keep));
    }
}
