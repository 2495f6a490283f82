//! A balanced binary tree over the items, shared by the hierarchical softmax and TDM.
//!
//! The tree is implicit: items sit at leaf *positions* `0..n` in an order where similar items
//! are neighbours, and the node at level `l` (root: 0, leaves: `depth`) with index `j` covers the
//! positions `[j << (depth - l), (j + 1) << (depth - l))`. Left subtrees are always full, so each
//! level's non-empty nodes are `0..width(l)` and a position's ancestor is a shift. The order comes
//! from recursive balanced 2-means over item vectors (the usual TDM initialisation from
//! embeddings), or is random; the same tree serves training and retrieval, and is saved with the
//! model.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_models::{Factors, ModelError, Result};

/// Balanced 2-means refinement rounds per split.
const KMEANS_ROUNDS: usize = 5;

/// A balanced binary tree over `n` items (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemTree {
    depth: u32,
    /// Position -> item.
    order: Vec<u32>,
    /// Item -> position.
    position: Vec<u32>,
    /// First compact node id of each level (levels stored one after another).
    offsets: Vec<usize>,
}

impl ItemTree {
    /// The tree for a given leaf order (a permutation of `0..n`).
    pub fn from_order(order: Vec<u32>) -> Result<Self> {
        let n = order.len();
        let mut position = vec![u32::MAX; n];
        for (p, &i) in order.iter().enumerate() {
            match position.get_mut(i as usize) {
                Some(slot) if *slot == u32::MAX => *slot = p as u32,
                _ => {
                    return Err(ModelError::Artifact {
                        path: "item tree".into(),
                        message: format!("leaf order is not a permutation of 0..{n} (item {i})"),
                    })
                }
            }
        }
        let depth = n.max(1).next_power_of_two().trailing_zeros();
        let mut offsets = Vec::with_capacity(depth as usize + 2);
        let mut total = 0;
        for l in 0..=depth {
            offsets.push(total);
            total += n.max(1).div_ceil(1 << (depth - l));
        }
        offsets.push(total);
        Ok(ItemTree { depth, order, position, offsets })
    }

    /// Items in a random order.
    pub fn random(n: usize, seed: u64) -> Self {
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        Self::from_order(order).expect("a shuffle is a permutation")
    }

    /// Items ordered by recursive balanced 2-means over their `vectors` (one row per item):
    /// each split sends the items closest to one centroid left, filling the left subtree.
    pub fn balanced(vectors: &Factors, seed: u64) -> Self {
        let n = vectors.rows();
        let mut order: Vec<u32> = (0..n as u32).collect();
        let cap = n.max(1).next_power_of_two();
        split(vectors, &mut order, cap, seed);
        Self::from_order(order).expect("splitting permutes")
    }

    /// Number of items (leaves).
    pub fn n_items(&self) -> usize {
        self.order.len()
    }

    /// Leaf level (the root is level 0).
    pub fn depth(&self) -> usize {
        self.depth as usize
    }

    /// Non-empty nodes at `level`.
    pub fn width(&self, level: usize) -> usize {
        self.offsets[level + 1] - self.offsets[level]
    }

    /// Non-empty nodes over all levels.
    pub fn n_nodes(&self) -> usize {
        *self.offsets.last().expect("at least the root")
    }

    /// Compact id (`0..n_nodes`) of node `j` at `level`.
    pub fn node_id(&self, level: usize, j: usize) -> usize {
        self.offsets[level] + j
    }

    /// Index within `level` of the ancestor of leaf position `pos`.
    pub fn ancestor(&self, pos: usize, level: usize) -> usize {
        pos >> (self.depth as usize - level)
    }

    /// The leaf positions under node `j` of `level`.
    pub fn leaves(&self, level: usize, j: usize) -> std::ops::Range<usize> {
        let shift = self.depth as usize - level;
        (j << shift).min(self.n_items())..((j + 1) << shift).min(self.n_items())
    }

    /// The non-empty children (indices at `level + 1`) of node `j` at `level`.
    pub fn children(&self, level: usize, j: usize) -> std::ops::Range<usize> {
        let w = self.width(level + 1);
        (2 * j).min(w)..(2 * j + 2).min(w)
    }

    /// The item at leaf position `pos`.
    pub fn item(&self, pos: usize) -> u32 {
        self.order[pos]
    }

    /// The leaf position of `item`.
    pub fn position(&self, item: u32) -> usize {
        self.position[item as usize] as usize
    }

    /// Position -> item, as saved.
    pub fn order(&self) -> &[u32] {
        &self.order
    }
}

/// Orders `items` (to be placed in a subtree of `cap` leaves) so the left subtree's
/// `min(len, cap / 2)` items are one balanced 2-means cluster, recursively.
fn split(vectors: &Factors, items: &mut [u32], cap: usize, seed: u64) {
    if items.len() <= 1 {
        return;
    }
    let half = cap / 2;
    let left = items.len().min(half);
    if left < items.len() {
        two_means(vectors, items, left, seed);
    }
    let (l, r) = items.split_at_mut(left);
    let (sl, sr) = (seed.wrapping_mul(6364136223846793005).wrapping_add(1), seed ^ 0x9e37_79b9_7f4a_7c15);
    if l.len() + r.len() > 4096 {
        rayon::join(|| split(vectors, l, half, sl), || split(vectors, r, half, sr));
    } else {
        split(vectors, l, half, sl);
        split(vectors, r, half, sr);
    }
}

/// Reorders `items` so the first `left` are those nearer centroid a than b (relative to the
/// others), refining the centroids a few rounds from two random items.
fn two_means(vectors: &Factors, items: &mut [u32], left: usize, seed: u64) {
    let d = vectors.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a0 = items[rng.random_range(0..items.len())];
    let mut b0 = items[rng.random_range(0..items.len())];
    if a0 == b0 {
        b0 = items[(items.iter().position(|&i| i == a0).unwrap_or(0) + 1) % items.len()];
    }
    let (mut a, mut b) = (vectors.row(a0 as usize).to_vec(), vectors.row(b0 as usize).to_vec());
    let mut keyed: Vec<(f32, u32)> = Vec::with_capacity(items.len());
    for _ in 0..KMEANS_ROUNDS {
        // |x - a|^2 - |x - b|^2 = 2 x.(b - a) + |a|^2 - |b|^2: sort by x.(b - a).
        let diff: Vec<f32> = b.iter().zip(&a).map(|(p, q)| p - q).collect();
        keyed.clear();
        keyed.extend(items.iter().map(|&i| (tandem_models::dot(vectors.row(i as usize), &diff), i)));
        // Ties by item keep the result deterministic.
        keyed.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        for (slot, &(_, i)) in items.iter_mut().zip(&keyed) {
            *slot = i;
        }
        let mean = |part: &[u32]| {
            let mut m = vec![0f32; d];
            for &i in part {
                tandem_models::axpy(1.0 / part.len() as f32, vectors.row(i as usize), &mut m);
            }
            m
        };
        (a, b) = (mean(&items[..left]), mean(&items[left..]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_ancestors_and_children_agree() {
        for n in [1usize, 2, 3, 7, 8, 9, 100] {
            let t = ItemTree::random(n, 1);
            assert_eq!(t.width(t.depth()), n);
            assert_eq!(t.width(0), 1);
            assert_eq!(t.n_nodes(), (0..=t.depth()).map(|l| t.width(l)).sum::<usize>());
            for l in 0..t.depth() {
                let kids: usize = (0..t.width(l)).map(|j| t.children(l, j).len()).sum();
                assert_eq!(kids, t.width(l + 1), "n {n} level {l}: every node has one parent");
                for j in 0..t.width(l) {
                    let leaves = t.leaves(l, j);
                    assert!(!leaves.is_empty());
                    assert!(leaves.clone().all(|p| t.ancestor(p, l) == j));
                    for c in t.children(l, j) {
                        let cl = t.leaves(l + 1, c);
                        assert!(cl.start >= leaves.start && cl.end <= leaves.end);
                    }
                }
            }
            for i in 0..n as u32 {
                assert_eq!(t.item(t.position(i)), i);
            }
        }
    }

    #[test]
    fn balanced_two_means_separates_clusters_deterministically() {
        // Two well-separated groups of 8: the root's children hold one group each.
        let v: Vec<f32> = (0..16).flat_map(|i| [if i % 2 == 0 { 5.0 } else { -5.0 } + i as f32 * 0.01, 1.0]).collect();
        let f = Factors::from_vec(16, 2, v);
        let t = ItemTree::balanced(&f, 3);
        let left: Vec<u32> = t.leaves(1, 0).map(|p| t.item(p)).collect();
        assert_eq!(left.len(), 8);
        assert!(left.iter().all(|i| i % 2 == left[0] % 2), "{left:?}");
        assert_eq!(t, ItemTree::balanced(&f, 3), "same seed, same tree");
    }

    #[test]
    fn bad_orders_are_refused() {
        assert!(ItemTree::from_order(vec![0, 0]).is_err());
        assert!(ItemTree::from_order(vec![0, 5]).is_err());
    }
}
