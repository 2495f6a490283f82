//! The late-fusion MLP ranker (nanoRecSys): frozen user and item vectors from a retriever,
//! their element-wise product, standardised log-popularity, a learned year-bucket embedding,
//! learned genre embeddings mean-pooled, an IsUnknown flag with ID dropout (in training the
//! item's vector and retriever scores are zeroed and the flag raised with probability
//! `id_dropout`, so cold items — never seen in training — are scored from their metadata
//! alone), and optionally each retriever's standardised score; then `[linear -> batch norm -> ReLU -> dropout]` layers
//! and a weighted BCE over the mined examples.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_data::Progress;
use tandem_models::artifact::{Artifact, Tensor, TensorReader, Tensors};
use tandem_models::optim::{Optimizer, OptimizerKind};
use tandem_models::within;
use tandem_models::{Factors, ModelError};
use tandem_neural::dense::Adam;
use tandem_neural::embedding::{Embedding, RowGrads};
use tandem_neural::norm::NormMlp;

use crate::features::ItemFeatures;
use crate::parts::train_epochs;
use crate::parts::{
    check_head, put_features, put_head, read_features, read_head, score_features, Pooled, RankLoss, RankerWindow,
    ScoreStats, SCORE_FEATURES,
};
use crate::ranker::{Candidates, FeatureRanker, Ranker};

/// Late-fusion ranker hyper-parameters (defaults: nanoRecSys's head).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LateFusionParams {
    /// Hidden widths (default [256, 128, 64]).
    pub hidden: Vec<usize>,
    /// Dropout after every hidden layer (default 0.1).
    pub dropout: f32,
    /// Probability that a training example is shown as an unknown item — no vector, scores or
    /// popularity — (default 0.3, chosen on validation; nanoRecSys uses 0.1).
    pub id_dropout: f32,
    /// Width of the year and genre embeddings (default 16).
    pub meta_dim: usize,
    /// Feed each retriever's standardised score to the head (default true).
    pub retriever_scores: bool,
    /// Feed the frozen user and item vectors and their product to the head (default true;
    /// false leaves scores and metadata).
    pub embeddings: bool,
    /// Epochs over the examples (default 5).
    pub epochs: usize,
    /// Examples per batch (default 1024).
    pub batch_size: usize,
    /// Adam learning rate (default 0.001).
    pub learning_rate: f32,
    /// `bce` (default: every example on its own) or `listwise` (a softmax over each user's
    /// examples; batches then hold whole lists).
    pub loss: RankLoss,
    /// Weight decay of the head (default 0).
    pub weight_decay: f32,
    /// Seed (default 42).
    pub seed: u64,
}

impl Default for LateFusionParams {
    fn default() -> Self {
        LateFusionParams {
            hidden: vec![256, 128, 64],
            dropout: 0.1,
            id_dropout: 0.3,
            meta_dim: 16,
            retriever_scores: true,
            embeddings: true,
            epochs: 5,
            batch_size: 1024,
            learning_rate: 0.001,
            loss: RankLoss::Bce,
            weight_decay: 0.0,
            seed: 42,
        }
    }
}

impl LateFusionParams {
    /// Checks the parameters' ranges.
    pub fn check(&self) -> tandem_models::Result<()> {
        check_head(&self.hidden, self.dropout, self.epochs, self.batch_size, self.learning_rate)?;
        within("id_dropout", self.id_dropout, 0.0..=1.0)?;
        within("meta_dim", self.meta_dim, 1..=1024)?;
        within("weight_decay", self.weight_decay, 0.0..1.0)?;
        Ok(())
    }

    /// Fits the ranker on `windows` (the latest first), with frozen user and item vectors from
    /// the first of each window's retrievers that has them (none: the ranker works from
    /// metadata and scores only) and those retrievers' scores as features. The fitted ranker
    /// keeps the latest window's vectors and item features.
    pub fn fit(&self, windows: &[RankerWindow<'_>], progress: &dyn Progress) -> tandem_models::Result<LateFusion> {
        self.check()?;
        let pooled = Pooled::new(windows, self.retriever_scores);
        let (Some(latest), false) = (windows.first(), pooled.examples.is_empty()) else {
            return Err(ModelError::EmptyTrainingData { model: "late_fusion" });
        };
        let examples = &pooled.examples[..];
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // Per window: its retriever's vectors (each fit has its own).
        let vectors: Vec<(Factors, Factors)> = windows
            .iter()
            .map(|w| match w.retrievers.iter().find_map(|r| r.embeddings()).filter(|_| self.embeddings) {
                Some(e) => (e.users.clone(), e.items.clone()),
                None => (Factors::zeros(w.train.n_users(), 0), Factors::zeros(w.train.n_items(), 0)),
            })
            .collect();
        let d = vectors[0].0.dim();
        if vectors.iter().any(|(u, _)| u.dim() != d) {
            return Err(ModelError::invalid(
                "embeddings",
                "vectors of different widths",
                "one retriever kind lending vectors",
            ));
        }
        let sequences: Vec<Vec<Vec<u32>>> = windows.iter().map(|w| w.train.sequences()).collect();
        // Profiles of the users with examples only (a window holds every user of its log;
        // at H&M size a profile each would take gigabytes): `slot[pooled user]` finds one.
        let mut slot = vec![u32::MAX; pooled.offsets.last().copied().unwrap_or(0)];
        let mut owners: Vec<usize> = Vec::new();
        for e in examples {
            if slot[e.user as usize] == u32::MAX {
                slot[e.user as usize] = owners.len() as u32;
                owners.push(e.user as usize);
            }
        }
        let profiles: Vec<Profile> = owners
            .iter()
            .map(|&pooled_user| {
                let w = pooled.offsets.partition_point(|&o| o <= pooled_user) - 1;
                let u = pooled_user - pooled.offsets[w];
                let (train, features) = (windows[w].train, windows[w].features);
                if u >= train.n_users() {
                    return Profile::of(&[], &[], &[], features, &vectors[w].1);
                }
                let (items, weights) = train.user_items.row(u);
                let recent: Vec<u32> = sequences[w][u].iter().rev().copied().collect();
                Profile::of(items, weights, &recent, features, &vectors[w].1)
            })
            .collect();
        let n_scores = pooled.n_scores;
        let features = latest.features;
        let m = self.meta_dim;
        let year = Embedding::normal(features.n_year_buckets(), m, 0.05, &mut rng);
        let genre = Embedding::normal(features.genre_names.len().max(1), m, 0.05, &mut rng);
        let layout = Layout { d, m, scores: SCORE_FEATURES * n_scores };
        let mut head = NormMlp::new(layout.width(), &self.hidden, self.dropout, &mut rng);
        let (mut year_grads, mut genre_grads) = (RowGrads::new(m), RowGrads::new(m));
        let adam = Adam { lr: self.learning_rate, weight_decay: self.weight_decay, decoupled: true };
        let sparse = Optimizer { kind: OptimizerKind::Adam, lr: self.learning_rate, weight_decay: 0.0 };
        let (mut x, mut z) = (Vec::new(), vec![0f32; SCORE_FEATURES * n_scores]);
        let mut unknown = Vec::new();
        train_epochs(
            "late_fusion",
            self.epochs,
            self.loss,
            self.batch_size,
            examples,
            &mut rng,
            progress,
            |batch, rng| {
                x.clear();
                unknown.clear();
                for &k in batch {
                    let e = &examples[k];
                    let w = pooled.window[k];
                    let ((users, items), features) = (&vectors[w], windows[w].features);
                    let cold = !known_item(e.item, items, features) || rng.random::<f32>() < self.id_dropout;
                    unknown.push(cold);
                    pooled.score_features(k, &mut z);
                    let meta = |table: &Embedding, r: usize, out: &mut [f32]| table.read(r, out);
                    let user = e.user as usize - pooled.offsets[w];
                    layout.push_row(
                        &mut x,
                        users_row(users, Some(user as u32)),
                        &profiles[slot[e.user as usize] as usize],
                        e.item,
                        cold,
                        items,
                        features,
                        &z,
                        &|r, o| meta(&year, r, o),
                        &|r, o| meta(&genre, r, o),
                    );
                }
                let logits = head.forward_train(&x, batch.len(), rng);
                let (loss, weight, dlogits) = self.loss.batch_loss(examples, batch, &logits);
                let dx = head.backward(&dlogits);
                head.step(&adam);
                let w = layout.width();
                for (row, &k) in batch.iter().enumerate() {
                    let g = &dx[row * w..(row + 1) * w];
                    let item = examples[k].item as usize;
                    let (yo, go) = (layout.year_offset(), layout.genre_offset());
                    year_grads.add(features.year_bucket.get(item).copied().unwrap_or(0), &g[yo..yo + m], 1.0);
                    let gs = features.genres.get(item).map_or(&[][..], |v| &v[..]);
                    for &gid in gs {
                        genre_grads.add(gid, &g[go..go + m], 1.0 / gs.len() as f32);
                    }
                }
                year.apply(&mut year_grads, &sparse);
                genre.apply(&mut genre_grads, &sparse);
                (loss, weight)
            },
        )?;
        let (users, items) = vectors.into_iter().next().expect("one window at least");
        Ok(LateFusion {
            params: self.clone(),
            users,
            items,
            year: year.to_factors(),
            genre: genre.to_factors(),
            head,
            features: features.clone(),
            stats: pooled.stats,
        })
    }
}

/// What a user's history says about a candidate: the share of its items in each genre, the
/// mean year bucket of those with a year, and for repeat interactions the summed weight of each
/// item and its latest position (0 = most recent).
struct Profile {
    genre_share: Vec<f32>,
    year: Option<f32>,
    items: Vec<u32>,
    weights: Vec<f32>,
    latest: HashMap<u32, usize>,
    /// The unit mean vector of the latest [`RECENT_SIMILARITY`] items (empty without vectors).
    recent_unit: Vec<f32>,
}

/// Latest items whose mean vector a candidate is compared with.
const RECENT_SIMILARITY: usize = 5;

/// The mean of `items`' vectors scaled to length 1 (empty when there is none or it is 0).
fn unit_mean<'a>(items: impl Iterator<Item = &'a u32>, vectors: &Factors) -> Vec<f32> {
    let mut mean = vec![0f32; vectors.dim()];
    for &i in items.filter(|&&i| (i as usize) < vectors.rows()) {
        mean.iter_mut().zip(vectors.row(i as usize)).for_each(|(m, v)| *m += v);
    }
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm <= 1e-12 {
        return Vec::new();
    }
    mean.iter_mut().for_each(|m| *m /= norm);
    mean
}

impl Profile {
    /// `history` / `weights`: the user's items (ascending) and summed weights; `recent`: its
    /// items most recent first; `vectors`: the item vectors the ranker sees.
    fn of(history: &[u32], weights: &[f32], recent: &[u32], f: &ItemFeatures, vectors: &Factors) -> Profile {
        let mut genre_share = vec![0f32; f.genre_names.len().max(1)];
        let (mut years, mut n_years) = (0f32, 0usize);
        for &i in history {
            for &g in f.genres.get(i as usize).map_or(&[][..], |v| &v[..]) {
                if let Some(share) = genre_share.get_mut(g as usize) {
                    *share += 1.0 / history.len() as f32;
                }
            }
            match f.year_bucket.get(i as usize) {
                Some(&b) if b > 0 => {
                    years += b as f32;
                    n_years += 1;
                }
                _ => {}
            }
        }
        let mut latest = HashMap::new();
        for (pos, &i) in recent.iter().enumerate() {
            latest.entry(i).or_insert(pos);
        }
        Profile {
            genre_share,
            year: (n_years > 0).then(|| years / n_years as f32),
            items: history.to_vec(),
            weights: weights.to_vec(),
            latest,
            recent_unit: unit_mean(recent.iter().take(RECENT_SIMILARITY), vectors),
        }
    }

    /// Cosine between the item's vector and the mean vector of the user's latest items (0
    /// without vectors): what the user turned to lately, in the retriever's item space.
    fn recent_similarity(&self, item: &[f32]) -> f32 {
        let norm = item.iter().map(|v| v * v).sum::<f32>().sqrt();
        if self.recent_unit.is_empty() || norm <= 1e-12 {
            return 0.0;
        }
        self.recent_unit.iter().zip(item).map(|(a, b)| a * b).sum::<f32>() / norm
    }

    /// [ln(1 + the user's weight on the item), 1 / (1 + its latest position)]: 0 for new items.
    fn repeat(&self, item: u32) -> [f32; 2] {
        let weight = self.items.binary_search(&item).ok().and_then(|k| self.weights.get(k)).copied().unwrap_or(0.0);
        let recency = self.latest.get(&item).map_or(0.0, |&p| 1.0 / (1.0 + p as f32));
        [weight.max(0.0).ln_1p(), recency]
    }

    /// [mean share of the item's genres in the history, |item year bucket - history mean| / buckets].
    fn affinity(&self, item: usize, f: &ItemFeatures) -> [f32; 2] {
        let genres = f.genres.get(item).map_or(&[][..], |v| &v[..]);
        let share = genres.iter().map(|&g| self.genre_share.get(g as usize).copied().unwrap_or(0.0)).sum::<f32>()
            / genres.len().max(1) as f32;
        let gap = match (f.year_bucket.get(item), self.year) {
            (Some(&b), Some(y)) if b > 0 => (b as f32 - y).abs() / f.n_year_buckets() as f32,
            _ => 0.0,
        };
        [share, gap]
    }
}

/// Where each feature sits in a row:
/// `[u | i | u * i | log_pop | unknown | genre affinity | year gap | repeat weight | repeat
/// recency | year | genres | scores]`.
#[derive(Debug, Clone, Copy)]
struct Layout {
    d: usize,
    m: usize,
    scores: usize,
}

impl Layout {
    fn width(&self) -> usize {
        3 * self.d + 7 + 2 * self.m + self.scores
    }

    fn year_offset(&self) -> usize {
        3 * self.d + 7
    }

    fn genre_offset(&self) -> usize {
        3 * self.d + 7 + self.m
    }

    /// Appends one (user, item) row.
    #[allow(clippy::too_many_arguments)]
    fn push_row(
        &self,
        x: &mut Vec<f32>,
        user: Option<&[f32]>,
        profile: &Profile,
        item: u32,
        unknown: bool,
        items: &Factors,
        features: &ItemFeatures,
        scores: &[f32],
        year: &dyn Fn(usize, &mut [f32]),
        genre: &dyn Fn(usize, &mut [f32]),
    ) {
        let (d, m) = (self.d, self.m);
        let start = x.len();
        x.resize(start + self.width(), 0.0);
        let row = &mut x[start..];
        if let Some(u) = user {
            row[..d].copy_from_slice(u);
        }
        if !unknown {
            let v = items.row(item as usize);
            row[d..2 * d].copy_from_slice(v);
            for k in 0..d {
                row[2 * d + k] = row[k] * v[k];
            }
        }
        let i = item as usize;
        // Unknown items show no popularity either: as if they had no rows (as truly cold ones).
        row[3 * d] = if unknown { features.log_pop_zero } else { features.log_pop.get(i).copied().unwrap_or(0.0) };
        row[3 * d + 1] = if unknown { 1.0 } else { 0.0 };
        row[3 * d + 2..3 * d + 4].copy_from_slice(&profile.affinity(i, features));
        if !unknown {
            row[3 * d + 4..3 * d + 6].copy_from_slice(&profile.repeat(item));
            if d > 0 {
                row[3 * d + 6] = profile.recent_similarity(items.row(item as usize));
            }
        }
        let yo = self.year_offset();
        year(features.year_bucket.get(i).copied().unwrap_or(0) as usize, &mut row[yo..yo + m]);
        let go = self.genre_offset();
        let genres = features.genres.get(i).map_or(&[][..], |v| &v[..]);
        let mut tmp = vec![0f32; m];
        for &g in genres {
            genre(g as usize, &mut tmp);
            for k in 0..m {
                row[go + k] += tmp[k] / genres.len() as f32;
            }
        }
        // An unknown item has no collaborative signal at all: no vector and no retriever scores
        // (retrievers cannot score an item they never saw), only metadata.
        if !unknown {
            row[go + m..].copy_from_slice(scores);
        }
    }
}

fn users_row(users: &Factors, user: Option<u32>) -> Option<&[f32]> {
    user.filter(|&u| (u as usize) < users.rows() && users.dim() > 0).map(|u| users.row(u as usize))
}

/// An item is known when it has a trained vector: inside the table and seen in training.
fn known_item(item: u32, items: &Factors, features: &ItemFeatures) -> bool {
    (item as usize) < items.rows() && features.counts.get(item as usize).is_some_and(|&c| c > 0)
}

/// A fitted late-fusion ranker.
#[derive(Debug, Clone)]
pub struct LateFusion {
    params: LateFusionParams,
    users: Factors,
    items: Factors,
    year: Factors,
    genre: Factors,
    head: NormMlp,
    features: ItemFeatures,
    stats: Vec<ScoreStats>,
}

impl LateFusion {
    fn layout(&self) -> Layout {
        Layout { d: self.users.dim(), m: self.params.meta_dim, scores: SCORE_FEATURES * self.stats.len() }
    }

    /// Scores candidates with every item treated as unknown (IDs masked): the cold-item view.
    pub fn score_masked(&self, candidates: &Candidates<'_>, out: &mut [f32]) {
        let x = self.rows(candidates, true);
        out.copy_from_slice(&self.head.infer(&x, candidates.items.len()));
    }

    /// The head's input rows for `c` (`items x width`).
    fn rows(&self, c: &Candidates<'_>, mask_ids: bool) -> Vec<f32> {
        let layout = self.layout();
        let user = users_row(&self.users, c.query.trained);
        let profile = Profile::of(c.query.items, c.query.weights, c.recent, &self.features, &self.items);
        let mut x = Vec::with_capacity(c.items.len() * layout.width());
        let read = |f: &Factors, r: usize, o: &mut [f32]| o.copy_from_slice(f.row(r.min(f.rows() - 1)));
        let z_all = score_features(&self.stats, c);
        for ((k, &item), z) in c.items.iter().enumerate().zip(&z_all) {
            let _ = k;
            let unknown = mask_ids || !known_item(item, &self.items, &self.features);
            layout.push_row(
                &mut x,
                user,
                &profile,
                item,
                unknown,
                &self.items,
                &self.features,
                z,
                &|r, o| read(&self.year, r, o),
                &|r, o| read(&self.genre, r, o),
            );
        }
        x
    }

    /// Rebuilds a saved ranker.
    pub fn from_tensors(params: LateFusionParams, tensors: &Tensors) -> tandem_models::Result<LateFusion> {
        params.check()?;
        let r = TensorReader::new(tensors, "late_fusion");
        let head = read_head(&r, &params.hidden, params.dropout)?;
        let (features, stats) = read_features(&r)?;
        Ok(LateFusion {
            users: r.matrix("users")?,
            items: r.matrix("items")?,
            year: r.matrix("year")?,
            genre: r.matrix("genre")?,
            head,
            features,
            stats,
            params,
        })
    }
}

impl FeatureRanker for LateFusion {
    fn feature_groups(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let l = self.layout();
        let (d, m) = (l.d, l.m);
        let mut g = Vec::new();
        if d > 0 {
            g.push(("user vector".to_string(), 0..d));
            g.push(("item vector".to_string(), d..2 * d));
            g.push(("user x item".to_string(), 2 * d..3 * d));
        }
        g.push(("log popularity".to_string(), 3 * d..3 * d + 1));
        g.push(("unknown flag".to_string(), 3 * d + 1..3 * d + 2));
        g.push(("genre affinity".to_string(), 3 * d + 2..3 * d + 3));
        g.push(("year gap".to_string(), 3 * d + 3..3 * d + 4));
        g.push(("repeat".to_string(), 3 * d + 4..3 * d + 6));
        g.push(("recent similarity".to_string(), 3 * d + 6..3 * d + 7));
        g.push(("year".to_string(), l.year_offset()..l.year_offset() + m));
        g.push(("genres".to_string(), l.genre_offset()..l.genre_offset() + m));
        let first = l.genre_offset() + m;
        for r in 0..self.stats.len() {
            let at = first + SCORE_FEATURES * r;
            g.push((format!("retriever {r} score"), at..at + SCORE_FEATURES));
        }
        g
    }

    fn width(&self) -> usize {
        self.layout().width()
    }

    fn feature_rows(&self, candidates: &Candidates<'_>) -> Vec<f32> {
        self.rows(candidates, false)
    }

    fn score_rows(&self, rows: &[f32]) -> Vec<f32> {
        self.head.infer(rows, rows.len() / self.layout().width().max(1))
    }
}

impl Ranker for LateFusion {
    fn kind(&self) -> &'static str {
        "late_fusion"
    }

    fn score(&self, candidates: &Candidates<'_>, out: &mut [f32]) {
        let x = self.rows(candidates, false);
        out.copy_from_slice(&self.head.infer(&x, candidates.items.len()));
    }

    fn features(&self) -> Option<&dyn FeatureRanker> {
        Some(self)
    }

    fn artifact(&self) -> Artifact {
        let m = |f: &Factors| Tensor::matrix(f.rows(), f.dim(), f.as_slice().to_vec());
        let mut t: Tensors = Tensors::new();
        t.insert("users".into(), m(&self.users));
        t.insert("items".into(), m(&self.items));
        t.insert("year".into(), m(&self.year));
        t.insert("genre".into(), m(&self.genre));
        put_head(&mut t, &self.head);
        put_features(&mut t, &self.features, &self.stats);
        Artifact {
            kind: "late_fusion",
            params: serde_json::to_value(&self.params).expect("params serialise"),
            tensors: t,
        }
    }
}
