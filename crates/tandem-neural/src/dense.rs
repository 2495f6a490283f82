//! Dense building blocks: row-major matrix products, linear layers with their gradients, ReLU,
//! dropout and a dense Adam. The layers keep what backward needs from forward; nothing here
//! allocates per call once the buffers have grown to the batch size.

use rand::Rng;

/// `c = alpha * op(a) op(b) + beta * c` for row-major matrices, op(a) `m x k`, op(b) `k x n`.
/// `ta` / `tb`: `a` is stored `k x m` / `b` is stored `n x k` (transposed). Runs on the GPU
/// chosen with [`crate::device::select`] when there is one and the product is large.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    beta: f32,
    c: &mut [f32],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "gemm: operand shorter than its shape");
    #[cfg(feature = "cuda")]
    if crate::device::cuda::gemm(m, k, n, alpha, a, ta, b, tb, beta, c) {
        return;
    }
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the assert above bounds every access the strides allow; c does not alias a or b
    // (it is borrowed mutably while they are borrowed shared).
    unsafe {
        // gemm's convention: dst := alpha dst + beta lhs rhs, strides (column, row).
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            beta != 0.0,
            a.as_ptr(),
            csa,
            rsa,
            b.as_ptr(),
            csb,
            rsb,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Adam settings for dense parameters (AdamW when `decoupled`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// Weight decay: added to the gradient (Adam) or applied to the weights (AdamW).
    pub weight_decay: f32,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// One parameter vector with its gradient and Adam moments.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Values.
    pub value: Vec<f32>,
    /// Accumulated gradient (zeroed by [`Param::step`]).
    pub grad: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Param {
    /// A parameter holding `value`.
    pub fn new(value: Vec<f32>) -> Self {
        let n = value.len();
        Param { value, grad: vec![0.0; n], m: vec![0.0; n], v: vec![0.0; n], t: 0 }
    }

    /// One Adam step with the accumulated gradient, which is then cleared; `lr_scale` scales
    /// the learning rate (warm-up).
    pub fn step(&mut self, opt: &Adam, lr_scale: f32) {
        self.t += 1;
        let (c1, c2) = (1.0 - BETA1.powi(self.t), 1.0 - BETA2.powi(self.t));
        let lr = opt.lr * lr_scale;
        let coupled = if opt.decoupled { 0.0 } else { opt.weight_decay };
        let shrink = if opt.decoupled { 1.0 - lr * opt.weight_decay } else { 1.0 };
        for (((w, g), m), v) in self.value.iter_mut().zip(&mut self.grad).zip(&mut self.m).zip(&mut self.v) {
            let g1 = *g + coupled * *w;
            *m = BETA1 * *m + (1.0 - BETA1) * g1;
            *v = BETA2 * *v + (1.0 - BETA2) * g1 * g1;
            *w = *w * shrink - lr * (*m / c1) / ((*v / c2).sqrt() + EPS);
            *g = 0.0;
        }
    }
}

/// `y = x W + b`, `W` stored `n_in x n_out`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// Input width.
    pub n_in: usize,
    /// Output width.
    pub n_out: usize,
    /// Weights, `n_in x n_out` row-major.
    pub w: Param,
    /// Bias, `n_out`.
    pub b: Param,
}

impl Linear {
    /// Xavier-uniform weights (Glorot & Bengio), zero bias: PyTorch NCF code's choice.
    pub fn new(n_in: usize, n_out: usize, rng: &mut impl Rng) -> Self {
        let a = (6.0 / (n_in + n_out) as f32).sqrt();
        let w = (0..n_in * n_out).map(|_| rng.random_range(-a..a)).collect();
        Linear { n_in, n_out, w: Param::new(w), b: Param::new(vec![0.0; n_out]) }
    }

    /// A layer from saved weights.
    pub fn from_parts(n_in: usize, n_out: usize, w: Vec<f32>, b: Vec<f32>) -> Self {
        Linear { n_in, n_out, w: Param::new(w), b: Param::new(b) }
    }

    /// `out = x W + b` for `rows` inputs.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        out.clear();
        out.reserve(rows * self.n_out);
        for _ in 0..rows {
            out.extend_from_slice(&self.b.value);
        }
        gemm(rows, self.n_in, self.n_out, 1.0, x, false, &self.w.value, false, 1.0, out);
    }

    /// Accumulates the gradients of `W` and `b` for upstream gradient `dy` at input `x`, and
    /// writes the input gradient into `dx` when given.
    pub fn backward(&mut self, x: &[f32], dy: &[f32], rows: usize, dx: Option<&mut Vec<f32>>) {
        gemm(self.n_in, rows, self.n_out, 1.0, x, true, dy, false, 1.0, &mut self.w.grad);
        for row in dy.chunks_exact(self.n_out) {
            for (g, d) in self.b.grad.iter_mut().zip(row) {
                *g += d;
            }
        }
        if let Some(dx) = dx {
            dx.clear();
            dx.resize(rows * self.n_in, 0.0);
            gemm(rows, self.n_out, self.n_in, 1.0, dy, false, &self.w.value, true, 0.0, dx);
        }
    }

    /// An Adam step on both parameters.
    pub fn step(&mut self, opt: &Adam, lr_scale: f32) {
        self.w.step(opt, lr_scale);
        self.b.step(opt, lr_scale);
    }
}

/// A stack of linear layers, each preceded by dropout and followed by ReLU (RecBole's
/// `MLPLayers` order: dropout -> linear -> activation).
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// The layers, input first.
    pub layers: Vec<Linear>,
    /// Dropout probability on every layer's input while training.
    pub dropout: f32,
    /// Whether the last layer has a ReLU too (NCF) or stays linear (towers before L2 norm).
    pub relu_last: bool,
    /// Per layer: the (dropped-out) input it saw, and its ReLU output.
    inputs: Vec<Vec<f32>>,
    outputs: Vec<Vec<f32>>,
    masks: Vec<Vec<f32>>,
    rows: usize,
}

impl Mlp {
    /// Layers of the given widths (`widths[0]` is the input width).
    pub fn new(widths: &[usize], dropout: f32, rng: &mut impl Rng) -> Self {
        let layers = widths.windows(2).map(|w| Linear::new(w[0], w[1], rng)).collect();
        Mlp::from_layers(layers, dropout)
    }

    /// An MLP from its layers.
    pub fn from_layers(layers: Vec<Linear>, dropout: f32) -> Self {
        let n = layers.len();
        Mlp {
            layers,
            dropout,
            relu_last: true,
            inputs: vec![Vec::new(); n],
            outputs: vec![Vec::new(); n],
            masks: vec![Vec::new(); n],
            rows: 0,
        }
    }

    /// Output width.
    pub fn n_out(&self) -> usize {
        self.layers.last().map_or(0, |l| l.n_out)
    }

    /// Forward pass for `rows` inputs; with `rng` (training) dropout is applied and what backward
    /// needs is kept. Returns the last layer's activations.
    pub fn forward<'a>(&'a mut self, x: &'a [f32], rows: usize, mut rng: Option<&mut dyn rand::RngCore>) -> &'a [f32] {
        self.rows = rows;
        let keep = 1.0 - self.dropout;
        for l in 0..self.layers.len() {
            let mut input = std::mem::take(&mut self.inputs[l]);
            input.clear();
            let source = if l == 0 { x } else { &self.outputs[l - 1] };
            let mask = &mut self.masks[l];
            mask.clear();
            if let (Some(rng), true) = (rng.as_deref_mut(), self.dropout > 0.0) {
                // Inverted dropout: kept units scaled by 1 / keep so inference needs no change.
                dropout_mask(rng.next_u64(), keep, source.len(), mask);
                input.extend(source.iter().zip(mask.iter()).map(|(v, m)| v * m));
            } else {
                input.extend_from_slice(source);
            }
            let mut out = std::mem::take(&mut self.outputs[l]);
            self.layers[l].forward(&input, rows, &mut out);
            if self.relu_at(l) {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            self.inputs[l] = input;
            self.outputs[l] = out;
        }
        self.outputs.last().map_or(x, |o| o.as_slice())
    }

    /// Backward pass from the gradient of the last activations; accumulates the layers'
    /// gradients and returns the gradient of the input.
    pub fn backward(&mut self, dy: &[f32]) -> Vec<f32> {
        let rows = self.rows;
        let mut grad = dy.to_vec();
        let mut dx = Vec::new();
        for l in (0..self.layers.len()).rev() {
            if self.relu_at(l) {
                // Through ReLU: zero where the output was clamped (a select, so it vectorises).
                grad.iter_mut().zip(&self.outputs[l]).for_each(|(g, &o)| *g = if o > 0.0 { *g } else { 0.0 });
            }
            self.layers[l].backward(&self.inputs[l], &grad, rows, Some(&mut dx));
            if !self.masks[l].is_empty() {
                dx.iter_mut().zip(&self.masks[l]).for_each(|(g, m)| *g *= m);
            }
            std::mem::swap(&mut grad, &mut dx);
        }
        grad
    }

    /// An Adam step on every layer.
    pub fn step(&mut self, opt: &Adam, lr_scale: f32) {
        self.layers.iter_mut().for_each(|l| l.step(opt, lr_scale));
    }

    fn relu_at(&self, l: usize) -> bool {
        self.relu_last || l + 1 < self.layers.len()
    }

    /// Inference without dropout or kept state.
    pub fn infer(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut h = x.to_vec();
        let mut next = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            layer.forward(&h, rows, &mut next);
            if self.relu_at(l) {
                next.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            std::mem::swap(&mut h, &mut next);
        }
        h
    }
}

/// Appends `len` inverted-dropout factors (`1 / keep` with probability `keep`, else 0) to
/// `mask`, from SplitMix64 seeded with `seed`, four 16-bit draws per hash: a mask costs one call
/// of the caller's RNG, not one per unit (those calls were 5% of a two-tower step). `keep` is
/// resolved to 1/65536.
pub fn dropout_mask(seed: u64, keep: f32, len: usize, mask: &mut Vec<f32>) {
    let threshold = (keep as f64 * 65_536.0).round() as u64;
    let scale = 1.0 / keep;
    let start = mask.len();
    mask.resize(start + len, 0.0);
    for (k, quad) in mask[start..].chunks_mut(4).enumerate() {
        let mut z = seed.wrapping_add((k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        for (j, m) in quad.iter_mut().enumerate() {
            *m = if (z >> (16 * j)) & 0xffff < threshold { scale } else { 0.0 };
        }
    }
}

/// `e^x` for `x <= 0` (softmax after subtracting the maximum), to 1e-6 relative error on
/// [-10, 0] (5e-6 below, where f32 rounding of the argument dominates): 2^(x log2 e) split
/// into an integer power built from exponent bits and a degree-6 Taylor polynomial on
/// [-0.5, 0.5]. Branch-free, so loops over it vectorise; `f32::exp` was 10% of a
/// two-tower step. Inputs below about -87.3 give exactly 0 (`exp` is subnormal there), -inf too.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    // Rounding by adding 1.5 * 2^23 leaves round(t) in the low mantissa bits: no float -> int
    // conversion (Rust's saturating `as` kept this loop scalar).
    const MAGIC: f32 = 12_582_912.0;
    let t = x.max(-88.0) * std::f32::consts::LOG2_E;
    let shifted = t + MAGIC;
    let f = t - (shifted - MAGIC);
    let i = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5 + f * (0.055_504_11 + f * (0.009_618_13 + f * (0.001_333_36 + f * 0.000_154_03)))));
    f32::from_bits(((i + 127).max(0) as u32) << 23) * p
}

/// Row softmax in place over `row` (cells at -inf get exactly 0); returns the normaliser
/// `sum exp(x - max)` and the max. Eight independent lanes for the max and the sum, so the
/// loops vectorise (a single float accumulator is a serial chain the compiler must keep).
pub fn softmax_row(row: &mut [f32]) -> (f32, f32) {
    let mut m = [f32::NEG_INFINITY; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in m.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    let max = chunks.remainder().iter().chain(&m).copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter_mut().for_each(|v| *v = exp_nonpositive(*v - max));
    let mut acc = [0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let z = chunks.remainder().iter().sum::<f32>() + acc.iter().sum::<f32>();
    let inv = 1.0 / z;
    row.iter_mut().for_each(|v| *v *= inv);
    (z, max)
}

/// Numerically stable `ln σ(x)` pieces for binary cross-entropy on a logit: returns the loss
/// `-(y ln σ(x) + (1 - y) ln(1 - σ(x)))` and its derivative `σ(x) - y`.
#[inline]
pub fn bce_with_logit(x: f32, y: f32) -> (f32, f32) {
    let sig = 1.0 / (1.0 + (-x).exp());
    // softplus(x) - y x, written to avoid overflow for large |x|.
    let loss = x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
    (loss, sig - y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fast_exp_matches_exp() {
        // Near 0, where softmax mass is, to 1e-6; far out the f32 rounding of x log2 e dominates.
        for (lo, tolerance) in [(-10.0f32, 1e-6f32), (-87.0, 5e-6)] {
            let mut worst = 0f32;
            for k in 0..=200_000 {
                let x = lo * k as f32 / 200_000.0;
                let (a, e) = (exp_nonpositive(x), x.exp());
                worst = worst.max((a - e).abs() / e);
            }
            assert!(worst < tolerance, "relative error {worst} on [{lo}, 0]");
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0, "masked cells get exactly 0");
        assert_eq!(exp_nonpositive(-100.0), 0.0);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_mask() {
        let mut row: Vec<f32> = (0..21).map(|k| (k as f32 * 0.37).sin() * 5.0).collect();
        row[4] = f32::NEG_INFINITY;
        let x = row.clone();
        let (z, max) = softmax_row(&mut row);
        let total: f32 = x.iter().map(|v| (v - max).exp()).sum();
        assert!((z - total).abs() < 1e-5 * total);
        assert_eq!(row[4], 0.0);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        for (p, v) in row.iter().zip(&x) {
            assert!((p - (v - max).exp() / total).abs() < 1e-6);
        }
    }

    #[test]
    fn dropout_masks_keep_the_expected_share() {
        let mut mask = Vec::new();
        dropout_mask(7, 0.9, 100_001, &mut mask);
        assert_eq!(mask.len(), 100_001);
        let kept = mask.iter().filter(|&&m| m > 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept {kept}");
        assert!(mask.iter().all(|&m| m == 0.0 || (m - 1.0 / 0.9).abs() < 1e-6));
        let mut again = Vec::new();
        dropout_mask(7, 0.9, 100_001, &mut again);
        assert_eq!(mask, again, "seeded");
    }

    #[test]
    fn gemm_handles_every_transpose() {
        // a = [[1, 2, 3], [4, 5, 6]] (2 x 3), b = [[1, 0], [0, 1], [1, 1]] (3 x 2)
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut c = [0.0; 4];
        gemm(2, 3, 2, 1.0, &a, false, &b, false, 0.0, &mut c);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        let at = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]; // a stored 3 x 2
        let bt = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]; // b stored 2 x 3
        let mut c2 = [1.0; 4];
        gemm(2, 3, 2, 1.0, &at, true, &bt, true, 1.0, &mut c2);
        assert_eq!(c2, [5.0, 6.0, 11.0, 12.0]);
    }

    /// Backward against central finite differences of a scalar loss (sum of outputs times fixed
    /// weights), for the weights and the input.
    #[test]
    fn mlp_gradients_match_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut mlp = Mlp::new(&[5, 4, 3], 0.0, &mut rng);
        let rows = 3;
        let x: Vec<f32> = (0..rows * 5).map(|i| ((i as f32) * 0.7).sin()).collect();
        let coef: Vec<f32> = (0..rows * 3).map(|i| ((i as f32) * 1.3).cos()).collect();
        let loss = |m: &mut Mlp, x: &[f32]| -> f64 {
            m.forward(x, rows, None).iter().zip(&coef).map(|(a, b)| (a * b) as f64).sum()
        };
        mlp.forward(&x, rows, None);
        let dx = mlp.backward(&coef);
        let eps = 1e-2;
        for k in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[k] += eps;
            xm[k] -= eps;
            let num = (loss(&mut mlp.clone(), &xp) - loss(&mut mlp.clone(), &xm)) / (2.0 * eps as f64);
            assert!((num - dx[k] as f64).abs() < 1e-2, "dx[{k}]: {num} vs {}", dx[k]);
        }
        for k in 0..mlp.layers[0].w.value.len() {
            let mut mp = mlp.clone();
            mp.layers[0].w.value[k] += eps;
            let mut mm = mlp.clone();
            mm.layers[0].w.value[k] -= eps;
            let num = (loss(&mut mp, &x) - loss(&mut mm, &x)) / (2.0 * eps as f64);
            let got = mlp.layers[0].w.grad[k] as f64;
            assert!((num - got).abs() < 1e-2, "dW0[{k}]: {num} vs {got}");
        }
    }

    #[test]
    fn bce_matches_its_definition() {
        for (x, y) in [(-30.0f32, 0.0f32), (-1.0, 1.0), (0.0, 1.0), (2.0, 0.0), (40.0, 1.0)] {
            let (loss, g) = bce_with_logit(x, y);
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            let want = -(y as f64 * s.ln().max(-100.0) + (1.0 - y as f64) * (1.0 - s).ln().max(-100.0));
            assert!((loss as f64 - want).abs() < 1e-4, "{x} {y}: {loss} vs {want}");
            assert!((g as f64 - (s - y as f64)).abs() < 1e-6);
        }
    }

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut p = Param::new(vec![3.0, -2.0]);
        let opt = Adam { lr: 0.1, weight_decay: 0.0, decoupled: false };
        for _ in 0..300 {
            p.grad = p.value.iter().map(|w| 2.0 * w).collect();
            p.step(&opt, 1.0);
        }
        assert!(p.value.iter().all(|w| w.abs() < 0.05), "{:?}", p.value);
    }
}
