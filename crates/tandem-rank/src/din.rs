//! The DIN ranker (Zhou et al. 2018, as the H&M solutions used it): the candidate attends over
//! the user's latest items. An item is its ID embedding plus its year-bucket and mean genre
//! embeddings; a history item also gets a recency-position embedding. For each history item h
//! and candidate c an activation unit — an MLP over `[h, c, h - c, h * c]` — gives h's weight
//! (unnormalised, as in the paper); the user's interest is the weighted sum. The head sees
//! `[interest, c, interest * c, log-popularity, retriever score features]` through
//! `[linear -> batch norm -> ReLU -> dropout]` layers; weighted BCE.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_data::Progress;
use tandem_models::artifact::{Artifact, Tensor, TensorReader, Tensors};
use tandem_models::optim::{Optimizer, OptimizerKind};
use tandem_models::within;
use tandem_models::{Factors, ModelError};
use tandem_neural::dense::{Adam, Linear, Mlp};
use tandem_neural::embedding::{Embedding, RowGrads};
use tandem_neural::norm::NormMlp;

use crate::features::ItemFeatures;
use crate::parts::train_epochs;
use crate::parts::{
    check_head, put_features, put_head, read_features, read_head, score_features, Pooled, RankLoss, RankerWindow,
    ScoreStats, SCORE_FEATURES,
};
use crate::ranker::{Candidates, Ranker};

/// DIN hyper-parameters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DinParams {
    /// Width of the item, year, genre and position embeddings (default 16).
    pub embedding: usize,
    /// History items attended over, most recent first (default 20).
    pub history: usize,
    /// Hidden width of the activation unit (default 36).
    pub attention: usize,
    /// Hidden widths of the head (default [200, 80]).
    pub hidden: Vec<usize>,
    /// Dropout after every hidden layer of the head (default 0.3).
    pub dropout: f32,
    /// Feed each retriever's score features to the head (default true).
    pub retriever_scores: bool,
    /// Epochs (default 3; ID embeddings overfit soon after, on ml-100k validation).
    pub epochs: usize,
    /// Examples per batch (default 512).
    pub batch_size: usize,
    /// Adam learning rate (default 0.001).
    pub learning_rate: f32,
    /// `bce` (default: every example on its own) or `listwise` (a softmax over each user's
    /// examples; batches then hold whole lists).
    pub loss: RankLoss,
    /// Seed (default 42).
    pub seed: u64,
}

impl Default for DinParams {
    fn default() -> Self {
        DinParams {
            embedding: 16,
            history: 20,
            attention: 36,
            hidden: vec![200, 80],
            dropout: 0.3,
            retriever_scores: true,
            epochs: 3,
            batch_size: 512,
            learning_rate: 0.001,
            loss: RankLoss::Bce,
            seed: 42,
        }
    }
}

impl DinParams {
    /// Checks the parameters' ranges.
    pub fn check(&self) -> tandem_models::Result<()> {
        within("embedding", self.embedding, 1..=1024)?;
        within("history", self.history, 1..=50)?;
        within("attention", self.attention, 1..=4096)?;
        check_head(&self.hidden, self.dropout, self.epochs, self.batch_size, self.learning_rate)
    }

    /// Fits DIN on `windows` (the latest first): each example's history is its user's in that
    /// window's rows; the retrievers' scores are features. The fitted ranker keeps the latest
    /// window's item features.
    pub fn fit(&self, windows: &[RankerWindow<'_>], progress: &dyn Progress) -> tandem_models::Result<Din> {
        self.check()?;
        let pooled = Pooled::new(windows, self.retriever_scores);
        let (Some(latest), false) = (windows.first(), pooled.examples.is_empty()) else {
            return Err(ModelError::EmptyTrainingData { model: "din" });
        };
        let examples = &pooled.examples[..];
        let features = latest.features;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let e = self.embedding;
        let n_scores = pooled.n_scores;
        let sequences: Vec<Vec<Vec<u32>>> = windows.iter().map(|w| w.train.sequences()).collect();
        let histories: Vec<Vec<u32>> = pooled
            .users()
            .map(|(w, u)| {
                sequences[w].get(u).map_or(Vec::new(), |s| s.iter().rev().take(self.history).copied().collect())
            })
            .collect();
        let tables = Tables {
            item: Embedding::normal(features.len().max(1), e, 0.05, &mut rng),
            year: Embedding::normal(features.n_year_buckets(), e, 0.05, &mut rng),
            genre: Embedding::normal(features.genre_names.len().max(1), e, 0.05, &mut rng),
            position: Embedding::normal(self.history, e, 0.05, &mut rng),
        };
        let mut att = Mlp::new(&[4 * e, self.attention, 1], 0.0, &mut rng);
        att.relu_last = false;
        let width = 3 * e + 1 + SCORE_FEATURES * n_scores;
        let mut head = NormMlp::new(width, &self.hidden, self.dropout, &mut rng);
        let adam = Adam { lr: self.learning_rate, weight_decay: 0.0, decoupled: true };
        let sparse = Optimizer { kind: OptimizerKind::Adam, lr: self.learning_rate, weight_decay: 0.0 };
        let mut grads = [RowGrads::new(e), RowGrads::new(e), RowGrads::new(e), RowGrads::new(e)];
        let empty: Vec<u32> = Vec::new();
        train_epochs("din", self.epochs, self.loss, self.batch_size, examples, &mut rng, progress, |batch, rng| {
            let rows: Vec<Row<'_>> = batch
                .iter()
                .map(|&k| {
                    let ex = &examples[k];
                    let mut scores = vec![0f32; SCORE_FEATURES * n_scores];
                    pooled.score_features(k, &mut scores);
                    let history = histories.get(ex.user as usize).unwrap_or(&empty);
                    Row { item: ex.item, history, scores }
                })
                .collect();
            let pass = Pass::forward(&tables, &mut att, features, &rows, e);
            let logits = head.forward_train(&pass.x, rows.len(), rng);
            let (loss, weight, dlogits) = self.loss.batch_loss(examples, batch, &logits);
            let dx = head.backward(&dlogits);
            head.step(&adam);
            pass.backward(&dx, &mut att, features, &rows, &mut grads);
            att.step(&adam, 1.0);
            for (table, g) in tables.all().into_iter().zip(grads.iter_mut()) {
                table.apply(g, &sparse);
            }
            (loss, weight)
        })?;
        Ok(Din {
            params: self.clone(),
            item: tables.item.to_factors(),
            year: tables.year.to_factors(),
            genre: tables.genre.to_factors(),
            position: tables.position.to_factors(),
            att,
            head,
            features: features.clone(),
            stats: pooled.stats,
        })
    }
}

/// The embedding tables while training.
struct Tables {
    item: Embedding,
    year: Embedding,
    genre: Embedding,
    position: Embedding,
}

impl Tables {
    fn all(&self) -> [&Embedding; 4] {
        [&self.item, &self.year, &self.genre, &self.position]
    }
}

/// Reads embedding rows from training tables or a fitted model's copies.
trait Rows {
    fn row(&self, table: usize, r: usize, out: &mut [f32]);
}

impl Rows for Tables {
    fn row(&self, table: usize, r: usize, out: &mut [f32]) {
        self.all()[table].read(r, out);
    }
}

/// One example: candidate, history (most recent first), score features.
struct Row<'a> {
    item: u32,
    history: &'a [u32],
    scores: Vec<f32>,
}

/// An item's vector: ID embedding (items seen in training) + year + mean genre embedding.
fn item_vector(t: &dyn Rows, f: &ItemFeatures, item: u32, out: &mut [f32]) {
    let i = item as usize;
    let e = out.len();
    out.fill(0.0);
    let mut tmp = vec![0f32; e];
    if f.counts.get(i).is_some_and(|&c| c > 0) {
        t.row(0, i, &mut tmp);
        out.iter_mut().zip(&tmp).for_each(|(o, v)| *o += v);
    }
    t.row(1, f.year_bucket.get(i).copied().unwrap_or(0) as usize, &mut tmp);
    out.iter_mut().zip(&tmp).for_each(|(o, v)| *o += v);
    let genres = f.genres.get(i).map_or(&[][..], |v| &v[..]);
    for &g in genres {
        t.row(2, g as usize, &mut tmp);
        out.iter_mut().zip(&tmp).for_each(|(o, v)| *o += v / genres.len() as f32);
    }
}

/// The forward pass of a batch and what backward needs.
struct Pass {
    e: usize,
    /// Candidate vectors (`rows x e`).
    c: Vec<f32>,
    /// History vectors (`sum of history lengths x e`) and where each row's start.
    h: Vec<f32>,
    starts: Vec<usize>,
    /// Activation-unit inputs and weights.
    a: Vec<f32>,
    w: Vec<f32>,
    /// Interests (`rows x e`) and the head's input.
    interest: Vec<f32>,
    x: Vec<f32>,
}

impl Pass {
    fn forward(t: &dyn Rows, att: &mut Mlp, f: &ItemFeatures, rows: &[Row<'_>], e: usize) -> Pass {
        let mut p = Pass::inputs(t, f, rows, e);
        p.w = att.forward(&p.a, p.h.len() / e, None).to_vec();
        p.finish(f, rows);
        p
    }

    fn infer(t: &dyn Rows, att: &Mlp, f: &ItemFeatures, rows: &[Row<'_>], e: usize) -> Pass {
        let mut p = Pass::inputs(t, f, rows, e);
        p.w = att.infer(&p.a, p.h.len() / e);
        p.finish(f, rows);
        p
    }

    fn inputs(t: &dyn Rows, f: &ItemFeatures, rows: &[Row<'_>], e: usize) -> Pass {
        let mut c = vec![0f32; rows.len() * e];
        let (mut h, mut starts, mut a) = (Vec::new(), Vec::with_capacity(rows.len() + 1), Vec::new());
        let mut hv = vec![0f32; e];
        let mut pos = vec![0f32; e];
        for (k, r) in rows.iter().enumerate() {
            let ck = &mut c[k * e..(k + 1) * e];
            item_vector(t, f, r.item, ck);
            starts.push(h.len() / e);
            for (j, &item) in r.history.iter().enumerate() {
                item_vector(t, f, item, &mut hv);
                t.row(3, j, &mut pos);
                hv.iter_mut().zip(&pos).for_each(|(v, p)| *v += p);
                h.extend_from_slice(&hv);
                a.extend_from_slice(&hv);
                a.extend_from_slice(ck);
                a.extend(hv.iter().zip(ck.iter()).map(|(x, y)| x - y));
                a.extend(hv.iter().zip(ck.iter()).map(|(x, y)| x * y));
            }
        }
        starts.push(h.len() / e);
        Pass { e, c, h, starts, a, w: Vec::new(), interest: Vec::new(), x: Vec::new() }
    }

    fn finish(&mut self, f: &ItemFeatures, rows: &[Row<'_>]) {
        let e = self.e;
        self.interest = vec![0f32; rows.len() * e];
        for k in 0..rows.len() {
            let ik = &mut self.interest[k * e..(k + 1) * e];
            for j in self.starts[k]..self.starts[k + 1] {
                let w = self.w[j];
                ik.iter_mut().zip(&self.h[j * e..(j + 1) * e]).for_each(|(o, v)| *o += w * v);
            }
        }
        self.x.clear();
        for (k, r) in rows.iter().enumerate() {
            let (ik, ck) = (&self.interest[k * e..(k + 1) * e], &self.c[k * e..(k + 1) * e]);
            self.x.extend_from_slice(ik);
            self.x.extend_from_slice(ck);
            self.x.extend(ik.iter().zip(ck).map(|(a, b)| a * b));
            self.x.push(f.log_pop.get(r.item as usize).copied().unwrap_or(0.0));
            self.x.extend_from_slice(&r.scores);
        }
    }

    /// From the head's input gradient to every parameter's: activation unit (accumulated in
    /// `att`) and embedding rows (into `grads`: item, year, genre, position).
    fn backward(&self, dx: &[f32], att: &mut Mlp, f: &ItemFeatures, rows: &[Row<'_>], grads: &mut [RowGrads; 4]) {
        let e = self.e;
        let width = dx.len() / rows.len().max(1);
        let (mut di, mut dc) = (vec![0f32; rows.len() * e], vec![0f32; rows.len() * e]);
        for k in 0..rows.len() {
            let g = &dx[k * width..(k + 1) * width];
            let (ik, ck) = (&self.interest[k * e..(k + 1) * e], &self.c[k * e..(k + 1) * e]);
            for q in 0..e {
                di[k * e + q] = g[q] + g[2 * e + q] * ck[q];
                dc[k * e + q] = g[e + q] + g[2 * e + q] * ik[q];
            }
        }
        // Through interest = sum_j w_j h_j.
        let n_h = self.h.len() / e;
        let mut dh = vec![0f32; n_h * e];
        let mut dw = vec![0f32; n_h];
        for k in 0..rows.len() {
            let dik = &di[k * e..(k + 1) * e];
            for j in self.starts[k]..self.starts[k + 1] {
                let hj = &self.h[j * e..(j + 1) * e];
                dw[j] = dik.iter().zip(hj).map(|(a, b)| a * b).sum();
                dh[j * e..(j + 1) * e].iter_mut().zip(dik).for_each(|(o, v)| *o += self.w[j] * v);
            }
        }
        // Through the activation unit over [h, c, h - c, h * c].
        if n_h > 0 {
            let da = att.backward(&dw);
            for k in 0..rows.len() {
                let ck = &self.c[k * e..(k + 1) * e];
                for j in self.starts[k]..self.starts[k + 1] {
                    let a = &da[j * 4 * e..(j + 1) * 4 * e];
                    let hj = &self.h[j * e..(j + 1) * e];
                    for q in 0..e {
                        dh[j * e + q] += a[q] + a[2 * e + q] + a[3 * e + q] * ck[q];
                        dc[k * e + q] += a[e + q] - a[2 * e + q] + a[3 * e + q] * hj[q];
                    }
                }
            }
        }
        // Into the embedding rows.
        let scatter = |grads: &mut [RowGrads; 4], item: u32, g: &[f32]| {
            let i = item as usize;
            if f.counts.get(i).is_some_and(|&c| c > 0) {
                grads[0].add(item, g, 1.0);
            }
            grads[1].add(f.year_bucket.get(i).copied().unwrap_or(0), g, 1.0);
            let genres = f.genres.get(i).map_or(&[][..], |v| &v[..]);
            for &gid in genres {
                grads[2].add(gid, g, 1.0 / genres.len() as f32);
            }
        };
        for (k, r) in rows.iter().enumerate() {
            scatter(grads, r.item, &dc[k * e..(k + 1) * e]);
            for (j, &item) in r.history.iter().enumerate() {
                let row = self.starts[k] + j;
                let g = &dh[row * e..(row + 1) * e];
                scatter(grads, item, g);
                grads[3].add(j as u32, g, 1.0);
            }
        }
    }
}

/// A fitted DIN ranker.
#[derive(Debug, Clone)]
pub struct Din {
    params: DinParams,
    item: Factors,
    year: Factors,
    genre: Factors,
    position: Factors,
    att: Mlp,
    head: NormMlp,
    features: ItemFeatures,
    stats: Vec<ScoreStats>,
}

impl Rows for Din {
    fn row(&self, table: usize, r: usize, out: &mut [f32]) {
        let t = [&self.item, &self.year, &self.genre, &self.position][table];
        out.copy_from_slice(t.row(r.min(t.rows().saturating_sub(1))));
    }
}

impl Din {
    /// Rebuilds a saved ranker.
    pub fn from_tensors(params: DinParams, tensors: &Tensors) -> tandem_models::Result<Din> {
        params.check()?;
        let r = TensorReader::new(tensors, "din");
        let vec = |name: &str| r.f32(name).map(|(_, v)| v);
        let e = params.embedding;
        let att_layers = vec![
            Linear::from_parts(4 * e, params.attention, vec("att.0.w")?, vec("att.0.b")?),
            Linear::from_parts(params.attention, 1, vec("att.1.w")?, vec("att.1.b")?),
        ];
        let mut att = Mlp::from_layers(att_layers, 0.0);
        att.relu_last = false;
        let head = read_head(&r, &params.hidden, params.dropout)?;
        let (features, stats) = read_features(&r)?;
        Ok(Din {
            item: r.matrix("item")?,
            year: r.matrix("year")?,
            genre: r.matrix("genre")?,
            position: r.matrix("position")?,
            att,
            head,
            features,
            stats,
            params,
        })
    }
}

impl Ranker for Din {
    fn kind(&self) -> &'static str {
        "din"
    }

    fn score(&self, c: &Candidates<'_>, out: &mut [f32]) {
        let history = &c.recent[..c.recent.len().min(self.params.history)];
        let features = score_features(&self.stats, c);
        let rows: Vec<Row<'_>> =
            c.items.iter().zip(features).map(|(&item, scores)| Row { item, history, scores }).collect();
        let pass = Pass::infer(self, &self.att, &self.features, &rows, self.params.embedding);
        out.copy_from_slice(&self.head.infer(&pass.x, rows.len()));
    }

    fn artifact(&self) -> Artifact {
        let m = |f: &Factors| Tensor::matrix(f.rows(), f.dim(), f.as_slice().to_vec());
        let mut t = Tensors::new();
        for (name, f) in
            [("item", &self.item), ("year", &self.year), ("genre", &self.genre), ("position", &self.position)]
        {
            t.insert(name.into(), m(f));
        }
        for (l, layer) in self.att.layers.iter().enumerate() {
            t.insert(format!("att.{l}.w"), Tensor::matrix(layer.n_in, layer.n_out, layer.w.value.clone()));
            t.insert(format!("att.{l}.b"), Tensor::f32(layer.b.value.clone()));
        }
        put_head(&mut t, &self.head);
        put_features(&mut t, &self.features, &self.stats);
        Artifact { kind: "din", params: serde_json::to_value(&self.params).expect("params serialise"), tensors: t }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::auroc;
    use crate::mining::{Example, Source};
    use tandem_data::{Interaction, Interactions, NoProgress};
    use tandem_models::Query;
    use tandem_models::TrainSet;

    /// Users walk a cycle of items from unrelated starts; the item after the walk is the
    /// positive among all unseen items. Only the order of the history tells which it is.
    fn walks(n_users: u32, n_items: u32) -> (TrainSet, Vec<Example>, Vec<u32>) {
        let mut log = Interactions::new();
        let mut examples = Vec::new();
        let mut next = Vec::new();
        for u in 0..n_users {
            let (start, len) = ((u * 7) % n_items, 3 + (u * 5) % 3);
            for t in 0..len {
                log.push(Interaction { user: u, item: (start + t) % n_items, time: t as i64, weight: 1.0 });
            }
            let want = (start + len) % n_items;
            next.push(want);
            for i in 0..n_items {
                let seen = (0..len).any(|t| (start + t) % n_items == i);
                if !seen {
                    let (label, source) = if i == want { (1.0, Source::Positive) } else { (0.0, Source::Hard) };
                    examples.push(Example { user: u, item: i, label, weight: 1.0, source });
                }
            }
        }
        (TrainSet::new(log, n_users as usize, n_items as usize), examples, next)
    }

    #[test]
    fn din_learns_what_follows_the_history_and_round_trips() {
        let (train, examples, next) = walks(200, 12);
        let features = ItemFeatures::new(&[], &train);
        let p = DinParams {
            embedding: 8,
            history: 3,
            attention: 16,
            hidden: vec![16],
            epochs: 30,
            batch_size: 64,
            learning_rate: 0.01,
            retriever_scores: false,
            ..Default::default()
        };
        let window = RankerWindow { examples: &examples, train: &train, features: &features, retrievers: &[] };
        let din = p.fit(&[window], &NoProgress).unwrap();
        let sequences = train.sequences();
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for (u, want) in next.iter().enumerate() {
            let recent: Vec<u32> = sequences[u].iter().rev().copied().collect();
            let items: Vec<u32> = (0..12).filter(|i| !recent.contains(i)).collect();
            let q = Query::from_row(&train.user_items, u as u32);
            let c = Candidates { query: &q, recent: &recent, items: &items, retriever_scores: &[] };
            let mut s = vec![0f32; items.len()];
            din.score(&c, &mut s);
            for (&i, &v) in items.iter().zip(&s) {
                if i == *want {
                    pos.push(v)
                } else {
                    neg.push(v)
                }
            }
        }
        let a = auroc(&pos, &neg).unwrap();
        assert!(a > 0.9, "AUROC {a}");
        let art = din.artifact();
        let back = Din::from_tensors(p, &art.tensors).unwrap();
        assert_eq!(back.artifact(), art, "round trip");
    }
}
