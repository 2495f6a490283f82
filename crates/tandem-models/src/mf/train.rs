//! MF training: each epoch's examples (with negatives) and their per-example updates, one
//! thread bit-reproducibly or many threads Hogwild; the epochs run in [`crate::fit`].

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tandem_data::sample::{user_rng, NegativeSampler};
use tandem_data::{Csr, Progress};

use super::model::Mf;
use super::params::{Loss, MfParams, NegativeMode};
use crate::error::{ModelError, Result};
use crate::factors::{dot, simd, Factors, Kernels, Portable, Simd};
#[cfg(target_arch = "x86_64")]
use crate::factors::{Avx2, Avx512};
use crate::fit::{self, EpochTrainer, Epochs};
use crate::kind::ModelParams;
use crate::optim::{Grad, Optimizer, OptimizerKind, ParamTable};
use crate::retriever::TrainSet;

/// One training example: user, positive or labelled item, and a negative or label.
#[derive(Debug, Clone, Copy)]
pub(super) enum Example {
    /// BPR triple (user, positive, negative) and the positive's recency weight in units of
    /// 1/[`WEIGHT_ONE`] (`recency_half_life`; it fills the padding after the tag, so an example
    /// stays 16 bytes).
    Pair(u32, u32, u32, u16),
    /// BCE pair (user, item, label).
    Point(u32, u32, f32),
}

/// A BPR pair's weight of 1 (see [`Example::Pair`]).
pub(super) const WEIGHT_ONE: f32 = u16::MAX as f32;

impl Example {
    /// The example's weight in the loss (1 but for recency-weighted BPR pairs).
    fn weight(&self) -> f32 {
        match *self {
            Example::Pair(.., w) => pair_weight(w),
            Example::Point(..) => 1.0,
        }
    }
}

pub(super) struct Tables {
    users: ParamTable,
    items: ParamTable,
    user_bias: ParamTable,
    item_bias: ParamTable,
    global: ParamTable,
    f: usize,
    /// With `recency_half_life`: each positive's weight, in the pattern of the user x item
    /// matrix trained on.
    recency: Option<Vec<u16>>,
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
    /// With `recency_half_life`: the positives' weights ([`recency_weights`]).
    pub(super) fn set_recency(&mut self, weights: Vec<u16>) {
        self.recency = Some(weights);
    }

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
            recency: None,
        }
    }
}

/// Each positive of `train.user_items` (in its pattern) weighted by `0.5^(age / half_life)`,
/// age in the user's later rows ([`crate::recent::recency_weighted`]; a pair bought again
/// averages its rows), in units of 1/[`WEIGHT_ONE`], rounded.
pub(super) fn recency_weights(train: &TrainSet, half_life: f32) -> Vec<u16> {
    let (m, recent) = (&train.user_items, crate::recent::recency_weighted(train, half_life));
    debug_assert_eq!(m.nnz(), recent.nnz(), "one pattern: both sum the log's pairs");
    let (of, decayed) = (m.data(), recent.data());
    of.iter()
        .zip(decayed)
        .map(|(&w, &d)| if w > 0.0 { ((d / w).clamp(0.0, 1.0) * WEIGHT_ONE).round() as u16 } else { u16::MAX })
        .collect()
}

/// Called after every epoch with the model as it stands (see [`fit::train`]).
pub type Validate<'a> = fit::Validate<'a, Mf>;

/// Users and items dealt at random into `p` blocks each, every epoch (DSGD, Gemulla et al.
/// 2011). The examples of user block a and item block b form stratum (a, b); the `p` strata
/// (a, a + s mod p) of sub-epoch s share no user and no item, so threads train them at once
/// without sharing a row: no Hogwild race, and the same result on any number of threads. A BPR
/// pair's negative comes from its positive's item block, so that the pair stays in one stratum.
/// With `p == 1` there is one stratum and threads share every row (Hogwild).
pub(super) struct Blocks {
    p: usize,
    user: Vec<u32>,
    item: Vec<u32>,
    /// The items of each block.
    pools: Vec<Vec<u32>>,
}

/// Ids dealt to blocks together (see [`Blocks::new`]).
const GROUP: usize = 16;

/// One stratum's examples (see [`Blocks`]), shuffled.
pub(super) struct Stratum {
    user_block: usize,
    item_block: usize,
    examples: Vec<Example>,
}

impl Stratum {
    /// Its examples.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.examples.len()
    }
}

impl Blocks {
    /// `p` blocks of users and of items, dealt by a generator seeded with (seed, epoch).
    pub(super) fn new(p: usize, n_users: usize, n_items: usize, seed: u64, epoch: u64) -> Blocks {
        if p <= 1 {
            return Blocks { p: 1, user: Vec::new(), item: Vec::new(), pools: Vec::new() };
        }
        let mut rng = user_rng(seed ^ 0xB10C_D5CD, epoch, u32::MAX);
        // Groups of 16 consecutive ids (a cache line of biases) dealt round-robin in a random
        // order: equal block sizes, popular ids spread out, and no bias line written by two
        // threads at once (false sharing cost more than the blocks saved).
        let mut deal = |n: usize| {
            let mut groups: Vec<u32> = (0..n.div_ceil(GROUP) as u32).collect();
            groups.shuffle(&mut rng);
            let mut block = vec![0u32; n];
            for (k, &g) in groups.iter().enumerate() {
                let start = g as usize * GROUP;
                block[start..(start + GROUP).min(n)].fill((k % p) as u32);
            }
            block
        };
        let (user, item) = (deal(n_users), deal(n_items));
        let mut pools = vec![Vec::new(); p];
        for (i, &b) in item.iter().enumerate() {
            pools[b as usize].push(i as u32);
        }
        Blocks { p, user, item, pools }
    }

    /// Item `i`'s block.
    #[cfg(test)]
    pub(super) fn item_block(&self, i: u32) -> u32 {
        self.item.get(i as usize).copied().unwrap_or(0)
    }

    /// The items a BPR negative for positive `i` is drawn from (`None`: any item).
    fn pool(&self, i: u32) -> Option<&[u32]> {
        (self.p > 1).then(|| self.pools[self.item[i as usize] as usize].as_slice())
    }

    /// The stratum of `ex`, `user block * p + item block`.
    fn stratum(&self, ex: &Example) -> usize {
        if self.p == 1 {
            return 0;
        }
        let (u, i) = match *ex {
            Example::Pair(u, i, _, _) | Example::Point(u, i, _) => (u, i),
        };
        self.user[u as usize] as usize * self.p + self.item[i as usize] as usize
    }

    /// `examples` sorted into their strata, each shuffled by its own seeded generator.
    pub(super) fn strata(&self, examples: Vec<Example>, seed: u64, epoch: u64) -> Vec<Stratum> {
        let mut strata = self.deal(examples);
        Self::shuffle(&mut strata, seed, epoch);
        strata
    }

    /// One epoch's strata, drawn one user block at a time and dealt to the item blocks as each
    /// is done, so that at most one user block's examples are held twice (the whole epoch's
    /// were, and MF's examples are the largest thing it holds).
    fn epoch(&self, p: &MfParams, m: &Csr, t: &Tables, seed: u64, epoch: u64) -> Vec<Stratum> {
        let mut strata = Vec::with_capacity(self.p * self.p);
        for a in 0..self.p {
            let users: Vec<u32> = if self.p == 1 {
                (0..m.n_rows() as u32).collect()
            } else {
                (0..m.n_rows() as u32).filter(|&u| self.user[u as usize] as usize == a).collect()
            };
            strata
                .extend(self.deal(p.examples_of(m, t, self, epoch, &users)).into_iter().filter(|s| s.user_block == a));
        }
        Self::shuffle(&mut strata, seed, epoch);
        strata
    }

    /// `examples` sorted into the `p * p` strata, in order (with one block: moved, not copied).
    fn deal(&self, examples: Vec<Example>) -> Vec<Stratum> {
        let p = self.p;
        if p == 1 {
            return vec![Stratum { user_block: 0, item_block: 0, examples }];
        }
        let mut strata: Vec<Stratum> =
            (0..p * p).map(|k| Stratum { user_block: k / p, item_block: k % p, examples: Vec::new() }).collect();
        let mut counts = vec![0usize; p * p];
        for ex in &examples {
            counts[self.stratum(ex)] += 1;
        }
        for (s, &n) in strata.iter_mut().zip(&counts) {
            s.examples.reserve_exact(n);
        }
        for ex in examples {
            strata[self.stratum(&ex)].examples.push(ex);
        }
        strata
    }

    /// Shuffles each stratum with its own generator, seeded by (seed, epoch, stratum).
    fn shuffle(strata: &mut [Stratum], seed: u64, epoch: u64) {
        strata.par_iter_mut().for_each(|s| {
            let k = (s.user_block * 1024 + s.item_block) as u32;
            s.examples.shuffle(&mut user_rng(seed ^ 0x5EED_0F57, epoch, k));
        });
    }
}

/// Where one example's negatives come from: any item the user lacks, or those of one block.
struct Draw<'a> {
    sampler: &'a NegativeSampler<'a>,
    pool: Option<&'a [u32]>,
}

impl Draw<'_> {
    fn one(&self, u: u32, rng: &mut ChaCha8Rng) -> Option<u32> {
        match self.pool {
            Some(pool) => self.sampler.uniform_among(u, pool, rng),
            None => self.sampler.uniform(u, rng),
        }
    }

    fn many(&self, u: u32, count: usize, rng: &mut ChaCha8Rng, out: &mut Vec<u32>) {
        for _ in 0..count {
            match self.one(u, rng) {
                Some(j) => out.push(j),
                None => return,
            }
        }
    }
}

/// One MF fit as the training driver sees it.
struct Run<'a> {
    p: &'a MfParams,
    m: &'a Csr,
    t: Tables,
    opt: Optimizer,
    pool: Option<rayon::ThreadPool>,
    /// Blocks per side (see [`Blocks`]).
    blocks: usize,
    /// Static negatives: the same examples (and blocks) every epoch.
    fixed: Option<(Blocks, Vec<Example>)>,
}

impl EpochTrainer for Run<'_> {
    type Unit = Stratum;
    type Model = Mf;

    fn units(&mut self, epoch: usize) -> Vec<Stratum> {
        let (seed, epoch) = (self.p.seed, epoch as u64);
        let (m, t, p, n_blocks) = (self.m, &self.t, self.p, self.blocks);
        let fixed = self.fixed.as_ref();
        let make = move || match fixed {
            Some((blocks, ex)) => blocks.strata(ex.clone(), seed, epoch),
            None => {
                let blocks = Blocks::new(n_blocks, m.n_rows(), m.n_cols(), seed, epoch);
                blocks.epoch(p, m, t, seed, epoch)
            }
        };
        match &self.pool {
            Some(pool) => pool.install(make),
            None => make(),
        }
    }

    fn unit_len(unit: &Stratum) -> usize {
        unit.examples.len()
    }

    fn step(&mut self, strata: &[Stratum]) -> (f64, f64) {
        let run = || self.p.train_strata(strata, &self.t, &self.opt);
        match &self.pool {
            Some(p) => p.install(run),
            None => run(),
        }
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
        let mut t = Tables::new(&users, &items, kind);
        if self.recency_half_life > 0.0 {
            t.set_recency(recency_weights(train, self.recency_half_life));
        }
        let opt = Optimizer { kind, lr: self.learning_rate, weight_decay: self.weight_decay };
        let pool =
            match self.threads {
                0 => None,
                n => Some(rayon::ThreadPoolBuilder::new().num_threads(n).build().map_err(|e| {
                    ModelError::invalid("threads", n, format!("a thread count the system allows ({e})"))
                })?),
            };
        let threads = pool.as_ref().map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
        let blocks = self.blocks_for(train.n_users(), train.n_items(), threads);
        let fixed = match self.negative_mode {
            NegativeMode::Fixed | NegativeMode::Even => {
                let b = Blocks::new(blocks, train.n_users(), train.n_items(), self.seed, u64::MAX);
                let ex = self.examples(m, &t, &b, u64::MAX);
                Some((b, ex))
            }
            _ => None,
        };
        const HINT: &str = "lower learning_rate or raise weight_decay";
        // One step is a whole epoch: `train_strata` schedules its strata itself.
        let plan =
            Epochs { patience: self.patience, hint: HINT, ..Epochs::new("mf", self.epochs, usize::MAX, self.seed) };
        let mut run = Run { p: self, m, t, opt, pool, blocks, fixed };
        let model = fit::train(&plan, &mut run, progress, validate)?.model;
        if !model.users.is_finite() || !model.items.is_finite() {
            return Err(ModelError::Diverged { model: "mf", hint: HINT.into() });
        }
        Ok(model)
    }

    /// Blocks per side for a fit on `threads` threads: `blocks`, or when 0, one on one thread
    /// and twice the threads otherwise; at most one per 64 users and per 64 items, so that
    /// blocks stay large enough to balance the threads and to hold a BPR negative.
    pub(super) fn blocks_for(&self, n_users: usize, n_items: usize, threads: usize) -> usize {
        let want = match self.blocks {
            0 if threads <= 1 => 1,
            0 => 2 * threads,
            b => b,
        };
        want.min(n_users.min(n_items) / 64).max(1)
    }

    /// The examples of one epoch (`epoch == u64::MAX` for static negatives), in user order.
    pub(super) fn examples(&self, m: &Csr, t: &Tables, blocks: &Blocks, epoch: u64) -> Vec<Example> {
        self.examples_of(m, t, blocks, epoch, &(0..m.n_rows() as u32).collect::<Vec<_>>())
    }

    /// The examples of `users` (ascending) in one epoch, in user order.
    fn examples_of(&self, m: &Csr, t: &Tables, blocks: &Blocks, epoch: u64, users: &[u32]) -> Vec<Example> {
        let sampler = NegativeSampler::new(m);
        // Users appended to one vector per rayon piece, not one per user: allocations and
        // the final concatenation showed in small-data profiles.
        let parts: Vec<Vec<Example>> = users
            .par_iter()
            .fold(Vec::new, |mut out, &u| {
                self.user_examples(m, &sampler, t, blocks, epoch, u, &mut out);
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
    #[allow(clippy::too_many_arguments)]
    fn user_examples(
        &self,
        m: &Csr,
        sampler: &NegativeSampler<'_>,
        t: &Tables,
        blocks: &Blocks,
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
        let weights = t.recency.as_deref().map(|w| &w[m.indptr()[u as usize]..m.indptr()[u as usize + 1]]);
        for (k, &i) in pos.iter().enumerate() {
            let w = weights.map_or(u16::MAX, |w| w[k]);
            if w == 0 {
                // Too old to weigh anything: no pairs to train.
                continue;
            }
            negs.clear();
            // A BCE example is one row: only BPR pairs need both items in one block.
            let draw = Draw { sampler, pool: if self.loss == Loss::Bpr { blocks.pool(i) } else { None } };
            match self.negative_mode {
                NegativeMode::Uniform | NegativeMode::Fixed => draw.many(u, self.negatives, &mut rng, &mut negs),
                NegativeMode::Even => draw.many(u, 1, &mut rng, &mut negs),
                NegativeMode::Hard => self.hard_negatives(&draw, t, u, &user_vec, &mut rng, &mut negs),
            }
            match self.loss {
                Loss::Bpr => out.extend(negs.iter().map(|&j| Example::Pair(u, i, j, w))),
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
        draw: &Draw<'_>,
        t: &Tables,
        u: u32,
        user_vec: &[f32],
        rng: &mut ChaCha8Rng,
        out: &mut Vec<u32>,
    ) {
        let mut cands = Vec::with_capacity(self.hard_candidates);
        draw.many(u, self.hard_candidates, rng, &mut cands);
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
            match draw.one(u, rng) {
                Some(j) if !cands.contains(&j) => out.push(j),
                Some(_) => {}
                None => break,
            }
        }
    }

    /// Trains one epoch's strata: with one block, its examples in order on one thread or in
    /// `batch_size` chunks across the pool (Hogwild); with more, sub-epoch by sub-epoch, the
    /// strata of one sub-epoch in parallel, each in order. Returns the summed loss of the
    /// sampled examples and their summed weight.
    fn train_strata(&self, strata: &[Stratum], t: &Tables, opt: &Optimizer) -> (f64, f64) {
        let add = |a: (f64, f64), b: (f64, f64)| (a.0 + b.0, a.1 + b.1);
        let p = (strata.len() as f64).sqrt().round() as usize;
        if p <= 1 {
            let examples = strata.first().map_or(&[][..], |s| &s.examples[..]);
            let run = |chunk: &[Example]| self.run(chunk, t, &t.global, opt);
            return if self.threads == 1 || rayon::current_num_threads() == 1 {
                examples.chunks(self.batch_size).map(run).fold((0.0, 0.0), add)
            } else {
                examples.par_chunks(self.batch_size).map(run).reduce(|| (0.0, 0.0), add)
            };
        }
        // Only BCE with biases touches a row every stratum shares (the global bias): each
        // stratum updates a copy, and the copies' changes are added at the sub-epoch's end.
        let shared_global = self.loss == Loss::Bce && self.biases;
        let mut total = (0.0, 0.0);
        for s in 0..p {
            let mut wave: Vec<&Stratum> =
                strata.iter().filter(|x| (x.item_block + p - x.user_block) % p == s).collect();
            wave.sort_by_key(|x| x.user_block);
            let done: Vec<((f64, f64), Option<ParamTable>)> = wave
                .par_iter()
                .map(|x| {
                    let global = shared_global.then(|| t.global.fork());
                    (self.run(&x.examples, t, global.as_ref().unwrap_or(&t.global), opt), global)
                })
                .collect();
            let mut forks = Vec::new();
            for (r, g) in done {
                total = add(total, r);
                forks.extend(g);
            }
            if !forks.is_empty() {
                t.global.absorb(&forks);
            }
        }
        total
    }

    /// Trains on `examples` in order with the widest kernels this CPU has.
    fn run(&self, examples: &[Example], t: &Tables, global: &ParamTable, opt: &Optimizer) -> (f64, f64) {
        let mut buf = Buffers::new(t.f);
        match simd() {
            // SAFETY: simd() checked that the CPU has these features.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { self.chunk_avx512(examples, t, global, opt, &mut buf) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: simd() found AVX2 and FMA on this CPU.
            Simd::Avx2 => unsafe { self.chunk_avx2(examples, t, global, opt, &mut buf) },
            _ => self.chunk::<Portable>(examples, t, global, opt, &mut buf),
        }
    }

    /// Trains on one chunk; returns the summed (weighted) loss of every 8th example and their
    /// summed weight.
    #[inline(always)]
    fn chunk<K: Kernels>(
        &self,
        chunk: &[Example],
        t: &Tables,
        global: &ParamTable,
        opt: &Optimizer,
        buf: &mut Buffers,
    ) -> (f64, f64) {
        // A plain loop, not an iterator closure: a closure is its own function and would not
        // inherit the target features of the AVX builds below.
        let (mut sum, mut weight) = (0.0, 0.0);
        for (n, &ex) in chunk.iter().enumerate() {
            if let Some(&ahead) = chunk.get(n + PREFETCH_AHEAD) {
                prefetch(ahead, t);
            }
            let want_loss = n % 8 == 0;
            let loss = self.update::<K>(ex, t, global, opt, buf, want_loss);
            if want_loss {
                sum += loss as f64;
                weight += ex.weight() as f64;
            }
        }
        (sum, weight)
    }

    /// [`Self::chunk`] compiled for AVX2 + FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chunk_avx2(
        &self,
        chunk: &[Example],
        t: &Tables,
        global: &ParamTable,
        opt: &Optimizer,
        buf: &mut Buffers,
    ) -> (f64, f64) {
        self.chunk::<Avx2>(chunk, t, global, opt, buf)
    }

    /// [`Self::chunk`] compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn chunk_avx512(
        &self,
        chunk: &[Example],
        t: &Tables,
        global: &ParamTable,
        opt: &Optimizer,
        buf: &mut Buffers,
    ) -> (f64, f64) {
        self.chunk::<Avx512>(chunk, t, global, opt, buf)
    }

    #[inline(always)]
    /// Applies one example; returns its loss when `want_loss` (else 0).
    fn update<K: Kernels>(
        &self,
        ex: Example,
        t: &Tables,
        global: &ParamTable,
        opt: &Optimizer,
        b: &mut Buffers,
        want_loss: bool,
    ) -> f32 {
        match ex {
            Example::Pair(u, i, j, w) => {
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
                    let (g, loss) = weighted(g, loss, w);
                    // SAFETY: as above.
                    unsafe { K::bpr_sgd(p, q, r, t.f, g, opt.lr, opt.weight_decay) };
                    if self.biases {
                        t.item_bias.update_scalar(i, g, opt);
                        t.item_bias.update_scalar(j, -g, opt);
                    }
                    return loss;
                }
                if opt.kind == OptimizerKind::Adagrad {
                    // The same fused pass with the rows' accumulators (the default optimiser).
                    debug_assert_ne!(i, j, "a BPR negative equal to its positive");
                    let rows = [t.users.row_ptr(u), t.items.row_ptr(i), t.items.row_ptr(j)];
                    let acc = [t.users.state_ptr(u), t.items.state_ptr(i), t.items.state_ptr(j)];
                    // SAFETY: row_ptr / state_ptr checked that each row's `f` values are in bounds.
                    let x = bias + unsafe { K::dot_diff(rows[0], rows[1], rows[2], t.f) } - self.margin;
                    let (g, loss) = if want_loss { bpr_grad_loss(x) } else { (-sigmoid(-x), 0.0) };
                    let (g, loss) = weighted(g, loss, w);
                    // SAFETY: as above.
                    unsafe { K::bpr_adagrad(rows, acc, t.f, g, opt.lr, opt.weight_decay) };
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
                let (g, loss) = weighted(g, loss, w);
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
                    if self.biases { global.get(0, 0) + t.user_bias.get(u, 0) + t.item_bias.get(i, 0) } else { 0.0 };
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
                    global.update_scalar(0, g, opt);
                }
                loss
            }
        }
    }
}

/// A BPR pair's stored weight (see [`Example::Pair`]) as a number in [0, 1].
#[inline(always)]
fn pair_weight(w: u16) -> f32 {
    w as f32 / WEIGHT_ONE
}

/// A BPR pair's gradient and loss times its weight (see [`Example::Pair`]): a recency-weighted
/// positive weighs its pairs' loss, so every gradient. Weight 1, the rule without recency,
/// leaves both as they are.
#[inline(always)]
fn weighted(g: f32, loss: f32, w: u16) -> (f32, f32) {
    if w == u16::MAX {
        return (g, loss);
    }
    let w = pair_weight(w);
    (g * w, loss * w)
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
            Example::Pair(u, i, j, _) => {
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
