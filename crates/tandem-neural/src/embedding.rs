//! Embedding tables outside any autodiff: rows live in a [`ParamTable`] (row-wise lazy Adam),
//! a batch gathers the rows it needs, and the gradients of repeated rows are summed before one
//! sparse update per row — the cost of a step grows with the batch, never with the table.

use rand::Rng;
use tandem_models::optim::{Optimizer, OptimizerKind, ParamTable};
use tandem_models::Factors;

/// A `rows x dim` embedding table with lazy Adam state.
#[derive(Debug)]
pub struct Embedding {
    table: ParamTable,
    rows: usize,
    dim: usize,
}

impl Embedding {
    /// N(0, std) rows.
    pub fn normal(rows: usize, dim: usize, std: f32, rng: &mut impl Rng) -> Self {
        let f = Factors::normal(rows, dim, std, rng);
        Embedding { table: ParamTable::new(f.as_slice(), dim, OptimizerKind::Adam), rows, dim }
    }

    /// A table holding `f`'s rows (fresh Adam state).
    pub fn from_factors(f: &Factors) -> Self {
        Embedding { table: ParamTable::new(f.as_slice(), f.dim(), OptimizerKind::Adam), rows: f.rows(), dim: f.dim() }
    }

    /// Row `r` into `out` (length `dim`).
    #[inline]
    pub fn read(&self, r: usize, out: &mut [f32]) {
        self.table.read(r, out);
    }

    /// Width of a row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Appends row `r` to `out`.
    #[inline]
    pub fn gather(&self, r: u32, out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + self.dim, 0.0);
        self.table.read(r as usize, &mut out[start..]);
    }

    /// A plain copy of the table.
    pub fn to_factors(&self) -> Factors {
        Factors::from_vec(self.rows, self.dim, self.table.snapshot())
    }

    /// Applies the summed gradients of `grads` (one Adam step per touched row) and clears them.
    pub fn apply(&self, grads: &mut RowGrads, opt: &Optimizer) {
        debug_assert_eq!(grads.dim, self.dim);
        for (k, &r) in grads.rows.iter().enumerate() {
            self.table.update(r as usize, &grads.grads[k * self.dim..(k + 1) * self.dim], opt);
        }
        grads.clear();
    }
}

/// Gradients of one batch for the rows it touched, summed per row.
#[derive(Debug, Clone)]
pub struct RowGrads {
    dim: usize,
    /// Per table row, its slot in `rows` / `grads` (`NO_SLOT` when untouched): a direct index
    /// rather than a hash map, as this lookup runs for every row of every batch. Grows to the
    /// largest row seen; `clear` resets only the touched entries.
    slot: Vec<u32>,
    rows: Vec<u32>,
    grads: Vec<f32>,
}

const NO_SLOT: u32 = u32::MAX;

impl RowGrads {
    /// Empty gradients for rows of width `dim`.
    pub fn new(dim: usize) -> Self {
        RowGrads { dim, slot: Vec::new(), rows: Vec::new(), grads: Vec::new() }
    }

    /// Adds `scale * g` to row `r`'s gradient.
    pub fn add(&mut self, r: u32, g: &[f32], scale: f32) {
        if self.slot.len() <= r as usize {
            self.slot.resize(r as usize + 1, NO_SLOT);
        }
        let k = match self.slot[r as usize] {
            NO_SLOT => {
                let k = self.rows.len();
                self.slot[r as usize] = k as u32;
                self.rows.push(r);
                self.grads.resize(self.grads.len() + self.dim, 0.0);
                k
            }
            k => k as usize,
        };
        for (acc, v) in self.grads[k * self.dim..(k + 1) * self.dim].iter_mut().zip(g) {
            *acc += scale * v;
        }
    }

    /// Adds `other`'s gradients to these.
    pub fn merge(&mut self, other: &RowGrads) {
        for (k, &r) in other.rows.iter().enumerate() {
            self.add(r, &other.grads[k * other.dim..(k + 1) * other.dim], 1.0);
        }
    }

    /// Rows touched so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was touched.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The summed gradients as a dense `rows x dim` matrix (zeros for untouched rows).
    #[cfg(test)]
    pub fn dense(&self, rows: usize) -> Vec<f32> {
        let mut out = vec![0f32; rows * self.dim];
        for (k, &r) in self.rows.iter().enumerate() {
            out[r as usize * self.dim..(r as usize + 1) * self.dim]
                .copy_from_slice(&self.grads[k * self.dim..(k + 1) * self.dim]);
        }
        out
    }

    fn clear(&mut self) {
        for &r in &self.rows {
            self.slot[r as usize] = NO_SLOT;
        }
        self.rows.clear();
        self.grads.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn repeated_rows_get_one_summed_update() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let e = Embedding::normal(4, 2, 0.0, &mut rng);
        let mut g = RowGrads::new(2);
        g.add(1, &[1.0, 0.0], 1.0);
        g.add(3, &[0.0, 1.0], 1.0);
        g.add(1, &[1.0, 2.0], 0.5);
        assert_eq!(g.len(), 2);
        let opt = Optimizer { kind: OptimizerKind::Adam, lr: 0.1, weight_decay: 0.0 };
        e.apply(&mut g, &opt);
        assert!(g.is_empty());
        let f = e.to_factors();
        // Adam's first step moves each coordinate with a non-zero gradient by lr, against its sign.
        assert_eq!(f.row(0), &[0.0, 0.0]);
        assert!((f.row(1)[0] + 0.1).abs() < 1e-5 && (f.row(1)[1] + 0.1).abs() < 1e-5, "{:?}", f.row(1));
        assert!(f.row(3)[0].abs() < 1e-6 && (f.row(3)[1] + 0.1).abs() < 1e-5);
    }
}
