//! NCF (He et al., WWW 2017): an MLP over the concatenated user and item embeddings, trained
//! with log loss on each positive and `negatives` uniform negatives resampled every epoch (the
//! NCF regime of SPEC §4). NeuMF adds a GMF branch — the element-wise product of a second pair
//! of embeddings — next to the MLP's last layer before the output unit. No pre-training.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_data::sample::pointwise_epoch;
use tandem_data::Progress;
use tandem_models::artifact::{Artifact, Tensor, TensorReader, Tensors};
use tandem_models::fit::{self, EpochTrainer, Epochs};
use tandem_models::optim::{Optimizer, OptimizerKind};
use tandem_models::{within, Factors, ModelError, Query, Result, Retriever, TrainSet};

use crate::dense::{bce_with_logit, Adam, Linear, Mlp};
use crate::embedding::{Embedding, RowGrads};
use crate::Validate;
use tandem_models::kind::{saved_params, Dim, Fit, ModelParams};

/// NCF / NeuMF hyper-parameters (defaults: the paper's and RecBole's).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NcfParams {
    /// Width of the MLP's user and item embeddings (default 32).
    pub embedding: usize,
    /// MLP widths from its input (`2 * embedding`) to its last layer (default [64, 32, 16, 8]).
    pub layers: Vec<usize>,
    /// NeuMF's GMF embedding width (default 8; unused by plain NCF).
    pub gmf_factors: usize,
    /// Dropout on every MLP layer's input while training (default 0.1).
    pub dropout: f32,
    /// Uniform negatives per positive, resampled every epoch (default 4).
    pub negatives: usize,
    /// Epochs (default 20).
    pub epochs: usize,
    /// Examples per batch (default 256).
    pub batch_size: usize,
    /// Adam learning rate for dense layers and embedding rows (default 0.001).
    pub learning_rate: f32,
    /// L2 weight decay (default 0).
    pub weight_decay: f32,
    /// Standard deviation of the initial embeddings (default 0.01).
    pub init_std: f32,
    /// With validation: stop after this many epochs without improvement; 0 never stops
    /// (default 3).
    pub patience: usize,
    /// Seed of initialisation, negatives, order and dropout (default 42).
    pub seed: u64,
}

impl Default for NcfParams {
    fn default() -> Self {
        NcfParams {
            embedding: 32,
            layers: vec![64, 32, 16, 8],
            gmf_factors: 8,
            dropout: 0.1,
            negatives: 4,
            epochs: 20,
            batch_size: 256,
            learning_rate: 0.001,
            weight_decay: 0.0,
            init_std: 0.01,
            patience: 3,
            seed: 42,
        }
    }
}

impl NcfParams {
    /// Fits plain NCF (`gmf: false`) or NeuMF (`gmf: true`).
    pub fn fit(&self, gmf: bool, train: &TrainSet, progress: &dyn Progress) -> Result<Ncf> {
        self.fit_with(gmf, train, progress, None)
    }

    /// Fits, calling `validate` (when given) after every epoch: the best epoch is kept and
    /// training stops after `patience` epochs without improvement.
    pub fn fit_with(
        &self,
        gmf: bool,
        train: &TrainSet,
        progress: &dyn Progress,
        validate: Option<&mut Validate<'_>>,
    ) -> Result<Ncf> {
        self.check()?;
        let kind = if gmf { "neumf" } else { "ncf" };
        if train.user_items.nnz() == 0 {
            return Err(ModelError::EmptyTrainingData { model: kind });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let (nu, ni, e, gf) = (train.n_users(), train.n_items(), self.embedding, self.gmf_factors);
        let net = Net {
            user_mlp: Embedding::normal(nu, e, self.init_std, &mut rng),
            item_mlp: Embedding::normal(ni, e, self.init_std, &mut rng),
            gmf: gmf.then(|| {
                (Embedding::normal(nu, gf, self.init_std, &mut rng), Embedding::normal(ni, gf, self.init_std, &mut rng))
            }),
            mlp: Mlp::new(&self.layers, self.dropout, &mut rng),
            out: Linear::new(self.layers.last().copied().unwrap_or(1) + if gmf { gf } else { 0 }, 1, &mut rng),
            grads: [RowGrads::new(e), RowGrads::new(e), RowGrads::new(gf), RowGrads::new(gf)],
        };
        let plan = Epochs { patience: self.patience, ..Epochs::new(kind, self.epochs, self.batch_size, self.seed) };
        let mut run = Run { p: self, gmf, m: &train.user_items, net, rng };
        Ok(fit::train_retriever(&plan, &mut run, progress, validate)?.model)
    }
}

/// One NCF fit as the training driver sees it: (user, item, label) examples with negatives
/// resampled every epoch.
struct Run<'a> {
    p: &'a NcfParams,
    gmf: bool,
    m: &'a tandem_data::Csr,
    net: Net,
    rng: ChaCha8Rng,
}

impl EpochTrainer for Run<'_> {
    type Unit = (u32, u32, f32);
    type Model = Ncf;

    fn units(&mut self, epoch: usize) -> Vec<(u32, u32, f32)> {
        pointwise_epoch(self.m, self.p.negatives, self.p.seed, epoch as u64)
    }

    fn step(&mut self, batch: &[(u32, u32, f32)]) -> (f64, f64) {
        (self.net.train_batch(batch, self.p, &mut self.rng), batch.len() as f64)
    }

    fn snapshot(&self) -> Ncf {
        self.net.snapshot(self.p, self.gmf)
    }
}

/// The trainable network: embedding tables outside autodiff, dense layers inside.
struct Net {
    user_mlp: Embedding,
    item_mlp: Embedding,
    gmf: Option<(Embedding, Embedding)>,
    mlp: Mlp,
    out: Linear,
    /// The batch's row gradients of user_mlp, item_mlp and the two GMF tables, kept between
    /// batches so their row index is allocated once.
    grads: [RowGrads; 4],
}

impl Net {
    /// One Adam step on a batch of (user, item, label); returns the summed loss.
    fn train_batch(&mut self, batch: &[(u32, u32, f32)], p: &NcfParams, rng: &mut ChaCha8Rng) -> f64 {
        let rows = batch.len();
        let e = p.embedding;
        let mut x = Vec::with_capacity(rows * 2 * e);
        for &(u, i, _) in batch {
            self.user_mlp.gather(u, &mut x);
            self.item_mlp.gather(i, &mut x);
        }
        let h = self.mlp.forward(&x, rows, Some(rng)).to_vec();
        let hw = self.mlp.n_out();
        // The output layer's input: [GMF product | MLP output] per row.
        let gf = self.gmf.as_ref().map_or(0, |g| g.0.dim());
        let (mut ug, mut ig) = (Vec::new(), Vec::new());
        if let Some((gu, gi)) = &self.gmf {
            for &(u, i, _) in batch {
                gu.gather(u, &mut ug);
                gi.gather(i, &mut ig);
            }
        }
        let zw = gf + hw;
        let mut z = Vec::with_capacity(rows * zw);
        for r in 0..rows {
            z.extend(ug[r * gf..(r + 1) * gf].iter().zip(&ig[r * gf..(r + 1) * gf]).map(|(a, b)| a * b));
            z.extend_from_slice(&h[r * hw..(r + 1) * hw]);
        }
        let mut logits = Vec::new();
        self.out.forward(&z, rows, &mut logits);
        // Mean log loss over the batch, as BCEWithLogitsLoss.
        let mut loss = 0.0;
        let dlogit: Vec<f32> = logits
            .iter()
            .zip(batch)
            .map(|(&s, &(_, _, y))| {
                let (l, g) = bce_with_logit(s, y);
                loss += l as f64;
                g / rows as f32
            })
            .collect();
        let mut dz = Vec::new();
        self.out.backward(&z, &dlogit, rows, Some(&mut dz));
        let dh: Vec<f32> = dz.chunks_exact(zw).flat_map(|r| r[gf..].iter().copied()).collect();
        let dx = self.mlp.backward(&dh);
        let opt = Adam { lr: p.learning_rate, weight_decay: p.weight_decay, decoupled: false };
        self.mlp.step(&opt, 1.0);
        self.out.step(&opt, 1.0);
        let sparse = Optimizer { kind: OptimizerKind::Adam, lr: p.learning_rate, weight_decay: p.weight_decay };
        let [gu_mlp, gi_mlp, gu_gmf, gi_gmf] = &mut self.grads;
        for (r, &(u, i, _)) in batch.iter().enumerate() {
            let row = &dx[r * 2 * e..(r + 1) * 2 * e];
            gu_mlp.add(u, &row[..e], 1.0);
            gi_mlp.add(i, &row[e..], 1.0);
        }
        if self.gmf.is_some() {
            let mut tmp = vec![0f32; gf];
            for (r, &(u, i, _)) in batch.iter().enumerate() {
                let dg = &dz[r * zw..r * zw + gf];
                let (a, b) = (&ug[r * gf..(r + 1) * gf], &ig[r * gf..(r + 1) * gf]);
                tmp.iter_mut().zip(dg).zip(b).for_each(|((t, d), y)| *t = d * y);
                gu_gmf.add(u, &tmp, 1.0);
                tmp.iter_mut().zip(dg).zip(a).for_each(|((t, d), x)| *t = d * x);
                gi_gmf.add(i, &tmp, 1.0);
            }
        }
        // Sequential: on two threads (rayon::join) the hand-off per batch cost more than it saved.
        self.user_mlp.apply(gu_mlp, &sparse);
        self.item_mlp.apply(gi_mlp, &sparse);
        if let Some((gu, gi)) = &self.gmf {
            gu.apply(gu_gmf, &sparse);
            gi.apply(gi_gmf, &sparse);
        }
        loss
    }

    /// The model as it stands (a copy).
    fn snapshot(&self, p: &NcfParams, gmf: bool) -> Ncf {
        let mut mlp = self.mlp.clone();
        mlp.dropout = 0.0;
        Ncf::from_parts(
            p.clone(),
            self.user_mlp.to_factors(),
            self.item_mlp.to_factors(),
            self.gmf.as_ref().filter(|_| gmf).map(|(u, i)| (u.to_factors(), i.to_factors())),
            mlp.layers,
            self.out.clone(),
        )
    }
}

/// A fitted NCF or NeuMF model.
#[derive(Debug, Clone)]
pub struct Ncf {
    params: NcfParams,
    user_mlp: Factors,
    item_mlp: Factors,
    gmf: Option<(Factors, Factors)>,
    layers: Vec<Linear>,
    out: Linear,
    /// Each item's part of the first layer's pre-activation (`item_mlp × W1[item rows]`),
    /// computed once: scoring a user then costs the layers after the first.
    item_first: Vec<f32>,
    /// The mean user embeddings, for queries without a known user.
    mean_user: (Vec<f32>, Vec<f32>),
}

fn mean_row(f: &Factors) -> Vec<f32> {
    let mut m = vec![0f32; f.dim()];
    for r in 0..f.rows() {
        tandem_models::axpy(1.0 / f.rows().max(1) as f32, f.row(r), &mut m);
    }
    m
}

impl Ncf {
    /// A model from its parts (as trained or loaded).
    pub fn from_parts(
        params: NcfParams,
        user_mlp: Factors,
        item_mlp: Factors,
        gmf: Option<(Factors, Factors)>,
        layers: Vec<Linear>,
        out: Linear,
    ) -> Self {
        let e = item_mlp.dim();
        let first = &layers[0];
        let mut item_first = vec![0f32; item_mlp.rows() * first.n_out];
        crate::dense::gemm(
            item_mlp.rows(),
            e,
            first.n_out,
            1.0,
            item_mlp.as_slice(),
            false,
            &first.w.value[e * first.n_out..],
            false,
            0.0,
            &mut item_first,
        );
        let mean_user = (mean_row(&user_mlp), gmf.as_ref().map_or(Vec::new(), |(u, _)| mean_row(u)));
        Ncf { params, user_mlp, item_mlp, gmf, layers, out, item_first, mean_user }
    }

    /// Whether this is NeuMF (with the GMF branch).
    pub fn is_neumf(&self) -> bool {
        self.gmf.is_some()
    }

    /// Rebuilds a saved model; `gmf` says whether it is NeuMF.
    pub fn from_tensors(params: NcfParams, gmf: bool, tensors: &Tensors) -> Result<Ncf> {
        let kind = if gmf { "neumf" } else { "ncf" };
        let r = TensorReader::new(tensors, kind);
        let bad = |m: &str| ModelError::Artifact { path: format!("{kind} model"), message: m.to_string() };
        params.check()?;
        let (user_mlp, item_mlp) = (r.matrix("user_mlp")?, r.matrix("item_mlp")?);
        if user_mlp.dim() != params.embedding || item_mlp.dim() != params.embedding {
            return Err(bad("embedding widths disagree with the parameters"));
        }
        let gmf_tables = if gmf { Some((r.matrix("user_gmf")?, r.matrix("item_gmf")?)) } else { None };
        let mut layers = Vec::new();
        for (k, w) in params.layers.windows(2).enumerate() {
            let (wv, bv) = (r.f32(&format!("mlp.{k}.weight"))?.1, r.f32(&format!("mlp.{k}.bias"))?.1);
            if wv.len() != w[0] * w[1] || bv.len() != w[1] {
                return Err(bad(&format!("mlp.{k} has the wrong shape")));
            }
            layers.push(Linear::from_parts(w[0], w[1], wv, bv));
        }
        let n_in = params.layers.last().copied().unwrap_or(0) + if gmf { params.gmf_factors } else { 0 };
        let (wv, bv) = (r.f32("out.weight")?.1, r.f32("out.bias")?.1);
        if wv.len() != n_in || bv.len() != 1 {
            return Err(bad("out has the wrong shape"));
        }
        if let Some((u, i)) = &gmf_tables {
            if u.dim() != params.gmf_factors || i.dim() != params.gmf_factors || i.rows() != item_mlp.rows() {
                return Err(bad("GMF tables disagree with the parameters"));
            }
        }
        Ok(Ncf::from_parts(params, user_mlp, item_mlp, gmf_tables, layers, Linear::from_parts(n_in, 1, wv, bv)))
    }
}

impl Retriever for Ncf {
    fn kind(&self) -> &'static str {
        if self.is_neumf() {
            "neumf"
        } else {
            "ncf"
        }
    }

    fn n_items(&self) -> usize {
        self.item_mlp.rows()
    }

    tandem_models::kind_and_params!();

    fn artifact(&self) -> Artifact {
        let m = |f: &Factors| Tensor::matrix(f.rows(), f.dim(), f.as_slice().to_vec());
        let mut tensors: Tensors =
            [("user_mlp".to_string(), m(&self.user_mlp)), ("item_mlp".to_string(), m(&self.item_mlp))].into();
        if let Some((u, i)) = &self.gmf {
            tensors.insert("user_gmf".into(), m(u));
            tensors.insert("item_gmf".into(), m(i));
        }
        for (k, l) in self.layers.iter().enumerate() {
            tensors.insert(format!("mlp.{k}.weight"), Tensor::matrix(l.n_in, l.n_out, l.w.value.clone()));
            tensors.insert(format!("mlp.{k}.bias"), Tensor::f32(l.b.value.clone()));
        }
        tensors.insert("out.weight".into(), Tensor::f32(self.out.w.value.clone()));
        tensors.insert("out.bias".into(), Tensor::f32(self.out.b.value.clone()));
        Artifact { kind: self.kind(), params: self.params(), tensors }
    }

    /// Scores every item through the network. A query without a known user scores for the
    /// mean user embedding (NCF has no fold-in for new histories).
    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        let n = self.n_items();
        self.score_rows(query, (0..n).map(Some), &mut out[..n]);
    }

    fn score_items(&self, query: &Query<'_>, items: &[u32], out: &mut [f32]) {
        let n = self.n_items();
        self.score_rows(query, items.iter().map(|&i| ((i as usize) < n).then_some(i as usize)), out);
    }
}

impl Ncf {
    /// Scores the listed item rows (`None`: an unknown item, scored `-inf`) into `out`.
    fn score_rows(&self, query: &Query<'_>, items: impl Iterator<Item = Option<usize>> + Clone, out: &mut [f32]) {
        let known = query.trained.filter(|&u| (u as usize) < self.user_mlp.rows());
        let (u_mlp, u_gmf) = match known {
            Some(u) => (self.user_mlp.row(u as usize), self.gmf.as_ref().map_or(&[][..], |(g, _)| g.row(u as usize))),
            None => (&self.mean_user.0[..], &self.mean_user.1[..]),
        };
        let first = &self.layers[0];
        // The user's part of the first layer, added to every item's precomputed part.
        let mut v = first.b.value.clone();
        crate::dense::gemm(1, u_mlp.len(), first.n_out, 1.0, u_mlp, false, &first.w.value, false, 1.0, &mut v);
        let rows: Vec<usize> = items.clone().flatten().collect();
        let mut h = Vec::with_capacity(rows.len() * first.n_out);
        for &item in &rows {
            let row = &self.item_first[item * first.n_out..(item + 1) * first.n_out];
            h.extend(row.iter().zip(&v).map(|(a, b)| (a + b).max(0.0)));
        }
        let mut next = Vec::new();
        for layer in &self.layers[1..] {
            layer.forward(&h, rows.len(), &mut next);
            next.iter_mut().for_each(|x| *x = x.max(0.0));
            std::mem::swap(&mut h, &mut next);
        }
        let hw = self.layers.last().map_or(0, |l| l.n_out);
        let w = &self.out.w.value;
        let gf = w.len() - hw;
        let mut k = 0;
        for (o, item) in out.iter_mut().zip(items) {
            let Some(item) = item else {
                *o = f32::NEG_INFINITY;
                continue;
            };
            let mut s = self.out.b.value[0] + tandem_models::dot(&h[k * hw..(k + 1) * hw], &w[gf..]);
            k += 1;
            if let Some((_, gi)) = &self.gmf {
                let g = gi.row(item);
                s += u_gmf.iter().zip(g).zip(&w[..gf]).map(|((a, b), c)| a * b * c).sum::<f32>();
            }
            *o = s;
        }
    }
}

impl ModelParams for NcfParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        within("embedding", self.embedding, 1..=1024)?;
        if self.layers.len() < 2
            || self.layers[0] != 2 * self.embedding
            || self.layers.iter().any(|&w| w == 0 || w > 4096)
        {
            return Err(ModelError::invalid(
                "layers",
                &self.layers,
                "at least two widths in 1..=4096, the first = 2 * embedding",
            ));
        }
        within("gmf_factors", self.gmf_factors, 1..=1024)?;
        within("dropout", self.dropout, 0.0..1.0)?;
        within("negatives", self.negatives, 1..=1000)?;
        crate::check_schedule(self.epochs, self.learning_rate)?;
        within("batch_size", self.batch_size, 1..=1_000_000)?;
        within("weight_decay", self.weight_decay, 0.0..)?;
        within("init_std", self.init_std, 0.0..=10.0)?;
        Ok(())
    }

    /// `ncf`, or `neumf` (with the GMF branch).
    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(self.fit_with(fit.kind == "neumf", fit.train, fit.progress, fit.validate.as_deref_mut())?))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(Ncf::from_tensors(saved_params(kind, params)?, kind == "neumf", tensors)?))
    }

    fn space() -> Vec<Dim> {
        vec![
            Dim::int("embedding", 8, 128, true),
            Dim::float("learning_rate", 1e-4, 1e-2, true),
            Dim::float("dropout", 0.0, 0.5, false),
            Dim::int("negatives", 1, 8, false),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::NoProgress;
    use tandem_models::testing::{checkerboard, conformance_with, SGD_LEARNED};

    fn small() -> NcfParams {
        NcfParams {
            embedding: 8,
            layers: vec![16, 8],
            gmf_factors: 4,
            // A slower rate from wider initial weights: at 0.01 from the default 0.01 spread,
            // some example orders leave the MLP's ReLUs dead (2 of 8 seeds measured).
            epochs: 200,
            batch_size: 32,
            learning_rate: 0.003,
            init_std: 0.1,
            dropout: 0.0,
            ..Default::default()
        }
    }

    #[test]
    fn ncf_and_neumf_learn_the_checkerboard_and_round_trip() {
        let t = checkerboard();
        for gmf in [false, true] {
            let m = small().fit(gmf, &t, &NoProgress).unwrap();
            assert_eq!(m.is_neumf(), gmf);
            conformance_with(&m, &t, SGD_LEARNED, &<NcfParams as ModelParams>::load);
        }
    }

    #[test]
    fn seeded_runs_are_identical() {
        let t = checkerboard();
        let p = NcfParams { epochs: 2, ..small() };
        let (a, b) = (p.fit(true, &t, &NoProgress).unwrap(), p.fit(true, &t, &NoProgress).unwrap());
        assert_eq!(a.artifact().tensors, b.artifact().tensors);
        let c = NcfParams { seed: 7, ..p }.fit(true, &t, &NoProgress).unwrap();
        assert_ne!(a.artifact().tensors, c.artifact().tensors);
    }

    #[test]
    fn validation_keeps_the_best_epoch_and_stops() {
        let t = checkerboard();
        let p = NcfParams { epochs: 10, patience: 2, ..small() };
        let scores = [0.1, 0.5, 0.3, 0.2, 0.9];
        let mut seen = Vec::new();
        let best = p
            .fit_with(
                true,
                &t,
                &NoProgress,
                Some(&mut |r, m| {
                    let mut s = vec![0.0; m.n_items()];
                    m.score(&Query::from_row(&t.user_items, 0), &mut s);
                    seen.push(s);
                    Some(scores[r.epoch - 1])
                }),
            )
            .unwrap();
        assert_eq!(seen.len(), 4, "two epochs without improvement after epoch 2 stop training");
        let mut s = vec![0.0; best.n_items()];
        best.score(&Query::from_row(&t.user_items, 0), &mut s);
        assert_eq!(s, seen[1], "epoch 2's weights are kept");
    }

    #[test]
    fn bad_parameters_are_named() {
        let t = checkerboard();
        for (p, name) in [
            (NcfParams { layers: vec![10, 8], ..small() }, "layers"),
            (NcfParams { dropout: 1.0, ..small() }, "dropout"),
            (NcfParams { negatives: 0, ..small() }, "negatives"),
            (NcfParams { learning_rate: -1.0, ..small() }, "learning_rate"),
        ] {
            let e = p.fit(false, &t, &NoProgress).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }
}
