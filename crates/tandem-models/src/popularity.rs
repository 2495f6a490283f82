//! Popularity: global counts, a recent window, or time-decayed counts; overall, or within the
//! user's segment (a user attribute such as an age band) — the H&M recipe's segment popularity.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use tandem_data::Side;

use crate::artifact::{Tensor, TensorReader, Tensors};
use crate::error::{within, ModelError, Result};
use crate::kind::{saved_params, Fit, ModelParams};
use crate::retriever::{Query, Retriever, TrainSet};
use crate::topk::{top_k, Scored};

const DAY: i64 = 86_400;

/// Which popularity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PopularityMode {
    /// Number of training rows per item.
    #[default]
    Global,
    /// Rows in the last `window_days` days of training (ties broken by global count).
    Recent,
    /// Sum over rows of 1 / days-ago, where the last training day is 1 day ago.
    Decay,
}

/// Parameters of [`Popularity`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PopularityParams {
    /// `global` (default), `recent` or `decay`.
    pub mode: PopularityMode,
    /// Window of `recent`, in days (default 7, >= 1).
    pub window_days: u32,
    /// Count within each user's segment: the user attribute naming it (e.g. `age`); users
    /// without it, and new users, get the overall list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Segments of a numeric attribute are buckets of this width (`age` with 10: 20-29,
    /// 30-39, ...); without it each value is a segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<f64>,
}

impl Default for PopularityParams {
    fn default() -> Self {
        PopularityParams { mode: PopularityMode::Global, window_days: 7, segment: None, bucket: None }
    }
}

/// Scores every item by its popularity in training: one list for everyone, or one per segment.
#[derive(Debug, Clone)]
pub struct Popularity {
    params: PopularityParams,
    /// Overall scores, then each segment's (`n_items` each).
    scores: Vec<f32>,
    /// Per list (overall, then segments): every item, best first — the list queries walk.
    order: Vec<Vec<Scored>>,
    /// Each trained user's list (0 = overall); empty without segments.
    list_of_user: Vec<u32>,
}

impl PopularityParams {
    /// Counts the training log (overall: `side` is read only with `segment`).
    pub fn fit(&self, train: &TrainSet) -> Result<Popularity> {
        self.fit_segmented(train, Side::default())
    }

    /// Counts the training log, within each user's segment when `segment` names a user
    /// attribute of `side.users`.
    pub fn fit_segmented(&self, train: &TrainSet, side: Side<'_>) -> Result<Popularity> {
        self.check()?;
        let log = &train.log;
        if log.is_empty() {
            return Err(ModelError::EmptyTrainingData { model: "popularity" });
        }
        // List 0 is everyone's; with segments, list s + 1 is segment s's.
        let list_of_user = match &self.segment {
            Some(attribute) => self.segments(attribute, train.n_users(), side)?,
            None => Vec::new(),
        };
        let n_lists = list_of_user.iter().copied().max().unwrap_or(0) as usize + 1;
        let n = train.n_items();
        let last_day = log.max_time().unwrap_or(0).div_euclid(DAY);
        let from = last_day - self.window_days as i64 + 1;
        // Rows per item overall, and each list's counts (weighted by the mode).
        let mut global = vec![0f64; n];
        let mut counted = vec![0f64; n * n_lists];
        for r in 0..log.len() {
            let (i, day) = (log.item[r] as usize, log.time[r].div_euclid(DAY));
            let weight = match self.mode {
                PopularityMode::Global => 1.0,
                PopularityMode::Recent => (day >= from) as u8 as f64,
                PopularityMode::Decay => 1.0 / (last_day - day + 1).max(1) as f64,
            };
            global[i] += 1.0;
            counted[i] += weight;
            let segment = list_of_user.get(log.user[r] as usize).map_or(0, |&l| l as usize);
            if segment > 0 {
                counted[segment * n + i] += weight;
            }
        }
        // Recent counts are integers; a fraction < 1 from the global count sends ties to the
        // overall more popular item. A segment's ties go to the overall order the same way.
        let overall_max = global.iter().copied().fold(0.0, f64::max) + 1.0;
        let overall: Vec<f64> = match self.mode {
            PopularityMode::Recent => counted[..n].iter().zip(&global).map(|(c, g)| c + g / overall_max).collect(),
            _ => counted[..n].to_vec(),
        };
        let overall_top = overall.iter().copied().fold(0.0, f64::max) + 1.0;
        let mut scores: Vec<f32> = overall.iter().map(|&s| s as f32).collect();
        for list in 1..n_lists {
            let c = &counted[list * n..(list + 1) * n];
            scores.extend(c.iter().zip(&overall).map(|(c, o)| (c + o / overall_top) as f32));
        }
        Ok(Popularity::from_scores(self.clone(), scores, list_of_user))
    }

    /// Each user's list: 1 + their segment's index, or 0 without the attribute.
    fn segments(&self, attribute: &str, n_users: usize, side: Side<'_>) -> Result<Vec<u32>> {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut unreadable = None;
        let lists = (0..n_users)
            .map(|u| {
                let info = side.users.get(u).map_or(&[][..], |i| &i.attributes[..]);
                let Some((_, value)) = info.iter().find(|(k, _)| &**k == attribute) else { return 0 };
                let name = match self.bucket {
                    None => value.to_string(),
                    Some(w) => match value.trim().parse::<f64>() {
                        Ok(v) => format!("{}", (v / w).floor() * w),
                        Err(_) => {
                            unreadable.get_or_insert_with(|| value.to_string());
                            return 0;
                        }
                    },
                };
                let next = ids.len() as u32 + 1;
                *ids.entry(name).or_insert(next)
            })
            .collect();
        if ids.is_empty() {
            let why = unreadable.map_or("no user has it".to_string(), |v| format!("'{v}' is not a number"));
            return Err(ModelError::invalid("segment", attribute, format!("a user attribute to segment by: {why}")));
        }
        Ok(lists)
    }
}

impl Popularity {
    /// Rebuilds a model from its scores (overall, then each segment's) and each user's list.
    pub fn from_scores(params: PopularityParams, scores: Vec<f32>, list_of_user: Vec<u32>) -> Self {
        let n_lists = list_of_user.iter().copied().max().unwrap_or(0) as usize + 1;
        let n = scores.len() / n_lists;
        let order = scores.chunks(n.max(1)).map(|s| top_k(s, n, |_| true)).collect();
        Popularity { params, scores, order, list_of_user }
    }

    /// The overall score of every item.
    pub fn scores(&self) -> &[f32] {
        &self.scores[..self.n_items()]
    }

    /// The list `query` walks: its trained user's segment's, or the overall one.
    fn list(&self, query: &Query<'_>) -> usize {
        query.trained.and_then(|u| self.list_of_user.get(u as usize)).map_or(0, |&l| l as usize)
    }
}

impl Retriever for Popularity {
    fn n_items(&self) -> usize {
        self.order[0].len()
    }

    crate::kind_and_params!("popularity");

    fn artifact(&self) -> crate::artifact::Artifact {
        crate::artifact::Artifact {
            kind: "popularity",
            params: self.params(),
            tensors: [
                ("scores".to_string(), Tensor::f32(self.scores.clone())),
                ("list_of_user".to_string(), Tensor::u32(self.list_of_user.clone())),
            ]
            .into(),
        }
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) {
        let (n, list) = (self.n_items(), self.list(query));
        out.copy_from_slice(&self.scores[list * n..(list + 1) * n]);
    }

    fn score_items(&self, query: &Query<'_>, items: &[u32], out: &mut [f32]) {
        let (n, list) = (self.n_items(), self.list(query));
        let scores = &self.scores[list * n..(list + 1) * n];
        for (o, &i) in out.iter_mut().zip(items) {
            *o = scores.get(i as usize).copied().unwrap_or(f32::NEG_INFINITY);
        }
    }

    fn recommend(&self, query: &Query<'_>, k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Scored> {
        self.order[self.list(query)].iter().filter(|s| keep(s.item)).take(k).copied().collect()
    }
}

impl ModelParams for PopularityParams {
    /// Checks the parameters' ranges.
    fn check(&self) -> Result<()> {
        within("window_days", self.window_days, 1..)?;
        self.bucket
            .map_or(Ok(()), |b| within("bucket", b, (std::ops::Bound::Excluded(0.0), std::ops::Bound::Unbounded)))
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(self.fit_segmented(fit.train, fit.side)?))
    }

    fn load(kind: &str, params: serde_json::Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let p = saved_params(kind, params)?;
        let r = TensorReader::new(tensors, "popularity");
        // Models saved before segments have no list_of_user: everyone walks the overall list.
        let lists = if tensors.contains_key("list_of_user") { r.u32("list_of_user")? } else { Vec::new() };
        let scores = r.f32("scores")?.1;
        let n_lists = lists.iter().copied().max().unwrap_or(0) as usize + 1;
        if scores.is_empty() || scores.len() % n_lists != 0 {
            return Err(ModelError::Artifact {
                path: "popularity model".into(),
                message: "scores do not fit the segments".into(),
            });
        }
        Ok(Box::new(Popularity::from_scores(p, scores, lists)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::{Interaction, Interactions};

    fn train() -> TrainSet {
        let mut log = Interactions::new();
        // item 0: 3 rows long ago; item 1: 2 rows on the last day; item 2: 1 row, 1 day before the last.
        for (item, day) in [(0, 0), (0, 0), (0, 1), (1, 10), (1, 10), (2, 9)] {
            log.push(Interaction { user: 0, item, time: day * DAY + 5, weight: 1.0 });
        }
        TrainSet::new(log, 1, 4)
    }

    #[test]
    fn global_recent_and_decay() {
        let t = train();
        let g = PopularityParams::default().fit(&t).unwrap();
        assert_eq!(g.scores(), &[3.0, 2.0, 1.0, 0.0]);
        let r =
            PopularityParams { mode: PopularityMode::Recent, window_days: 2, ..Default::default() }.fit(&t).unwrap();
        let order = r.recommend(&Query { trained: None, items: &[], weights: &[] }, 4, &|_| true);
        assert_eq!(order.iter().map(|s| s.item).collect::<Vec<_>>(), vec![1, 2, 0, 3]);
        let d = PopularityParams { mode: PopularityMode::Decay, window_days: 7, ..Default::default() }.fit(&t).unwrap();
        // item 0: 2/11 + 1/10; item 1: 2/1; item 2: 1/2.
        let want = [2.0 / 11.0 + 0.1, 2.0, 0.5, 0.0];
        for (s, w) in d.scores().iter().zip(want) {
            assert!((s - w as f32).abs() < 1e-6);
        }
    }

    #[test]
    fn segments_count_within_a_user_attribute_and_round_trip() {
        use tandem_data::read::ItemInfo;
        let mut log = Interactions::new();
        // Users 0, 1 (ages 23, 27) buy item 2; user 2 (age 41) buys item 1 twice; item 0 is
        // bought by users 3 and 4, who have no age.
        for (user, item) in [(0, 2), (1, 2), (2, 1), (2, 1), (3, 0), (4, 0), (4, 0)] {
            log.push(Interaction { user, item, time: 0, weight: 1.0 });
        }
        let t = TrainSet::new(log, 5, 3);
        let age = |a: &str| ItemInfo { attributes: vec![("age".into(), a.into())], ..Default::default() };
        let users = vec![age("23"), age("27"), age("41"), ItemInfo::default(), ItemInfo::default()];
        let side = Side { items: &[], users: &users };
        let p = PopularityParams { segment: Some("age".into()), bucket: Some(10.0), ..Default::default() };
        let m = p.fit_segmented(&t, side).unwrap();
        let first = |u: u32| {
            m.recommend(&Query::from_row(&t.user_items, u), 3, &|_| true).iter().map(|s| s.item).collect::<Vec<_>>()
        };
        assert_eq!(first(0), vec![2, 0, 1], "the twenties bought item 2; then the overall order");
        assert_eq!(first(2), vec![1, 0, 2]);
        assert_eq!(first(3), vec![0, 1, 2], "no age: overall (item 0: 3 rows, item 1 and 2: 2 each)");
        let anonymous = m.recommend(&Query { trained: None, items: &[1], weights: &[1.0] }, 1, &|_| true);
        assert_eq!(anonymous[0].item, 0);
        let a = m.artifact();
        let back = PopularityParams::load("popularity", a.params, &a.tensors).unwrap();
        for u in 0..5 {
            let (mut x, mut y) = (vec![0f32; 3], vec![0f32; 3]);
            m.score(&Query::from_row(&t.user_items, u), &mut x);
            back.score(&Query::from_row(&t.user_items, u), &mut y);
            assert_eq!(x, y);
        }
        let text = PopularityParams { segment: Some("age".into()), bucket: Some(10.0), ..Default::default() };
        let users = vec![age("young"); 5];
        let e = text.fit_segmented(&t, Side { items: &[], users: &users }).unwrap_err().to_string();
        assert!(e.contains("'young' is not a number"), "{e}");
        let e = PopularityParams { segment: Some("club".into()), ..Default::default() }
            .fit_segmented(&t, side)
            .unwrap_err();
        assert!(e.to_string().contains("no user has it"), "{e}");
    }

    #[test]
    fn conformance_suite() {
        let t = crate::testing::checkerboard();
        for mode in [PopularityMode::Global, PopularityMode::Recent, PopularityMode::Decay] {
            let m = PopularityParams { mode, window_days: 7, ..Default::default() }.fit(&t).unwrap();
            crate::testing::conformance::<PopularityParams>(&m, &t, 0.0);
        }
    }

    #[test]
    fn rejects_a_zero_window() {
        let e = PopularityParams { mode: PopularityMode::Recent, window_days: 0, ..Default::default() }
            .fit(&train())
            .unwrap_err();
        assert!(e.to_string().contains("window_days"));
    }
}
