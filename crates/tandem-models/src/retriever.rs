//! The one trait every retriever implements, and the training data they are fitted on.

use rayon::prelude::*;
use tandem_data::{Csr, Interactions};

use crate::topk::{top_k, Scored};

/// A user as a retriever sees them: their history, and whether to score from their trained
/// state.
///
/// History-based models (popularity, kNN, EASE) score from `items` either way, so the same call
/// serves anonymous sessions and users with live, newer interactions. Models with per-user state
/// (ALS, MF, the neural models) score from the trained row when `trained` names one, and fold
/// `items` in when it is `None` — for new users, and for known users whose history has changed
/// since training (the caller says which; nothing is inferred).
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The user's row in the model's training, to score from its trained state; `None` folds in
    /// `items` instead.
    pub trained: Option<u32>,
    /// Items of the history (dense indices).
    pub items: &'a [u32],
    /// One weight per history item (1.0 for plain implicit feedback).
    pub weights: &'a [f32],
}

impl<'a> Query<'a> {
    /// The query for row `user` of a user x item matrix.
    pub fn from_row(matrix: &'a Csr, user: u32) -> Self {
        let (items, weights) = matrix.row(user as usize);
        Query { trained: Some(user), items, weights }
    }

    /// The trained user's row of `stored`, a users x items matrix a model kept from training
    /// (recency-weighted or latest histories), when the query names a user it holds.
    pub fn trained_row<'m>(&self, stored: Option<&'m Csr>) -> Option<(&'m [u32], &'m [f32])> {
        match (stored, self.trained) {
            (Some(m), Some(u)) if (u as usize) < m.n_rows() => Some(m.row(u as usize)),
            _ => None,
        }
    }
}

/// What is known of each user at scoring time, and which users the model was trained on: the
/// one rule every caller (evaluation, submissions, `recommend`, the server) builds queries by.
///
/// A user with a row in `fitted` is a trained user and keeps their trained state
/// (`Query::user` is set); anyone else is a new user, scored from their history alone as an
/// anonymous query, whatever the model does for new users. The history is the user's row of
/// `known`, which at test time holds more than training (train + valid).
#[derive(Debug, Clone, Copy)]
pub struct Histories<'a> {
    /// The user x item matrix the model was fitted on.
    pub fitted: &'a Csr,
    /// Every item known for each user when scoring (a superset of `fitted`'s rows).
    pub known: &'a Csr,
}

impl<'a> Histories<'a> {
    /// Histories where what is known is what the model was fitted on.
    pub fn fitted(matrix: &'a Csr) -> Self {
        Histories { fitted: matrix, known: matrix }
    }

    /// True when `user` has no row in the fitting data: a new user to the model.
    pub fn is_new(&self, user: u32) -> bool {
        let u = user as usize;
        u >= self.fitted.n_rows() || self.fitted.row_len(u) == 0
    }

    /// The query for `user`: their known history, and their index when they were trained on.
    pub fn query(&self, user: u32) -> Query<'a> {
        let u = user as usize;
        let (items, weights) = if u < self.known.n_rows() { self.known.row(u) } else { (&[][..], &[][..]) };
        Query { trained: (!self.is_new(user)).then_some(user), items, weights }
    }
}

/// Items by how many users have them in `m` (users x items), most first, ties by index: what
/// a query with no trained user and no history gets.
pub fn popular_items(m: &Csr) -> Vec<Scored> {
    let mut counts = vec![0f32; m.n_cols()];
    for &i in m.indices() {
        counts[i as usize] += 1.0;
    }
    top_k(&counts, counts.len(), |_| true)
}

/// The best `k` items for `query` among those `keep` allows: from `model`, or from `popular`
/// (best first, see [`popular_items`]) when the query has neither a trained user nor any
/// history — the one fallback of submissions, `tandem recommend` and the server. The flag
/// says whether the fallback answered.
pub fn recommend_or_popular(
    model: &dyn Retriever,
    popular: &[Scored],
    query: &Query<'_>,
    k: usize,
    keep: &dyn Fn(u32) -> bool,
) -> (Vec<Scored>, bool) {
    if is_cold(query) {
        (best_popular(popular, k, keep), true)
    } else {
        (model.recommend(query, k, keep), false)
    }
}

/// A query with neither a trained user nor any history: popularity answers it.
fn is_cold(query: &Query<'_>) -> bool {
    query.trained.is_none() && query.items.is_empty()
}

/// The first `k` items of `popular` that `keep` allows.
fn best_popular(popular: &[Scored], k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Scored> {
    popular.iter().filter(|s| keep(s.item)).take(k).copied().collect()
}

/// Queries a [`Retriever::recommend_batch`] call takes in [`recommend_each`].
const BATCH: usize = 256;
/// Users whose lists are held at once in [`recommend_each`]: 64 batches, ~1 MB of lists at k = 12.
const CHUNK: usize = 64 * BATCH;

/// [`recommend_or_popular`] for every user of `users`, through the batch path: users in chunks,
/// each chunk's batches ranked in parallel, the lists handed to `sink` in `users`' order (with
/// whether popularity answered) before the next chunk starts, so memory holds one chunk's lists
/// whatever the number of users. `keep(query, item)` says which items a user may get. What
/// submissions and every all-users output call.
pub fn recommend_each<E>(
    model: &dyn Retriever,
    popular: &[Scored],
    histories: Histories<'_>,
    users: &[u32],
    k: usize,
    keep: &(dyn Fn(&Query<'_>, u32) -> bool + Sync),
    mut sink: impl FnMut(u32, Vec<Scored>, bool) -> Result<(), E>,
) -> Result<(), E> {
    use rayon::prelude::*;
    for chunk in users.chunks(CHUNK) {
        let lists: Vec<Vec<(Vec<Scored>, bool)>> = chunk
            .par_chunks(BATCH)
            .map(|batch| {
                let queries: Vec<Query<'_>> = batch.iter().map(|&u| histories.query(u)).collect();
                let warm: Vec<Query<'_>> = queries.iter().copied().filter(|q| !is_cold(q)).collect();
                let mut ranked = model.recommend_batch(&warm, k, &|j, i| keep(&warm[j], i)).into_iter();
                queries
                    .iter()
                    .map(|q| match is_cold(q) {
                        true => (best_popular(popular, k, &|i| keep(q, i)), true),
                        false => (ranked.next().unwrap_or_default(), false),
                    })
                    .collect()
            })
            .collect();
        for (&u, (list, fallback)) in chunk.iter().zip(lists.into_iter().flatten()) {
            sink(u, list, fallback)?;
        }
    }
    Ok(())
}

/// A model's user and item vectors (rows = user / item indices).
#[derive(Debug, Clone, Copy)]
pub struct Embeddings<'a> {
    /// One row per user.
    pub users: &'a crate::Factors,
    /// One row per item.
    pub items: &'a crate::Factors,
}

/// Lets a caller that knows of a richer model reach it through `&dyn Retriever` (a server or a
/// report reaches a pipeline's stages this way); implemented for every type.
pub trait AsAny {
    /// The model as `Any`, to downcast.
    fn as_any(&self) -> &dyn std::any::Any;
    /// The same, mutable.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

impl<T: std::any::Any> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// A fitted candidate generator: scores every item for a user.
///
/// Lifecycle: parameters are fitted into a model (`Params::fit`), the model scores queries.
/// Models are immutable after fitting and `Send + Sync`, so callers score users in parallel.
pub trait Retriever: AsAny + Send + Sync {
    /// The model kind, for reports.
    fn kind(&self) -> &'static str;

    /// Number of items the model scores (`out.len()` in [`Retriever::score`]).
    fn n_items(&self) -> usize;

    /// What the model saves: its parameters and state as named tensors.
    fn artifact(&self) -> crate::artifact::Artifact;

    /// The model's parameters as a config writes them (what reports show), without copying
    /// its state. The default reads them from [`artifact`](Self::artifact); models with large
    /// state answer directly.
    fn params(&self) -> serde_json::Value {
        self.artifact().params
    }

    /// Writes a score for every item into `out` (length [`Retriever::n_items`]); higher is better.
    fn score(&self, query: &Query<'_>, out: &mut [f32]);

    /// Scores a batch of queries into `out`, row-major (`queries.len() x n_items`): what
    /// evaluation and submissions call. The default scores one query at a time; models whose
    /// scores are products of vectors answer a batch with blocked products.
    fn score_batch(&self, queries: &[Query<'_>], out: &mut [f32]) {
        let n = self.n_items();
        for (q, row) in queries.iter().zip(out.chunks_mut(n.max(1))) {
            self.score(q, row);
        }
    }

    /// The user and item vectors the model scores with, when it has them (ALS, MF, two-tower):
    /// what a ranker takes as frozen features.
    fn embeddings(&self) -> Option<Embeddings<'_>> {
        None
    }

    /// Writes the scores of `items` only into `out` (same length); items the model does not
    /// know score `-inf`. Sampled evaluation ranks ~100 candidates a user, so models whose
    /// per-item score is costly (NCF's MLP) override this default, which scores every item.
    fn score_items(&self, query: &Query<'_>, items: &[u32], out: &mut [f32]) {
        let mut all = vec![0f32; self.n_items()];
        self.score(query, &mut all);
        for (o, &i) in out.iter_mut().zip(items) {
            *o = all.get(i as usize).copied().unwrap_or(f32::NEG_INFINITY);
        }
    }

    /// The best `k` items for `query` among those where `keep(item)` is true, best first,
    /// ties broken by ascending item index.
    fn recommend(&self, query: &Query<'_>, k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Scored> {
        let mut scores = vec![0f32; self.n_items()];
        self.score(query, &mut scores);
        top_k(&scores, k, keep)
    }

    /// The best `k` items for each of `queries` among those `keep(q, item)` allows for query
    /// `q` (its index in `queries`): each list what [`recommend`](Self::recommend) gives. What
    /// submissions call, a batch at a time; the default ranks each query alone, and models
    /// whose scores are products of vectors fuse the selection into blocked products.
    fn recommend_batch(&self, queries: &[Query<'_>], k: usize, keep: &dyn Fn(usize, u32) -> bool) -> Vec<Vec<Scored>> {
        queries.iter().enumerate().map(|(q, query)| self.recommend(query, k, &|i| keep(q, i))).collect()
    }

    /// Items most similar to `item` (the item itself excluded), scored as a one-item history.
    fn similar_items(&self, item: u32, k: usize) -> Vec<Scored> {
        let q = Query { trained: None, items: &[item], weights: &[1.0] };
        self.recommend(&q, k, &|i| i != item)
    }
}

/// Writes [`Retriever::kind`] (given the kind's name) and [`Retriever::params`] (the model's
/// `params` field as JSON) inside an `impl Retriever`: every model keeps its parameters so.
#[macro_export]
macro_rules! kind_and_params {
    ($kind:literal) => {
        fn kind(&self) -> &'static str {
            $kind
        }
        $crate::kind_and_params!();
    };
    () => {
        fn params(&self) -> serde_json::Value {
            serde_json::to_value(&self.params).expect("parameters serialise")
        }
    };
}

/// What a model is fitted on: the training log and its user x item matrix.
#[derive(Debug, Clone)]
pub struct TrainSet {
    /// Training rows (with times, for time-aware models).
    pub log: Interactions,
    /// Users x items, weights summed over repeated pairs.
    pub user_items: Csr,
}

impl TrainSet {
    /// Builds the matrix of `log` over `n_users` x `n_items`.
    pub fn new(log: Interactions, n_users: usize, n_items: usize) -> Self {
        let user_items = Csr::user_items(&log, n_users, n_items);
        TrainSet { log, user_items }
    }

    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.user_items.n_rows()
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.user_items.n_cols()
    }

    /// Each user's training items in time order (ties in log order), for sequence-aware models.
    pub fn sequences(&self) -> Vec<Vec<u32>> {
        let rows = self.rows_in_time();
        (0..self.n_users()).map(|u| rows.user(u).iter().map(|&r| self.log.item[r as usize]).collect()).collect()
    }

    /// Each user's training rows in time order (ties in log order), in two flat buffers (at
    /// H&M size, 31.8M rows of 1.4M customers, nested vectors cost a third more).
    pub fn rows_in_time(&self) -> UserRows {
        let log = &self.log;
        let n_users = self.n_users();
        // Rows grouped by user (counting sort), then each user's by time.
        let mut start = vec![0usize; n_users + 1];
        for &u in &log.user {
            start[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            start[u + 1] += start[u];
        }
        let mut next = start.clone();
        let mut rows = vec![0u32; log.len()];
        for (r, &u) in log.user.iter().enumerate() {
            rows[next[u as usize]] = r as u32;
            next[u as usize] += 1;
        }
        let mut parts: Vec<&mut [u32]> = Vec::with_capacity(n_users);
        let mut rest = &mut rows[..];
        for w in start.windows(2) {
            let (part, more) = std::mem::take(&mut rest).split_at_mut(w[1] - w[0]);
            parts.push(part);
            rest = more;
        }
        parts.into_par_iter().for_each(|p| p.sort_unstable_by_key(|&r| (log.time[r as usize], r)));
        UserRows { start, rows }
    }
}

/// Row indices of a log grouped by user, each user's in time order ([`TrainSet::rows_in_time`]).
#[derive(Debug, Clone)]
pub struct UserRows {
    /// Where each user's rows start in `rows` (users + 1).
    start: Vec<usize>,
    rows: Vec<u32>,
}

impl UserRows {
    /// User `u`'s rows, earliest first.
    pub fn user(&self, u: usize) -> &[u32] {
        &self.rows[self.start[u]..self.start[u + 1]]
    }

    /// Every user's rows, one user after another.
    pub fn all(&self) -> &[u32] {
        &self.rows
    }

    /// The end (in [`UserRows::all`]) of the user whose rows hold position `k`.
    pub fn end_of(&self, k: usize) -> usize {
        self.start[self.start.partition_point(|&s| s <= k)]
    }
}
