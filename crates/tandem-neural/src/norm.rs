//! Batch normalisation and the MLP head rankers use: `[linear -> batch norm -> ReLU ->
//! dropout] x n -> linear` (nanoRecSys's ranker and DIN's head), with backward passes.

use rand::Rng;

use crate::dense::{dropout_mask, Adam, Linear, Param};

/// PyTorch's defaults: running estimates move 10% towards each batch's; epsilon 1e-5.
const MOMENTUM: f32 = 0.1;
const EPS: f32 = 1e-5;

/// Batch normalisation of each column over a batch's rows (Ioffe & Szegedy 2015): training
/// normalises with the batch's mean and variance and updates running estimates, inference uses
/// those estimates; then a learned scale `gamma` and shift `beta` per column.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// Columns.
    pub width: usize,
    /// Scale per column (starts at 1).
    pub gamma: Param,
    /// Shift per column (starts at 0).
    pub beta: Param,
    /// Running mean per column, for inference.
    pub running_mean: Vec<f32>,
    /// Running (unbiased) variance per column, for inference.
    pub running_var: Vec<f32>,
    /// The last training batch's normalised input and 1 / std per column.
    xhat: Vec<f32>,
    inv_std: Vec<f32>,
}

impl BatchNorm {
    /// A fresh layer over `width` columns.
    pub fn new(width: usize) -> Self {
        BatchNorm::from_parts(vec![1.0; width], vec![0.0; width], vec![0.0; width], vec![1.0; width])
    }

    /// A layer from saved parameters and running estimates.
    pub fn from_parts(gamma: Vec<f32>, beta: Vec<f32>, running_mean: Vec<f32>, running_var: Vec<f32>) -> Self {
        BatchNorm {
            width: gamma.len(),
            gamma: Param::new(gamma),
            beta: Param::new(beta),
            running_mean,
            running_var,
            xhat: Vec::new(),
            inv_std: Vec::new(),
        }
    }

    /// Training forward over `rows` rows of `x` (in place); keeps what backward needs and moves
    /// the running estimates.
    pub fn forward_train(&mut self, x: &mut [f32], rows: usize) {
        let w = self.width;
        let mut mean = vec![0f32; w];
        for row in x.chunks_exact(w) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= rows as f32);
        let mut var = vec![0f32; w];
        for row in x.chunks_exact(w) {
            var.iter_mut().zip(row).zip(&mean).for_each(|((s, v), m)| *s += (v - m) * (v - m));
        }
        var.iter_mut().for_each(|s| *s /= rows as f32);
        self.inv_std.clear();
        self.inv_std.extend(var.iter().map(|v| 1.0 / (v + EPS).sqrt()));
        let unbiased = rows as f32 / (rows as f32 - 1.0).max(1.0);
        for c in 0..w {
            self.running_mean[c] += MOMENTUM * (mean[c] - self.running_mean[c]);
            self.running_var[c] += MOMENTUM * (var[c] * unbiased - self.running_var[c]);
        }
        self.xhat.clear();
        self.xhat.reserve(x.len());
        for row in x.chunks_exact_mut(w) {
            for c in 0..w {
                let h = (row[c] - mean[c]) * self.inv_std[c];
                self.xhat.push(h);
                row[c] = self.gamma.value[c] * h + self.beta.value[c];
            }
        }
    }

    /// Inference with the running estimates (in place).
    pub fn infer(&self, x: &mut [f32]) {
        for row in x.chunks_exact_mut(self.width) {
            for (c, v) in row.iter_mut().enumerate() {
                let h = (*v - self.running_mean[c]) / (self.running_var[c] + EPS).sqrt();
                *v = self.gamma.value[c] * h + self.beta.value[c];
            }
        }
    }

    /// Backward from `dy` (in place: becomes the input gradient); accumulates the gradients of
    /// `gamma` and `beta`. `dx = inv_std / n (n dxhat - sum dxhat - xhat sum(dxhat xhat))`.
    pub fn backward(&mut self, dy: &mut [f32], rows: usize) {
        let w = self.width;
        let (mut sum_d, mut sum_dx) = (vec![0f32; w], vec![0f32; w]);
        for (row, h) in dy.chunks_exact(w).zip(self.xhat.chunks_exact(w)) {
            for c in 0..w {
                self.gamma.grad[c] += row[c] * h[c];
                self.beta.grad[c] += row[c];
                let d = row[c] * self.gamma.value[c];
                sum_d[c] += d;
                sum_dx[c] += d * h[c];
            }
        }
        let n = rows as f32;
        for (row, h) in dy.chunks_exact_mut(w).zip(self.xhat.chunks_exact(w)) {
            for c in 0..w {
                let d = row[c] * self.gamma.value[c];
                row[c] = self.inv_std[c] / n * (n * d - sum_d[c] - h[c] * sum_dx[c]);
            }
        }
    }

    /// An Adam step on `gamma` and `beta` (no weight decay on them, as is usual).
    pub fn step(&mut self, opt: &Adam) {
        let opt = Adam { weight_decay: 0.0, ..*opt };
        self.gamma.step(&opt, 1.0);
        self.beta.step(&opt, 1.0);
    }
}

/// `[linear -> batch norm -> ReLU -> dropout] x hidden -> linear(1)`: one logit per row.
#[derive(Debug, Clone, PartialEq)]
pub struct NormMlp {
    /// Hidden layers with their batch norms, input first.
    pub hidden: Vec<(Linear, BatchNorm)>,
    /// The output layer (one logit).
    pub out: Linear,
    /// Dropout after every hidden layer while training.
    pub dropout: f32,
    /// Per hidden layer: its input, its post-ReLU output (before dropout) and dropout mask.
    inputs: Vec<Vec<f32>>,
    activations: Vec<Vec<f32>>,
    masks: Vec<Vec<f32>>,
    last_input: Vec<f32>,
    rows: usize,
}

impl NormMlp {
    /// Hidden layers of the given widths over `n_in` inputs.
    pub fn new(n_in: usize, hidden: &[usize], dropout: f32, rng: &mut impl Rng) -> Self {
        let mut layers = Vec::new();
        let mut width = n_in;
        for &h in hidden {
            layers.push((Linear::new(width, h, rng), BatchNorm::new(h)));
            width = h;
        }
        NormMlp::from_parts(layers, Linear::new(width, 1, rng), dropout)
    }

    /// A head from its parts.
    pub fn from_parts(hidden: Vec<(Linear, BatchNorm)>, out: Linear, dropout: f32) -> Self {
        let n = hidden.len();
        NormMlp {
            hidden,
            out,
            dropout,
            inputs: vec![Vec::new(); n],
            activations: vec![Vec::new(); n],
            masks: vec![Vec::new(); n],
            last_input: Vec::new(),
            rows: 0,
        }
    }

    /// Input width.
    pub fn n_in(&self) -> usize {
        self.hidden.first().map_or(self.out.n_in, |(l, _)| l.n_in)
    }

    /// Training forward (batch statistics, dropout from `rng`); returns one logit per row.
    pub fn forward_train(&mut self, x: &[f32], rows: usize, rng: &mut impl Rng) -> Vec<f32> {
        self.rows = rows;
        let keep = 1.0 - self.dropout;
        let mut h = x.to_vec();
        for (l, (linear, bn)) in self.hidden.iter_mut().enumerate() {
            let mut z = Vec::new();
            linear.forward(&h, rows, &mut z);
            bn.forward_train(&mut z, rows);
            z.iter_mut().for_each(|v| *v = v.max(0.0));
            self.inputs[l] = std::mem::replace(&mut h, z.clone());
            self.masks[l].clear();
            if self.dropout > 0.0 {
                dropout_mask(rng.random(), keep, z.len(), &mut self.masks[l]);
                h.iter_mut().zip(&self.masks[l]).for_each(|(v, m)| *v *= m);
            }
            self.activations[l] = z;
        }
        let mut logits = Vec::new();
        self.out.forward(&h, rows, &mut logits);
        self.last_input = h;
        logits
    }

    /// Backward from the logits' gradient; accumulates every gradient, returns the input's.
    pub fn backward(&mut self, dlogits: &[f32]) -> Vec<f32> {
        let rows = self.rows;
        let mut grad = Vec::new();
        self.out.backward(&self.last_input, dlogits, rows, Some(&mut grad));
        for l in (0..self.hidden.len()).rev() {
            if !self.masks[l].is_empty() {
                grad.iter_mut().zip(&self.masks[l]).for_each(|(g, m)| *g *= m);
            }
            grad.iter_mut().zip(&self.activations[l]).for_each(|(g, &a)| *g = if a > 0.0 { *g } else { 0.0 });
            let (linear, bn) = &mut self.hidden[l];
            bn.backward(&mut grad, rows);
            let mut dx = Vec::new();
            linear.backward(&self.inputs[l], &grad, rows, Some(&mut dx));
            grad = dx;
        }
        grad
    }

    /// An Adam step on every layer.
    pub fn step(&mut self, opt: &Adam) {
        for (linear, bn) in &mut self.hidden {
            linear.step(opt, 1.0);
            bn.step(opt);
        }
        self.out.step(opt, 1.0);
    }

    /// Inference (running statistics, no dropout): one logit per row.
    pub fn infer(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut h = x.to_vec();
        let mut z = Vec::new();
        for (linear, bn) in &self.hidden {
            linear.forward(&h, rows, &mut z);
            bn.infer(&mut z);
            z.iter_mut().for_each(|v| *v = v.max(0.0));
            std::mem::swap(&mut h, &mut z);
        }
        let mut logits = Vec::new();
        self.out.forward(&h, rows, &mut logits);
        logits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Backward against central differences of `sum(coef * logits)` in training mode (batch
    /// statistics flow into the gradient), for the input, a hidden weight and batch-norm
    /// parameters.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut head = NormMlp::new(4, &[6, 3], 0.0, &mut rng);
        let rows = 5;
        // Inputs whose pre-ReLU values all stay clear of 0 by more than the step moves them:
        // finite differences across a ReLU kink average two slopes.
        let x: Vec<f32> = (0..rows * 4).map(|i| ((i as f32) * 0.9 + 0.7).sin()).collect();
        let coef: Vec<f32> = (0..rows).map(|i| ((i as f32) * 1.7).cos()).collect();
        let loss = |h: &mut NormMlp, x: &[f32]| -> f64 {
            let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            h.forward_train(x, rows, &mut r).iter().zip(&coef).map(|(a, b)| (a * b) as f64).sum()
        };
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        head.forward_train(&x, rows, &mut r);
        let dx = head.backward(&coef);
        let eps = 1e-3;
        for k in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[k] += eps;
            xm[k] -= eps;
            let num = (loss(&mut head.clone(), &xp) - loss(&mut head.clone(), &xm)) / (2.0 * eps as f64);
            assert!((num - dx[k] as f64).abs() < 5e-3, "dx[{k}]: {num} vs {}", dx[k]);
        }
        let probe = |f: &dyn Fn(&mut NormMlp, f32), got: f32, what: &str| {
            let (mut p, mut m) = (head.clone(), head.clone());
            f(&mut p, eps);
            f(&mut m, -eps);
            let num = (loss(&mut p, &x) - loss(&mut m, &x)) / (2.0 * eps as f64);
            assert!((num - got as f64).abs() < 5e-3, "{what}: {num} vs {got}");
        };
        probe(&|h, e| h.hidden[0].0.w.value[3] += e, head.hidden[0].0.w.grad[3], "W0[3]");
        probe(&|h, e| h.hidden[1].1.gamma.value[1] += e, head.hidden[1].1.gamma.grad[1], "gamma1[1]");
        probe(&|h, e| h.hidden[0].1.beta.value[2] += e, head.hidden[0].1.beta.grad[2], "beta0[2]");
    }

    #[test]
    fn batch_norm_normalises_and_tracks_running_estimates() {
        let mut bn = BatchNorm::new(2);
        let mut x = vec![1.0, 10.0, 3.0, 20.0, 5.0, 30.0];
        bn.forward_train(&mut x, 3);
        // Column means 3 and 20, population std sqrt(8/3) and sqrt(200/3).
        assert!((x[0] + 1.2247).abs() < 1e-3 && x[2].abs() < 1e-6 && (x[4] - 1.2247).abs() < 1e-3, "{x:?}");
        assert!((bn.running_mean[0] - 0.3).abs() < 1e-6 && (bn.running_mean[1] - 2.0).abs() < 1e-6);
        // Unbiased variance 4 and 100 move the running estimates 10% from 1.
        assert!((bn.running_var[0] - 1.3).abs() < 1e-5 && (bn.running_var[1] - 10.9).abs() < 1e-4);
        let mut y = vec![0.3, 2.0];
        bn.infer(&mut y);
        assert!(y[0].abs() < 1e-6 && y[1].abs() < 1e-6, "the running mean maps to beta");
    }
}
