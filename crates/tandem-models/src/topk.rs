//! Top-k selection shared by every model: highest score first, ties broken by ascending index;
//! and where held-out items rank when ties must never favour them (evaluation's rule).

use std::cmp::Ordering;

/// A scored item index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Dense item index.
    pub item: u32,
    /// Score (higher is better).
    pub score: f32,
}

/// The ranking order: score descending (NaN counts as -inf), then index ascending.
#[inline]
pub fn rank_order(a: &Scored, b: &Scored) -> Ordering {
    let (sa, sb) = (clean(a.score), clean(b.score));
    sb.partial_cmp(&sa).unwrap_or(Ordering::Equal).then(a.item.cmp(&b.item))
}

#[inline]
fn clean(s: f32) -> f32 {
    if s.is_nan() {
        f32::NEG_INFINITY
    } else {
        s
    }
}

/// Collects the best `k` of a stream, in any index order. Keeps a buffer of `2k`; when it
/// fills, a selection sets a threshold and later items below it exit early (the approach of
/// tantivy's `TopNComputer`); items equal to it are kept for the final selection, which breaks
/// ties by index, so the order of pushes does not matter.
pub struct TopK {
    k: usize,
    buf: Vec<Scored>,
    threshold: Option<f32>,
}

impl TopK {
    /// A collector of the best `k`.
    pub fn new(k: usize) -> Self {
        // Reserve modestly: k may be far above the number of items pushed.
        TopK { k, buf: Vec::with_capacity(k.saturating_mul(2).clamp(2, 4096)), threshold: None }
    }

    /// Whether an item scoring `score` could still be among the best `k` (what a caller checks
    /// before costlier tests of the item).
    #[inline]
    pub fn admits(&self, score: f32) -> bool {
        self.k > 0 && !self.threshold.is_some_and(|t| clean(score) < t)
    }

    /// Items held (at least the best `k` offered so far, when `k` were offered).
    pub fn len(&self) -> usize {
        self.buf.len().min(self.k)
    }

    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() || self.k == 0
    }

    /// Whether no item scoring at most `bound` can enter any more (the list is full and its
    /// threshold is above `bound`): what lets a scan stop early.
    #[inline]
    pub fn closed_to(&self, bound: f32) -> bool {
        self.threshold.is_some_and(|t| bound < t)
    }

    /// Offers an item.
    #[inline]
    pub fn push(&mut self, item: u32, score: f32) {
        if !self.admits(score) {
            return;
        }
        self.buf.push(Scored { item, score: clean(score) });
        if self.buf.len() == self.k.saturating_mul(2) {
            self.truncate();
        }
    }

    #[inline(never)]
    fn truncate(&mut self) {
        let k = self.k;
        self.buf.select_nth_unstable_by(k - 1, rank_order);
        self.buf.truncate(k);
        self.threshold = Some(self.buf[k - 1].score);
    }

    /// The best `k`, best first.
    pub fn into_sorted(mut self) -> Vec<Scored> {
        self.buf.sort_unstable_by(rank_order);
        self.buf.truncate(self.k);
        self.buf
    }
}

/// The best `k` of `scores` among indices where `keep` is true, best first.
pub fn top_k(scores: &[f32], k: usize, mut keep: impl FnMut(u32) -> bool) -> Vec<Scored> {
    let mut t = TopK::new(k);
    for (i, &s) in scores.iter().enumerate() {
        if keep(i as u32) {
            t.push(i as u32, s);
        }
    }
    t.into_sorted()
}

/// The best `k` among `keep`'s items of `0..n` when only `scored` items (distinct, any order)
/// have a score and every other item scores -inf: what [`top_k`] gives over the dense scores,
/// without writing them. Sources that propose few items (repurchase, same group) rank so.
pub fn top_k_sparse(scored: &[Scored], n: usize, k: usize, keep: impl Fn(u32) -> bool) -> Vec<Scored> {
    if scored.iter().any(|s| s.score.is_nan() || s.score == f32::NEG_INFINITY) {
        // A scored item at -inf (or NaN) ties with the rest: the dense order decides.
        let mut dense = vec![f32::NEG_INFINITY; n];
        scored.iter().for_each(|s| dense[s.item as usize] = s.score);
        return top_k(&dense, k, keep);
    }
    let mut t = TopK::new(k);
    scored.iter().filter(|s| keep(s.item)).for_each(|s| t.push(s.item, s.score));
    let mut best = t.into_sorted();
    if best.len() < k {
        // The rest tie at -inf: lowest indices first.
        let mut listed: Vec<u32> = scored.iter().map(|s| s.item).collect();
        listed.sort_unstable();
        let rest = (0..n as u32).filter(|&i| keep(i) && listed.binary_search(&i).is_err());
        best.extend(rest.take(k - best.len()).map(|item| Scored { item, score: f32::NEG_INFINITY }));
    }
    best
}

/// A source that proposes a few items per query and scores every other item -inf (repurchase,
/// same group): it says what it proposes; [`sparse_scoring!`](crate::sparse_scoring) inside its
/// `impl Retriever` writes `score`, `score_items` and `recommend` from that.
pub trait SparseScorer {
    /// The query's proposed items (distinct, any order) with their scores.
    fn proposed(&self, query: &crate::Query<'_>) -> Vec<Scored>;
}

/// Writes `score`, `score_items` and `recommend` of a [`SparseScorer`] inside its
/// `impl Retriever`: unproposed items score -inf and are never written densely to rank.
#[macro_export]
macro_rules! sparse_scoring {
    () => {
        fn score(&self, query: &$crate::Query<'_>, out: &mut [f32]) {
            use $crate::SparseScorer;
            out.fill(f32::NEG_INFINITY);
            for s in self.proposed(query) {
                out[s.item as usize] = s.score;
            }
        }

        fn score_items(&self, query: &$crate::Query<'_>, items: &[u32], out: &mut [f32]) {
            use $crate::SparseScorer;
            $crate::sparse_scores(&self.proposed(query), items, out);
        }

        fn recommend(&self, query: &$crate::Query<'_>, k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<$crate::Scored> {
            use $crate::SparseScorer;
            $crate::top_k_sparse(&self.proposed(query), self.n_items(), k, keep)
        }
    };
}

/// `out[j]` = the score of `items[j]` among `scored` (distinct items), -inf for the rest: the
/// `score_items` of sources that propose few items.
pub fn sparse_scores(scored: &[Scored], items: &[u32], out: &mut [f32]) {
    let mut sorted = scored.to_vec();
    sorted.sort_unstable_by_key(|s| s.item);
    for (o, i) in out.iter_mut().zip(items) {
        *o = sorted.binary_search_by_key(i, |s| s.item).map_or(f32::NEG_INFINITY, |k| sorted[k].score);
    }
}

/// The 1-based positions of the held-out items `truth` (sorted) in the ranking of
/// `candidates` (distinct items with their scores) by score, descending, where ties never
/// favour a held-out item: one whose score equals other candidates' ranks after all of them
/// (held-out items tied only with each other take consecutive positions, so their order
/// does not matter). NaN counts as -inf. Held-out items that are not candidates are not ranked.
pub fn held_out_positions<I>(candidates: I, truth: &[u32]) -> Vec<usize>
where
    I: Iterator<Item = (u32, f32)> + Clone,
{
    let clean = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    let held_out = |i: &u32| truth.binary_search(i).is_ok();
    let mut targets: Vec<f32> = candidates.clone().filter(|(i, _)| held_out(i)).map(|(_, s)| clean(s)).collect();
    if targets.is_empty() {
        return Vec::new();
    }
    targets.sort_by(|a, b| b.total_cmp(a));
    // ahead[j]: other candidates scoring at least targets[j] (counted where the run starts).
    let mut ahead = vec![0usize; targets.len() + 1];
    for (i, s) in candidates {
        if !held_out(&i) {
            let s = clean(s);
            ahead[targets.partition_point(|&t| t > s)] += 1;
        }
    }
    let mut before = 0;
    (0..targets.len())
        .map(|j| {
            before += ahead[j];
            1 + j + before
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_top_k_equals_dense_top_k_with_the_rest_at_minus_infinity() {
        let n = 30;
        for scored in [vec![(4, 1.0), (9, 3.0), (2, 1.0)], vec![(5, f32::NEG_INFINITY), (7, 2.0)], vec![]] {
            let scored: Vec<Scored> = scored.into_iter().map(|(item, score)| Scored { item, score }).collect();
            let mut dense = vec![f32::NEG_INFINITY; n];
            scored.iter().for_each(|s| dense[s.item as usize] = s.score);
            for k in [0, 1, 2, 5, 30, 40] {
                let keep = |i: u32| !i.is_multiple_of(3);
                assert_eq!(top_k_sparse(&scored, n, k, keep), top_k(&dense, k, keep), "k = {k}");
            }
        }
    }

    /// Oracle: a full sort.
    fn reference(scores: &[f32], k: usize) -> Vec<Scored> {
        let mut all: Vec<Scored> =
            scores.iter().enumerate().map(|(i, &s)| Scored { item: i as u32, score: clean(s) }).collect();
        all.sort_by(rank_order);
        all.truncate(k);
        all
    }

    #[test]
    fn matches_a_full_sort_with_ties_and_nans() {
        let mut x = 12345u64;
        for n in [0usize, 1, 5, 50, 1000] {
            let scores: Vec<f32> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    match x >> 60 {
                        0 => f32::NAN,
                        v => (v % 7) as f32,
                    }
                })
                .collect();
            for k in [0, 1, 3, 10, 2000] {
                let got = top_k(&scores, k, |_| true);
                let want = reference(&scores, k);
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g.item, w.item, "n={n} k={k}");
                }
            }
        }
    }

    /// Pushes in descending index order (an index's lists scan items out of order) give the
    /// same result: ties at the threshold are kept until the final selection.
    #[test]
    fn push_order_does_not_matter() {
        let scores: Vec<f32> = (0..500).map(|i| (i % 5) as f32).collect();
        for k in [1, 3, 10, 120] {
            let mut t = TopK::new(k);
            for i in (0..scores.len()).rev() {
                t.push(i as u32, scores[i]);
            }
            let got: Vec<u32> = t.into_sorted().iter().map(|s| s.item).collect();
            let want: Vec<u32> = reference(&scores, k).iter().map(|s| s.item).collect();
            assert_eq!(got, want, "k={k}");
        }
    }

    #[test]
    fn huge_k_returns_everything_without_reserving_it() {
        let got = top_k(&[1.0, 3.0, 2.0], usize::MAX, |_| true);
        assert_eq!(got.iter().map(|s| s.item).collect::<Vec<_>>(), vec![1, 2, 0]);
    }

    #[test]
    fn skips_filtered_items() {
        let got = top_k(&[3.0, 2.0, 1.0], 2, |i| i != 0);
        assert_eq!(got.iter().map(|s| s.item).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn held_out_items_rank_after_every_candidate_they_tie_with() {
        let scores = [3.0, 2.0, 2.0, 2.0, 1.0, f32::NAN];
        let cands = || scores.iter().enumerate().map(|(i, &s)| (i as u32, s));
        assert_eq!(held_out_positions(cands(), &[1]), vec![4]);
        assert_eq!(held_out_positions(cands(), &[0, 2]), vec![1, 4]);
        // Tied only with each other after the third candidate: positions 3 and 4.
        assert_eq!(held_out_positions(cands(), &[1, 2]), vec![3, 4]);
        // NaN ties with nothing above it: last.
        assert_eq!(held_out_positions(cands(), &[5]), vec![6]);
        assert_eq!(held_out_positions(cands(), &[9]), Vec::<usize>::new());
        // -inf ties with NaN.
        let low = [f32::NEG_INFINITY, f32::NAN, 0.0];
        assert_eq!(held_out_positions(low.iter().enumerate().map(|(i, &s)| (i as u32, s)), &[0]), vec![3]);
    }
}
