//! MF training: each epoch's examples (with negatives) and their per-example updates, one
//! thread bit-reproducibly or many threads Hogwild; the epochs run in [`crate::fit`].

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tandem_data::sample::{user_rng, NegativeSampler};
use tandem_data::{Csr, Progress};

use super::model::Mf;
use super::params::{Loss, MfParams, NegativeMode};
use crate::error::{ModelError, Result};
#[cfg(target_arch = "x86_64")]
use crate::factors::Avx2;
use crate::factors::{dot, simd, Factors, Kernels, Portable, Simd};
use crate::fit::{self, EpochTrainer, Epochs};
use crate::kind::ModelParams;
use crate::optim::{Grad, Optimizer, OptimizerKind, ParamTable};
use crate::retriever::TrainSet;

/// One training example: user, positive or labelled item, and a negative or label.
#[derive(Debug, Clone, Copy)]
pub(super) enum Example {
    /// BPR triple (user, positive, negative).
    Pair(u32, u32, u32),
    /// BCE pair (user, item, label).
    Point(u32, u32, f32),
}

pub(super) struct Tables {
    users: ParamTable,
    items: ParamTable,
    user_bias: ParamTable,
    item_bias: ParamTable,
    global: ParamTable,
    f: usize,
}

impl Tables {
    fn snapshot(&self, params: &MfParams) -> Mf {
        let (nu, ni) = (self.user_bias.snapshot().len(), self.item_bias.snapshot().len());
        Mf::from_parts(
            params.clone(),
            Factors::from_vec(nu, self.f, self.users.snapshot()),
            Factors::from_vec(ni, self.f, self.items.snapshot()),
            self.user_bias.snapshot(),
            self.item_bias.snapshot(),
            self.global.get(0, 0),
        )
    }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// For x = s_pos - s_neg - margin: the gradient of -log σ(x), -σ(-x), and the loss itself,
/// softplus(-x) = ln(1 + e^-x), from a single exponential and stable for large |x|.
#[inline(always)]
pub(super) fn bpr_grad_loss(x: f32) -> (f32, f32) {
    let e = (-x.abs()).exp();
    if x >= 0.0 {
        (-e / (1.0 + e), e.ln_1p())
    } else {
        (-1.0 / (1.0 + e), -x + e.ln_1p())
    }
}

impl Tables {
    /// Tables holding the given factors (same width) and zero biases, for `kind`'s optimiser.
    pub(super) fn new(users: &Factors, items: &Factors, kind: OptimizerKind) -> Tables {
        let f = users.dim();
        Tables {
            users: ParamTable::new(users.as_slice(), f, kind),
            items: ParamTable::new(items.as_slice(), f, kind),
            user_bias: ParamTable::new(&vec![0.0; users.rows()], 1, kind),
            item_bias: ParamTable::new(&vec![0.0; items.rows()], 1, kind),
            global: ParamTable::new(&[0.0], 1, kind),
            f,
        }
    }
}

/// Called after every epoch with the model as it stands (see [`fit::train`]).
pub type Validate<'a> = fit::Validate<'a, Mf>;

/// One MF fit as the training driver sees it.
struct Run<'a> {
    p: &'a MfParams,
    m: &'a Csr,
    t: Tables,
    opt: Optimizer,
    pool: Option<rayon::ThreadPool>,
    /// Static negatives: the same examples every epoch.
    fixed: Option<Vec<Example>>,
}

impl EpochTrainer for Run<'_> {
    type Unit = Example;
    type Model = Mf;

    fn units(&mut self, epoch: usize) -> Vec<Example> {
        match &self.fixed {
            Some(ex) => ex.clone(),
            None => self.p.examples(self.m, &self.t, epoch as u64),
        }
    }

    fn step(&mut self, batch: &[Example]) -> (f64, f64) {
        let run = || self.p.train_epoch(batch, &self.t, &self.opt);
        let (loss, n) = match &self.pool {
            Some(p) => p.install(run),
            None => run(),
        };
        (loss, n as f64)
    }

    fn snapshot(&self) -> Mf {
        self.t.snapshot(self.p)
    }
}

impl MfParams {
    /// Fits MF on `train` without validation.
    pub fn fit(&self, train: &TrainSet, progress: &dyn Progress) -> Result<Mf> {
        self.fit_inner(train, progress, None)
    }

    /// Fits MF, calling `validate` after every epoch. When it returns scores, the best epoch's
    /// weights are kept (a real copy) and training stops after `patience` epochs without
    /// improvement.
    pub fn fit_with(&self, train: &TrainSet, progress: &dyn Progress, validate: &mut Validate<'_>) -> Result<Mf> {
        self.fit_inner(train, progress, Some(validate))
    }

    /// Without a validator no epoch's weights are copied out: the model is read once at the end.
    fn fit_inner(&self, train: &TrainSet, progress: &dyn Progress, validate: Option<&mut Validate<'_>>) -> Result<Mf> {
        self.check()?;
        let m = &train.user_items;
        if m.nnz() == 0 {
            return Err(ModelError::EmptyTrainingData { model: "mf" });
        }
        let f = self.factors;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let users = Factors::normal(train.n_users(), f, self.init_std, &mut rng);
        let items = Factors::normal(train.n_items(), f, self.init_std, &mut rng);
        let kind = self.optimizer;
        let t = Tables::new(&users, &items, kind);
        let opt = Optimizer { kind, lr: self.learning_rate, weight_decay: self.weight_decay };
        let pool =
            match self.threads {
                0 => None,
                n => Some(rayon::ThreadPoolBuilder::new().num_threads(n).build().map_err(|e| {
                    ModelError::invalid("threads", n, format!("a thread count the system allows ({e})"))
                })?),
            };
        let fixed = match self.negative_mode {
            NegativeMode::Fixed | NegativeMode::Even => Some(self.examples(m, &t, u64::MAX)),
            _ => None,
        };
        const HINT: &str = "lower learning_rate or raise weight_decay";
        // One step is a whole epoch: `train_epoch` splits it into Hogwild chunks itself.
        let plan =
            Epochs { patience: self.patience, hint: HINT, ..Epochs::new("mf", self.epochs, usize::MAX, self.seed) };
        let mut run = Run { p: self, m, t, opt, pool, fixed };
        let model = fit::train(&plan, &mut run, progress, validate)?.model;
        if !model.users.is_finite() || !model.items.is_finite() {
            return Err(ModelError::Diverged { model: "mf", hint: HINT.into() });
        }
        Ok(model)
    }

    /// The examples of one epoch (`epoch == u64::MAX` for static negatives), in user order.
    pub(super) fn examples(&self, m: &Csr, t: &Tables, epoch: u64) -> Vec<Example> {
        let sampler = NegativeSampler::new(m);
        // Users appended to one vector per rayon piece, not one per user: allocations and
        // the final concatenation showed in small-data profiles.
        let parts: Vec<Vec<Example>> = (0..m.n_rows() as u32)
            .into_par_iter()
            .fold(Vec::new, |mut out, u| {
                self.user_examples(m, &sampler, t, epoch, u, &mut out);
                out
            })
            .collect();
        let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for part in parts {
            all.extend_from_slice(&part);
        }
        all
    }

    /// Appends user `u`'s examples of one epoch to `out`.
    fn user_examples(
        &self,
        m: &Csr,
        sampler: &NegativeSampler<'_>,
        t: &Tables,
        epoch: u64,
        u: u32,
        out: &mut Vec<Example>,
    ) {
        let pos = m.row(u as usize).0;
        if pos.is_empty() {
            return;
        }
        let mut rng = user_rng(self.seed, epoch, u);
        let mut negs = Vec::new();
        // BCE with static negatives draws them per user, not per positive.
        if self.loss == Loss::Bce && matches!(self.negative_mode, NegativeMode::Fixed | NegativeMode::Even) {
            let n = if self.negative_mode == NegativeMode::Fixed { self.negatives } else { pos.len() };
            out.extend(pos.iter().map(|&i| Example::Point(u, i, 1.0)));
            sampler.uniform_many(u, n, &mut rng, &mut negs);
            out.extend(negs.iter().map(|&j| Example::Point(u, j, 0.0)));
            return;
        }
        let mut user_vec = Vec::new();
        if self.negative_mode == NegativeMode::Hard {
            user_vec = vec![0f32; t.f];
            t.users.read(u as usize, &mut user_vec);
        }
        for &i in pos {
            negs.clear();
            match self.negative_mode {
                NegativeMode::Uniform | NegativeMode::Fixed => {
                    sampler.uniform_many(u, self.negatives, &mut rng, &mut negs)
                }
                NegativeMode::Even => sampler.uniform_many(u, 1, &mut rng, &mut negs),
                NegativeMode::Hard => self.hard_negatives(sampler, t, u, &user_vec, &mut rng, &mut negs),
            }
            match self.loss {
                Loss::Bpr => out.extend(negs.iter().map(|&j| Example::Pair(u, i, j))),
                Loss::Bce => {
                    out.push(Example::Point(u, i, 1.0));
                    out.extend(negs.iter().map(|&j| Example::Point(u, j, 0.0)));
                }
            }
        }
    }

    /// N random candidates scored by the current model, the best M kept, plus K random others.
    fn hard_negatives(
        &self,
        sampler: &NegativeSampler<'_>,
        t: &Tables,
        u: u32,
        user_vec: &[f32],
        rng: &mut ChaCha8Rng,
        out: &mut Vec<u32>,
    ) {
        let mut cands = Vec::with_capacity(self.hard_candidates);
        sampler.uniform_many(u, self.hard_candidates, rng, &mut cands);
        let mut q = vec![0f32; t.f];
        let mut scored: Vec<(f32, u32)> = cands
            .iter()
            .map(|&c| {
                t.items.read(c as usize, &mut q);
                (t.item_bias.get(c as usize, 0) + dot(user_vec, &q), c)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(scored.iter().take(self.hard_keep).map(|s| s.1));
        let mut tries = 0;
        while out.len() < self.hard_keep.min(cands.len()) + self.hard_random && tries < 20 * self.hard_random + 20 {
            tries += 1;
            match sampler.uniform(u, rng) {
                Some(j) if !cands.contains(&j) => out.push(j),
                Some(_) => {}
                None => break,
            }
        }
    }

    /// Trains on `examples` in order (one thread) or in `batch_size` chunks across the pool
    /// (Hogwild); returns the summed loss of the sampled examples and their count.
    fn train_epoch(&self, examples: &[Example], t: &Tables, opt: &Optimizer) -> (f64, usize) {
        let one_thread = self.threads == 1 || rayon::current_num_threads() == 1;
        let level = simd();
        let work = |chunk: &[Example]| -> (f64, usize) {
            let mut buf = Buffers::new(t.f);
            match level {
                // SAFETY: simd() checked that the CPU has these features.
                #[cfg(target_arch = "x86_64")]
                Simd::Avx512 => unsafe { self.chunk_avx512(chunk, t, opt, &mut buf) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: simd() found AVX2 and FMA on this CPU.
                Simd::Avx2 => unsafe { self.chunk_avx2(chunk, t, opt, &mut buf) },
                _ => self.chunk::<Portable>(chunk, t, opt, &mut buf),
            }
        };
        let add = |a: (f64, usize), b: (f64, usize)| (a.0 + b.0, a.1 + b.1);
        if one_thread {
            examples.chunks(self.batch_size).map(work).fold((0.0, 0), add)
        } else {
            examples.par_chunks(self.batch_size).map(work).reduce(|| (0.0, 0), add)
        }
    }

    /// Trains on one chunk; returns the summed loss of every 8th example and their count.
    #[inline(always)]
    fn chunk<K: Kernels>(&self, chunk: &[Example], t: &Tables, opt: &Optimizer, buf: &mut Buffers) -> (f64, usize) {
        // A plain loop, not an iterator closure: a closure is its own function and would not
        // inherit the target features of the AVX builds below.
        let (mut sum, mut count) = (0.0, 0);
        for (n, &ex) in chunk.iter().enumerate() {
            if let Some(&ahead) = chunk.get(n + PREFETCH_AHEAD) {
                prefetch(ahead, t);
            }
            let want_loss = n % 8 == 0;
            let loss = self.update::<K>(ex, t, opt, buf, want_loss);
            if want_loss {
                sum += loss as f64;
                count += 1;
            }
        }
        (sum, count)
    }

    /// [`Self::chunk`] compiled for AVX2 + FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chunk_avx2(&self, chunk: &[Example], t: &Tables, opt: &Optimizer, buf: &mut Buffers) -> (f64, usize) {
        self.chunk::<Avx2>(chunk, t, opt, buf)
    }

    /// [`Self::chunk`] compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn chunk_avx512(&self, chunk: &[Example], t: &Tables, opt: &Optimizer, buf: &mut Buffers) -> (f64, usize) {
        self.chunk::<Avx2>(chunk, t, opt, buf)
    }

    #[inline(always)]
    /// Applies one example; returns its loss when `want_loss` (else 0).
    fn update<K: Kernels>(&self, ex: Example, t: &Tables, opt: &Optimizer, b: &mut Buffers, want_loss: bool) -> f32 {
        match ex {
            Example::Pair(u, i, j) => {
                let (u, i, j) = (u as usize, i as usize, j as usize);
                let bias = if self.biases { t.item_bias.get(i, 0) - t.item_bias.get(j, 0) } else { 0.0 };
                if opt.kind == OptimizerKind::Sgd {
                    // One fused pass in place over the three rows: no copies through buffers.
                    // Distinct rows (`row_ptr`'s contract): negatives are never the user's items.
                    debug_assert_ne!(i, j, "a BPR negative equal to its positive");
                    let (p, q, r) = (t.users.row_ptr(u), t.items.row_ptr(i), t.items.row_ptr(j));
                    // SAFETY: row_ptr checked that each row's `f` values are in bounds.
                    let x = bias + unsafe { K::dot_diff(p, q, r, t.f) } - self.margin;
                    let (g, loss) = if want_loss { bpr_grad_loss(x) } else { (-sigmoid(-x), 0.0) };
                    // SAFETY: as above.
                    unsafe { K::bpr_sgd(p, q, r, t.f, g, opt.lr, opt.weight_decay) };
                    if self.biases {
                        t.item_bias.update_scalar(i, g, opt);
                        t.item_bias.update_scalar(j, -g, opt);
                    }
                    return loss;
                }
                t.users.read(u, &mut b.p);
                t.items.read(i, &mut b.q);
                t.items.read(j, &mut b.r);
                let x = bias + K::dot(&b.p, &b.q) - K::dot(&b.p, &b.r) - self.margin;
                let (g, loss) = if want_loss { bpr_grad_loss(x) } else { (-sigmoid(-x), 0.0) };
                // Gradients use the values read before any of the three rows changes.
                let Buffers { p, q, r, p0 } = b;
                p0.copy_from_slice(p);
                t.users.update_row(u, p, Grad { a: g, x: q, b: -g, y: r }, opt);
                t.items.update_row(i, q, Grad { a: g, x: p0, b: 0.0, y: p0 }, opt);
                t.items.update_row(j, r, Grad { a: -g, x: p0, b: 0.0, y: p0 }, opt);
                if self.biases {
                    t.item_bias.update_scalar(i, g, opt);
                    t.item_bias.update_scalar(j, -g, opt);
                }
                loss
            }
            Example::Point(u, i, y) => {
                let (u, i) = (u as usize, i as usize);
                t.users.read(u, &mut b.p);
                t.items.read(i, &mut b.q);
                let bias =
                    if self.biases { t.global.get(0, 0) + t.user_bias.get(u, 0) + t.item_bias.get(i, 0) } else { 0.0 };
                let s = bias + K::dot(&b.p, &b.q);
                let p = sigmoid(s);
                // BCE with logs clamped at -100, as PyTorch's BCELoss.
                let loss =
                    if want_loss { -(y * p.ln().max(-100.0) + (1.0 - y) * (1.0 - p).ln().max(-100.0)) } else { 0.0 };
                let g = p - y;
                let Buffers { p, q, p0, .. } = b;
                p0.copy_from_slice(p);
                t.users.update_row(u, p, Grad { a: g, x: q, b: 0.0, y: q }, opt);
                t.items.update_row(i, q, Grad { a: g, x: p0, b: 0.0, y: p0 }, opt);
                if self.biases {
                    t.user_bias.update_scalar(u, g, opt);
                    t.item_bias.update_scalar(i, g, opt);
                    t.global.update_scalar(0, g, opt);
                }
                loss
            }
        }
    }
}

/// Examples ahead whose rows are fetched into cache while the current one updates: shuffled
/// examples touch random rows, and waiting on each row's cache misses dominated an update.
const PREFETCH_AHEAD: usize = 4;

/// Asks the CPU to bring the rows `ex` will read into cache (a hint: no effect on results).
#[inline(always)]
fn prefetch(ex: Example, t: &Tables) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let rows = |table: &crate::optim::ParamTable, r: u32| {
            let p = table.row_ptr(r as usize) as *const i8;
            // One hint per 64-byte line of the row.
            for line in (0..t.f * 4).step_by(64) {
                // SAFETY: prefetching is a hint that never faults; the address is in the row.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line)) };
            }
        };
        match ex {
            Example::Pair(u, i, j) => {
                rows(&t.users, u);
                rows(&t.items, i);
                rows(&t.items, j);
            }
            Example::Point(u, i, _) => {
                rows(&t.users, u);
                rows(&t.items, i);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (ex, t);
}

struct Buffers {
    p: Vec<f32>,
    q: Vec<f32>,
    r: Vec<f32>,
    p0: Vec<f32>,
}

impl Buffers {
    fn new(f: usize) -> Self {
        Buffers { p: vec![0.0; f], q: vec![0.0; f], r: vec![0.0; f], p0: vec![0.0; f] }
    }
}
