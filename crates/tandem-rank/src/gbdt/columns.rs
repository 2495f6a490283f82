//! The GBDT ranker's features: what the H&M winners fed their LightGBM rankers, computed from
//! the training rows at a cutoff (the end of those rows) and from each retriever's scores.
//!
//! A [`Context`] holds the per-item and per-user columns of one set of rows — sales over the
//! last 1 / 7 / 28 days and their trend, the item's age, the customer's activity, and for each
//! (customer, item) bought before the days since that purchase, and how often other customers
//! went from the customer's latest items to the candidate (the co-purchase "pairs" the winners
//! counted, here in sequence order) — built once per training
//! window and once for the rows the fitted pipeline ranks for. [`Context::push_rows`] turns a
//! user's candidates into rows of [`Layout::width`] values; a value that does not exist (a
//! customer who never bought the item, an anonymous query's recency) is NaN, which the trees
//! route as missing.

use rayon::prelude::*;
use tandem_data::Csr;
use tandem_models::artifact::{put_csr, Tensor, TensorReader, Tensors};
use tandem_models::recent::{latest_items, DAY};
use tandem_models::{Factors, Query, TrainSet, UserRows};

use crate::features::ItemFeatures;

/// Distinct latest items per customer whose purchase day is kept (the repurchase features).
const KEPT_ITEMS: usize = 100;
/// Sales windows, in days.
const SALES_DAYS: [i64; 3] = [1, 7, 28];

/// Names of the columns after the retrievers' (three per retriever).
const CONTEXT_COLUMNS: [&str; 23] = [
    "item.log_count",
    "item.sales_1d",
    "item.sales_7d",
    "item.sales_28d",
    "item.trend_7d_vs_28d",
    "item.age_days",
    "item.idle_days",
    "item.year_bucket",
    "user.log_rows",
    "user.distinct_items",
    "user.idle_days",
    "pair.log_weight",
    "pair.days_since_bought",
    "pair.recency_rank",
    "pair.group_days_since",
    "pair.group_share",
    "pair.genre_share",
    "pair.year_gap",
    "pair.weight_vs_user",
    "pair.recent_similarity",
    "pair.last_similarity",
    "pair.transition_recent",
    "pair.transition_last",
];

/// How many later rows of a user's sequence count as following a row (the transitions).
const TRANSITION_WINDOW: usize = 5;
/// Followers kept per item (the most frequent).
const TRANSITION_KEEP: usize = 100;
/// A user's latest rows (by time) whose followers a candidate is looked up among.
const TRANSITION_RECENT: usize = 5;

/// Latest items whose mean vector a candidate is compared with.
const RECENT_SIMILARITY: usize = 5;

/// Columns per retriever: its raw score, its z-score within the user's list, 1 / log2(2 +
/// its rank in the list) (all NaN where the retriever did not score the candidate).
pub(crate) const PER_RETRIEVER: usize = 3;

/// Where the columns sit: the retrievers' first, then [`CONTEXT_COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) retrievers: usize,
}

impl Layout {
    pub(crate) fn width(&self) -> usize {
        PER_RETRIEVER * self.retrievers + CONTEXT_COLUMNS.len()
    }

    /// Column names, retriever columns named after `kinds` (`kind#k.score`, `.z`, `.rank`).
    pub(crate) fn names(&self, kinds: &[String]) -> Vec<String> {
        let mut names = Vec::with_capacity(self.width());
        for r in 0..self.retrievers {
            let kind = kinds.get(r).map_or("retriever", String::as_str);
            for part in ["score", "z", "rank"] {
                names.push(format!("{kind}#{r}.{part}"));
            }
        }
        names.extend(CONTEXT_COLUMNS.iter().map(|s| s.to_string()));
        names
    }
}

/// The per-item and per-user columns of a set of training rows at their cutoff.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// Item: ln(1 + rows), rows in the last 1 / 7 / 28 days, days since its first and its last
    /// sale (NaN: never sold), mean weight (NaN: never).
    item_log_count: Vec<f32>,
    sales: [Vec<f32>; 3],
    item_age: Vec<f32>,
    item_idle: Vec<f32>,
    item_weight: Vec<f32>,
    /// Item group (`u32::MAX`: none) and year bucket (0: unknown), from the item metadata.
    group: Vec<u32>,
    year_bucket: Vec<u32>,
    n_year_buckets: u32,
    /// Item genres (for the genre share).
    genres: Vec<Vec<u32>>,
    n_genres: usize,
    /// User: ln(1 + rows), days since the last row (NaN: none), mean weight.
    user_log_rows: Vec<f32>,
    user_idle: Vec<f32>,
    user_weight: Vec<f32>,
    /// Users x items: days between the user's last purchase of the item and the cutoff, for
    /// the user's [`KEPT_ITEMS`] latest distinct items.
    days: Csr,
    /// Unit item vectors of the pipeline's first retriever that has them (0 wide: none).
    unit: Factors,
    /// Items x items: the share of item j's rows followed, within the next
    /// [`TRANSITION_WINDOW`] rows of the same user, by item i (its [`TRANSITION_KEEP`] most
    /// frequent followers).
    transitions: Csr,
    /// The items of each user's [`TRANSITION_RECENT`] latest rows by time, the latest first, in rows of
    /// that many (`u32::MAX` pads a short history: one flat buffer, as H&M has 1.4M users).
    last_items: Vec<u32>,
}

impl Context {
    /// The columns of `train` (item metadata from `features`).
    pub(crate) fn new(train: &TrainSet, features: &ItemFeatures, vectors: Option<&Factors>) -> Context {
        let log = &train.log;
        let (n_users, n_items) = (train.n_users(), train.n_items());
        let cutoff = log.max_time().unwrap_or(0).div_euclid(DAY);
        let mut item_rows = vec![0u32; n_items];
        let mut sales = [vec![0f32; n_items], vec![0f32; n_items], vec![0f32; n_items]];
        let (mut first, mut last) = (vec![i64::MAX; n_items], vec![i64::MIN; n_items]);
        let mut item_weight = vec![0f64; n_items];
        let (mut user_rows, mut user_last) = (vec![0u32; n_users], vec![i64::MIN; n_users]);
        let mut user_weight = vec![0f64; n_users];
        for r in 0..log.len() {
            let (u, i) = (log.user[r] as usize, log.item[r] as usize);
            let day = log.time[r].div_euclid(DAY);
            item_rows[i] += 1;
            for (w, s) in SALES_DAYS.iter().zip(sales.iter_mut()) {
                if cutoff - day < *w {
                    s[i] += 1.0;
                }
            }
            first[i] = first[i].min(day);
            last[i] = last[i].max(day);
            item_weight[i] += log.weight[r] as f64;
            user_rows[u] += 1;
            user_last[u] = user_last[u].max(day);
            user_weight[u] += log.weight[r] as f64;
        }
        let since = |d: i64, none: i64| if d == none { f32::NAN } else { (cutoff - d) as f32 };
        let mean = |sum: f64, n: u32| if n == 0 { f32::NAN } else { (sum / n as f64) as f32 };
        let genres: Vec<Vec<u32>> = (0..n_items).map(|i| features.genres.get(i).cloned().unwrap_or_default()).collect();
        let sequences = train.rows_in_time();
        Context {
            item_log_count: item_rows.iter().map(|&c| (c as f32).ln_1p()).collect(),
            sales,
            item_age: first.iter().map(|&d| since(d, i64::MAX)).collect(),
            item_idle: last.iter().map(|&d| since(d, i64::MIN)).collect(),
            item_weight: item_weight.iter().zip(&item_rows).map(|(&s, &n)| mean(s, n)).collect(),
            group: (0..n_items).map(|i| features.groups.get(i).copied().unwrap_or(u32::MAX)).collect(),
            year_bucket: (0..n_items).map(|i| features.year_bucket.get(i).copied().unwrap_or(0)).collect(),
            n_year_buckets: features.n_year_buckets() as u32,
            genres,
            n_genres: features.genre_names.len(),
            user_log_rows: user_rows.iter().map(|&c| (c as f32).ln_1p()).collect(),
            user_idle: user_last.iter().map(|&d| since(d, i64::MIN)).collect(),
            user_weight: user_weight.iter().zip(&user_rows).map(|(&s, &n)| mean(s, n)).collect(),
            days: latest_items(train, KEPT_ITEMS),
            unit: unit_rows(vectors),
            transitions: transitions(train, &sequences),
            last_items: (0..n_users)
                .flat_map(|u| {
                    let latest = sequences.user(u).iter().rev().map(|&r| log.item[r as usize]);
                    latest.chain(std::iter::repeat(u32::MAX)).take(TRANSITION_RECENT)
                })
                .collect(),
        }
    }

    /// Appends one row per candidate of a user: `scores[r][k]` is retriever `r`'s score of
    /// candidate `k` (non-finite: not scored). `query.trained` names the user's row of the
    /// context (its history in `query.items` / `query.weights`).
    pub(crate) fn push_rows(&self, query: &Query<'_>, items: &[u32], scores: &[&[f32]], out: &mut Vec<f32>) {
        let per_retriever: Vec<Vec<[f32; 3]>> = scores.iter().map(|s| retriever_columns(s)).collect();
        let user = User::of(self, query);
        for (k, &item) in items.iter().enumerate() {
            for cols in &per_retriever {
                out.extend_from_slice(&cols[k]);
            }
            self.push_context(&user, item as usize, out);
        }
    }

    fn push_context(&self, user: &User, i: usize, out: &mut Vec<f32>) {
        let known = i < self.item_log_count.len();
        let item = |v: &[f32]| if known { v[i] } else { f32::NAN };
        let (s7, s28) = (item(&self.sales[1]), item(&self.sales[2]));
        let group = if known { self.group[i] } else { u32::MAX };
        let year = if known { self.year_bucket[i] } else { 0 };
        let bought = user.items.binary_search(&(i as u32)).ok();
        let days = user.days_items.binary_search(&(i as u32)).ok();
        let group_days = match group {
            u32::MAX => f32::NAN,
            g => user.group_days.binary_search_by_key(&g, |x| x.0).map_or(f32::NAN, |k| user.group_days[k].1),
        };
        let group_share = match group {
            u32::MAX => f32::NAN,
            g => user.group_counts.binary_search_by_key(&g, |x| x.0).map_or(0.0, |k| user.group_counts[k].1),
        };
        let genres = if known { &self.genres[i][..] } else { &[][..] };
        let genre_share = if genres.is_empty() || user.genre_share.is_empty() {
            f32::NAN
        } else {
            genres.iter().map(|&g| user.genre_share.get(g as usize).copied().unwrap_or(0.0)).sum::<f32>()
                / genres.len() as f32
        };
        let year_gap = match (year, user.mean_year) {
            (b, Some(y)) if b > 0 => (b as f32 - y).abs() / self.n_year_buckets.max(1) as f32,
            _ => f32::NAN,
        };
        out.extend_from_slice(&[
            item(&self.item_log_count),
            item(&self.sales[0]),
            s7,
            s28,
            s7 / (s28 / 4.0).max(1.0),
            item(&self.item_age),
            item(&self.item_idle),
            if year > 0 { year as f32 } else { f32::NAN },
            user.log_rows,
            user.items.len() as f32,
            user.idle,
            bought.map_or(0.0, |k| user.weights[k].max(0.0).ln_1p()),
            days.map_or(f32::NAN, |k| user.days[k]),
            days.map_or(f32::NAN, |k| 1.0 / (1.0 + user.recency[k] as f32)),
            group_days,
            group_share,
            genre_share,
            year_gap,
            item(&self.item_weight) / user.weight,
            self.cosine(&user.recent_unit, i),
            self.cosine(&user.last_unit, i),
            user.last_items.iter().map(|&j| self.transition(j, i)).sum::<f32>(),
            user.last_items.first().map_or(f32::NAN, |&j| self.transition(j, i)),
        ]);
    }

    /// The share of item `j`'s rows that item `i` followed (0: none kept).
    fn transition(&self, j: u32, i: usize) -> f32 {
        if j as usize >= self.transitions.n_rows() {
            return 0.0;
        }
        let (items, shares) = self.transitions.row(j as usize);
        items.binary_search(&(i as u32)).map_or(0.0, |k| shares[k])
    }

    /// The cosine between a unit vector and item `i`'s (NaN without vectors).
    fn cosine(&self, unit: &[f32], i: usize) -> f32 {
        if unit.is_empty() || i >= self.unit.rows() {
            return f32::NAN;
        }
        unit.iter().zip(self.unit.row(i)).map(|(a, b)| a * b).sum()
    }

    /// Saves the columns as tensors under `ctx.`.
    pub(crate) fn put(&self, t: &mut Tensors) {
        let f = |t: &mut Tensors, name: &str, v: &[f32]| t.insert(format!("ctx.{name}"), Tensor::f32(v.to_vec()));
        f(t, "item_log_count", &self.item_log_count);
        for (d, s) in SALES_DAYS.iter().zip(&self.sales) {
            f(t, &format!("sales_{d}d"), s);
        }
        f(t, "item_age", &self.item_age);
        f(t, "item_idle", &self.item_idle);
        f(t, "item_weight", &self.item_weight);
        f(t, "user_log_rows", &self.user_log_rows);
        f(t, "user_idle", &self.user_idle);
        f(t, "user_weight", &self.user_weight);
        t.insert("ctx.group".into(), Tensor::u32(self.group.clone()));
        t.insert("ctx.year_bucket".into(), Tensor::u32(self.year_bucket.clone()));
        t.insert("ctx.sizes".into(), Tensor::u32(vec![self.n_year_buckets, self.n_genres as u32]));
        crate::parts::put_lists(t, "ctx.genres", &self.genres);
        put_csr(t, "ctx.days", &self.days);
        put_csr(t, "ctx.transitions", &self.transitions);
        t.insert("ctx.last_items".into(), Tensor::u32(self.last_items.clone()));
        t.insert("ctx.unit".into(), Tensor::matrix(self.unit.rows(), self.unit.dim(), self.unit.as_slice().to_vec()));
    }

    /// Reads what [`Context::put`] wrote.
    pub(crate) fn read(r: &TensorReader<'_>) -> tandem_models::Result<Context> {
        let f = |name: &str| r.f32(&format!("ctx.{name}")).map(|(_, v)| v);
        let sizes = r.u32("ctx.sizes")?;
        let ctx = Context {
            item_log_count: f("item_log_count")?,
            sales: [f("sales_1d")?, f("sales_7d")?, f("sales_28d")?],
            item_age: f("item_age")?,
            item_idle: f("item_idle")?,
            item_weight: f("item_weight")?,
            group: r.u32("ctx.group")?,
            year_bucket: r.u32("ctx.year_bucket")?,
            n_year_buckets: sizes.first().copied().unwrap_or(1),
            genres: crate::parts::read_lists(r, "ctx.genres")?,
            n_genres: sizes.get(1).copied().unwrap_or(0) as usize,
            user_log_rows: f("user_log_rows")?,
            user_idle: f("user_idle")?,
            user_weight: f("user_weight")?,
            days: r.csr("ctx.days")?,
            unit: r.matrix("ctx.unit")?,
            transitions: r.csr("ctx.transitions")?,
            last_items: r.u32("ctx.last_items")?,
        };
        let n = ctx.item_log_count.len();
        let items_agree =
            [&ctx.sales[0], &ctx.sales[1], &ctx.sales[2], &ctx.item_age, &ctx.item_idle, &ctx.item_weight]
                .iter()
                .all(|v| v.len() == n)
                && ctx.group.len() == n
                && ctx.year_bucket.len() == n
                && ctx.genres.len() == n;
        let users_agree = ctx.user_idle.len() == ctx.user_log_rows.len()
            && ctx.user_weight.len() == ctx.user_log_rows.len()
            && ctx.last_items.len() == TRANSITION_RECENT * ctx.user_log_rows.len();
        if !items_agree || !users_agree || ctx.days.n_rows() != ctx.user_log_rows.len() {
            return Err(tandem_models::ModelError::Artifact {
                path: "gbdt ranker".into(),
                message: "feature columns of different lengths".into(),
            });
        }
        Ok(ctx)
    }
}

/// What one user's rows share, computed once per user.
struct User<'q> {
    items: &'q [u32],
    weights: &'q [f32],
    log_rows: f32,
    idle: f32,
    weight: f32,
    /// The kept latest items (ascending), days since each, and its recency rank (0 = latest).
    days_items: Vec<u32>,
    days: Vec<f32>,
    recency: Vec<usize>,
    /// Per group bought: fewest days since a purchase in it; share of the history in it.
    group_days: Vec<(u32, f32)>,
    group_counts: Vec<(u32, f32)>,
    genre_share: Vec<f32>,
    mean_year: Option<f32>,
    /// Unit mean vector of the latest items, and the latest item's (empty: none).
    recent_unit: Vec<f32>,
    last_unit: Vec<f32>,
    /// The latest items by time, the latest first (empty: an anonymous query's are its last
    /// items given).
    last_items: Vec<u32>,
}

impl<'q> User<'q> {
    fn of(ctx: &Context, query: &Query<'q>) -> User<'q> {
        let row = query.trained.map(|u| u as usize).filter(|&u| u < ctx.user_log_rows.len());
        let (days_items, days) = match row {
            Some(u) => {
                let (items, days) = ctx.days.row(u);
                (items.to_vec(), days.to_vec())
            }
            None => (Vec::new(), Vec::new()),
        };
        let mut order: Vec<usize> = (0..days.len()).collect();
        order.sort_by(|&a, &b| days[a].total_cmp(&days[b]).then(a.cmp(&b)));
        let mut recency = vec![0usize; days.len()];
        order.iter().enumerate().for_each(|(rank, &k)| recency[k] = rank);
        let group_of = |i: u32| ctx.group.get(i as usize).copied().unwrap_or(u32::MAX);
        let mut group_days: Vec<(u32, f32)> =
            days_items.iter().zip(&days).map(|(&i, &d)| (group_of(i), d)).filter(|x| x.0 != u32::MAX).collect();
        group_days.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        group_days.dedup_by_key(|x| x.0);
        let mut group_counts: Vec<(u32, f32)> = Vec::new();
        let mut groups: Vec<u32> = query.items.iter().map(|&i| group_of(i)).filter(|&g| g != u32::MAX).collect();
        groups.sort_unstable();
        for g in groups {
            match group_counts.last_mut() {
                Some(last) if last.0 == g => last.1 += 1.0,
                _ => group_counts.push((g, 1.0)),
            }
        }
        let n = query.items.len().max(1) as f32;
        group_counts.iter_mut().for_each(|x| x.1 /= n);
        let mut genre_share = vec![0f32; ctx.n_genres];
        let (mut years, mut n_years) = (0f32, 0usize);
        for &i in query.items {
            for &g in ctx.genres.get(i as usize).map_or(&[][..], |v| &v[..]) {
                if let Some(s) = genre_share.get_mut(g as usize) {
                    *s += 1.0 / n;
                }
            }
            if let Some(&b) = ctx.year_bucket.get(i as usize).filter(|&&b| b > 0) {
                years += b as f32;
                n_years += 1;
            }
        }
        let weight = match row {
            Some(u) => ctx.user_weight[u],
            None => query.weights.iter().sum::<f32>() / query.weights.len().max(1) as f32,
        };
        User {
            items: query.items,
            weights: query.weights,
            log_rows: row.map_or((query.items.len() as f32).ln_1p(), |u| ctx.user_log_rows[u]),
            idle: row.map_or(f32::NAN, |u| ctx.user_idle[u]),
            weight: if weight > 0.0 { weight } else { f32::NAN },
            group_days,
            group_counts,
            genre_share,
            mean_year: (n_years > 0).then(|| years / n_years as f32),
            recent_unit: ctx.unit_mean(order.iter().take(RECENT_SIMILARITY).map(|&k| days_items[k])),
            last_unit: ctx.unit_mean(order.iter().take(1).map(|&k| days_items[k])),
            last_items: match row {
                Some(u) => {
                    let latest = &ctx.last_items[u * TRANSITION_RECENT..(u + 1) * TRANSITION_RECENT];
                    latest.iter().copied().filter(|&i| i != u32::MAX).collect()
                }
                None => query.items.iter().rev().take(TRANSITION_RECENT).copied().collect(),
            },
            days_items,
            days,
            recency,
        }
    }
}

impl Context {
    /// The unit mean of `items`' unit vectors (empty without vectors or items).
    fn unit_mean(&self, items: impl Iterator<Item = u32>) -> Vec<f32> {
        let mut mean = vec![0f32; self.unit.dim()];
        for i in items.filter(|&i| (i as usize) < self.unit.rows()) {
            mean.iter_mut().zip(self.unit.row(i as usize)).for_each(|(m, v)| *m += v);
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm <= 1e-12 {
            return Vec::new();
        }
        mean.iter_mut().for_each(|m| *m /= norm);
        mean
    }
}

/// Counting-sort offsets of `keys` (each `< n`): where each key's entries start (n + 1).
fn offsets(keys: impl Iterator<Item = usize>, n: usize) -> Vec<usize> {
    let mut start = vec![0usize; n + 1];
    for k in keys {
        start[k + 1] += 1;
    }
    for k in 0..n {
        start[k + 1] += start[k];
    }
    start
}

/// The followers of each item over the users' sequences (see [`Context::transitions`]).
fn transitions(train: &TrainSet, seq: &UserRows) -> Csr {
    let log = &train.log;
    let n_items = train.n_items();
    let item_at = |k: usize| log.item[seq.all()[k] as usize];
    // The positions in `seq.all()` of each item's rows, grouped by item.
    let n = seq.all().len();
    let item_start = offsets((0..n).map(|k| item_at(k) as usize), n_items);
    let mut next = item_start.clone();
    let mut places = vec![0u32; n];
    for k in 0..n {
        let i = item_at(k) as usize;
        places[next[i]] = k as u32;
        next[i] += 1;
    }
    let rows: Vec<Vec<(u32, f32)>> = (0..n_items)
        .into_par_iter()
        .map(|j| {
            let at = &places[item_start[j]..item_start[j + 1]];
            let mut followers: Vec<u32> = Vec::new();
            for &k in at {
                let k = k as usize;
                let end = seq.end_of(k);
                let next = (k + 1..end.min(k + 1 + TRANSITION_WINDOW)).map(item_at);
                followers.extend(next.filter(|&i| i as usize != j));
            }
            followers.sort_unstable();
            let mut counts: Vec<(u32, f32)> = Vec::new();
            for i in followers {
                match counts.last_mut() {
                    Some(last) if last.0 == i => last.1 += 1.0,
                    _ => counts.push((i, 1.0)),
                }
            }
            counts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            counts.truncate(TRANSITION_KEEP);
            // Every item's list lives until the matrix is built: not the room of every follower.
            counts.shrink_to_fit();
            counts.sort_unstable_by_key(|c| c.0);
            let n = at.len().max(1) as f32;
            counts.iter_mut().for_each(|c| c.1 /= n);
            counts
        })
        .collect();
    drop(places);
    let nnz = rows.iter().map(Vec::len).sum();
    let (mut src, mut dst, mut val) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz), Vec::with_capacity(nnz));
    for (j, row) in rows.iter().enumerate() {
        for &(i, v) in row {
            src.push(j as u32);
            dst.push(i);
            val.push(v);
        }
    }
    Csr::from_triplets(n_items, n_items, &src, &dst, &val)
}

/// `vectors`' rows scaled to length 1 (a zero row stays zero; none: 0 wide).
fn unit_rows(vectors: Option<&Factors>) -> Factors {
    let Some(v) = vectors else { return Factors::zeros(0, 0) };
    let mut data = v.as_slice().to_vec();
    for row in data.chunks_exact_mut(v.dim().max(1)) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 1e-12 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    Factors::from_vec(v.rows(), v.dim(), data)
}

/// [`PER_RETRIEVER`] columns of one retriever's scores of a list.
fn retriever_columns(scores: &[f32]) -> Vec<[f32; 3]> {
    let lists = crate::parts::list_features(scores);
    scores.iter().zip(lists).map(|(&s, [z, rank])| if s.is_finite() { [s, z, rank] } else { [f32::NAN; 3] }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::{Interaction, Interactions};

    /// Hand-computed columns on a four-day log: sales windows, ages, the days since a
    /// customer's purchases, recency ranks, group features, and NaN where nothing exists.
    #[test]
    fn columns_on_a_small_log() {
        let mut log = Interactions::new();
        // (user, item, day): user 0 buys item 0 on day 0 and day 3, item 1 on day 2;
        // user 1 buys item 1 on day 3. Items 0 and 2 share group 0, item 1 is group 1.
        for (user, item, day) in [(0, 0, 0), (0, 1, 2), (0, 0, 3), (1, 1, 3)] {
            log.push(Interaction { user, item, time: day * DAY + 10, weight: 1.0 });
        }
        let train = TrainSet::new(log, 2, 3);
        let mut features = ItemFeatures::new(&[], &train);
        features.groups = vec![0, 1, 0];
        let items = Factors::from_vec(3, 2, vec![1.0, 0.0, 0.0, 2.0, 3.0, 0.0]);
        let ctx = Context::new(&train, &features, Some(&items));
        let layout = Layout { retrievers: 1 };
        let q = Query::from_row(&train.user_items, 0);
        let scores = [1.0, f32::NEG_INFINITY, 0.5];
        let mut rows = Vec::new();
        ctx.push_rows(&q, &[0, 1, 2], &[&scores], &mut rows);
        assert_eq!(rows.len(), 3 * layout.width());
        let names = layout.names(&["als".into()]);
        let col = |k: usize, name: &str| rows[k * layout.width() + names.iter().position(|n| n == name).unwrap()];
        assert_eq!(col(0, "als#0.score"), 1.0);
        assert!(col(1, "als#0.score").is_nan() && col(1, "als#0.rank").is_nan(), "not scored: missing");
        assert_eq!(col(0, "item.sales_1d"), 1.0, "day 3 is the cutoff day");
        assert_eq!(col(1, "item.sales_7d"), 2.0);
        assert_eq!(col(0, "item.age_days"), 3.0);
        assert_eq!(col(1, "item.idle_days"), 0.0);
        assert!(col(2, "item.age_days").is_nan(), "never sold");
        assert_eq!(col(0, "pair.days_since_bought"), 0.0);
        assert_eq!(col(1, "pair.days_since_bought"), 1.0);
        assert!(col(2, "pair.days_since_bought").is_nan());
        assert_eq!(col(0, "pair.recency_rank"), 1.0, "the latest purchase ranks 0");
        assert_eq!(col(1, "pair.recency_rank"), 0.5);
        assert_eq!(col(2, "pair.group_days_since"), 0.0, "item 0 of the same group, bought on the last day");
        assert_eq!(col(2, "pair.group_share"), 0.5, "one of the two distinct items");
        assert_eq!(col(0, "pair.log_weight"), 2f32.ln_1p(), "bought twice");
        assert_eq!(col(0, "user.idle_days"), 0.0);
        assert_eq!(col(0, "user.distinct_items"), 2.0);
        // Latest items 0 then 1: their unit mean is (1, 1)/√2; item 2 points along item 0.
        assert!((col(2, "pair.recent_similarity") - 0.5f32.sqrt()).abs() < 1e-6);
        assert_eq!(col(2, "pair.last_similarity"), 1.0, "the latest item is item 0");
        // Sequences: user 0 bought 0, 1, 0; user 1 bought 1. Item 0's two rows: item 1 follows
        // one of them (itself is not counted); item 1's two rows: item 0 follows one.
        assert_eq!(col(1, "pair.transition_last"), 0.5, "the latest row is item 0; 1 follows it once in 2");
        assert_eq!(col(1, "pair.transition_recent"), 1.0, "rows 0, 1, 0: 0.5 + 0 + 0.5");
        assert_eq!(col(0, "pair.transition_recent"), 0.5, "only after item 1");
        assert_eq!(col(2, "pair.transition_recent"), 0.0, "never followed anything");
        // An anonymous history: no recency, no idle days.
        let anon = Query { trained: None, items: &[1], weights: &[1.0] };
        rows.clear();
        ctx.push_rows(&anon, &[0], &[&[0.3]], &mut rows);
        assert!(rows[names.iter().position(|n| n == "user.idle_days").unwrap()].is_nan());
        // Saved and read back.
        let mut t = Tensors::new();
        ctx.put(&mut t);
        // NaN marks what does not exist: compared as text, NaN equals NaN.
        assert_eq!(format!("{:?}", Context::read(&TensorReader::new(&t, "gbdt")).unwrap()), format!("{ctx:?}"));
    }
}
