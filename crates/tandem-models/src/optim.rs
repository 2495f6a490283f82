//! Sparse row optimisers over shared parameter tables.
//!
//! Tables store `f32` values as `AtomicU32` bit patterns with `Relaxed` ordering, which
//! compiles to plain loads and stores on x86-64: Hogwild training (Niu et al. 2011) without
//! undefined behaviour. Only the rows an example touches are read and updated; Adam keeps a
//! per-row step count for its bias correction (lazy Adam, as PyTorch's SparseAdam).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Which optimiser updates the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Plain SGD.
    Sgd,
    /// Adagrad (the default): per-parameter learning rates from accumulated squared gradients.
    #[default]
    Adagrad,
    /// Adam with per-row bias correction.
    Adam,
}

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimizer {
    /// The rule.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub lr: f32,
    /// L2 weight decay added to the gradient (`g + wd * w`).
    pub weight_decay: f32,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// A `rows x dim` table of parameters with its optimiser state.
#[derive(Debug)]
pub struct ParamTable {
    dim: usize,
    values: Vec<AtomicU32>,
    state1: Vec<AtomicU32>,
    state2: Vec<AtomicU32>,
    steps: Vec<AtomicU32>,
}

fn atomics(v: impl IntoIterator<Item = f32>) -> Vec<AtomicU32> {
    v.into_iter().map(|x| AtomicU32::new(x.to_bits())).collect()
}

impl ParamTable {
    /// A table holding `values` (`rows * dim` of them) for `kind`.
    pub fn new(values: &[f32], dim: usize, kind: OptimizerKind) -> Self {
        let n = values.len();
        let rows = n / dim.max(1);
        let (s1, s2, steps) = match kind {
            OptimizerKind::Sgd => (0, 0, 0),
            OptimizerKind::Adagrad => (n, 0, 0),
            OptimizerKind::Adam => (n, n, rows),
        };
        ParamTable {
            dim,
            values: atomics(values.iter().copied()),
            state1: atomics(std::iter::repeat_n(0.0, s1)),
            state2: atomics(std::iter::repeat_n(0.0, s2)),
            steps: (0..steps).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Reads row `r` into `out`.
    #[inline]
    pub fn read(&self, r: usize, out: &mut [f32]) {
        let base = r * self.dim;
        for (k, o) in out.iter_mut().enumerate() {
            *o = f32::from_bits(self.values[base + k].load(Relaxed));
        }
    }

    /// Value `k` of row `r`.
    #[inline]
    pub fn get(&self, r: usize, k: usize) -> f32 {
        f32::from_bits(self.values[r * self.dim + k].load(Relaxed))
    }

    /// Applies gradient `grad` to row `r`.
    #[inline]
    pub fn update(&self, r: usize, grad: &[f32], opt: &Optimizer) {
        let base = r * self.dim;
        let t = if opt.kind == OptimizerKind::Adam { self.steps[r].fetch_add(1, Relaxed) + 1 } else { 0 };
        let (c1, c2) = (1.0 - BETA1.powi(t as i32), 1.0 - BETA2.powi(t as i32));
        for (k, &g0) in grad.iter().enumerate() {
            let i = base + k;
            let w = f32::from_bits(self.values[i].load(Relaxed));
            let g = g0 + opt.weight_decay * w;
            let step = match opt.kind {
                OptimizerKind::Sgd => opt.lr * g,
                OptimizerKind::Adagrad => {
                    let acc = f32::from_bits(self.state1[i].load(Relaxed)) + g * g;
                    self.state1[i].store(acc.to_bits(), Relaxed);
                    opt.lr * g / (acc.sqrt() + 1e-10)
                }
                OptimizerKind::Adam => {
                    let m = BETA1 * f32::from_bits(self.state1[i].load(Relaxed)) + (1.0 - BETA1) * g;
                    let v = BETA2 * f32::from_bits(self.state2[i].load(Relaxed)) + (1.0 - BETA2) * g * g;
                    self.state1[i].store(m.to_bits(), Relaxed);
                    self.state2[i].store(v.to_bits(), Relaxed);
                    opt.lr * (m / c1) / ((v / c2).sqrt() + EPS)
                }
            };
            self.values[i].store((w - step).to_bits(), Relaxed);
        }
    }

    /// A plain copy of the values.
    pub fn snapshot(&self) -> Vec<f32> {
        self.values.iter().map(|v| f32::from_bits(v.load(Relaxed))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_steps_downhill() {
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adagrad, OptimizerKind::Adam] {
            let t = ParamTable::new(&[1.0, -1.0], 2, kind);
            let opt = Optimizer { kind, lr: 0.1, weight_decay: 0.0 };
            // Minimise w^2: gradient 2w.
            for _ in 0..50 {
                let mut w = [0.0; 2];
                t.read(0, &mut w);
                t.update(0, &[2.0 * w[0], 2.0 * w[1]], &opt);
            }
            let w = t.snapshot();
            assert!(w[0].abs() < 0.5 && w[1].abs() < 0.5, "{kind:?}: {w:?}");
        }
        // SGD exactly: w - lr * (g + wd w).
        let t = ParamTable::new(&[1.0], 1, OptimizerKind::Sgd);
        t.update(0, &[0.5], &Optimizer { kind: OptimizerKind::Sgd, lr: 0.1, weight_decay: 0.2 });
        assert!((t.get(0, 0) - (1.0 - 0.1 * (0.5 + 0.2))).abs() < 1e-7);
    }
}
