//! The ranking metrics of SPEC §6, for one user's ranked list.
//!
//! Binary relevance; `T` = the user's held-out items; `p` = 1-based position.
//! - HR@K = 1 if any hit in the top K. Precision@K = hits / K. Recall@K = hits / |T|.
//! - NDCG@K = sum over hits at p <= K of 1/log2(p+1), over sum_{p=1..min(K,|T|)} 1/log2(p+1).
//! - MRR@K = 1/p of the first hit within the top K, else 0.
//! - MAP@K = sum over hits at p <= K of (hits in top p)/p, over min(K, |T|).
//!
//! A predicted item that appears again later in the list is a hit only at its first position:
//! a duplicate cannot score twice (and still takes its slot).

use serde::Serialize;

/// One of the six metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Metric {
    /// Normalised discounted cumulative gain.
    Ndcg,
    /// Hit rate.
    Hr,
    /// Precision.
    Precision,
    /// Recall.
    Recall,
    /// Mean reciprocal rank.
    Mrr,
    /// Mean average precision.
    Map,
}

impl Metric {
    /// All metrics, in report order.
    pub const ALL: [Metric; 6] =
        [Metric::Ndcg, Metric::Hr, Metric::Precision, Metric::Recall, Metric::Mrr, Metric::Map];

    /// The name used in reports (`NDCG`, `HR`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Ndcg => "NDCG",
            Metric::Hr => "HR",
            Metric::Precision => "Precision",
            Metric::Recall => "Recall",
            Metric::Mrr => "MRR",
            Metric::Map => "MAP",
        }
    }

    /// `NAME@k`.
    pub fn at(self, k: usize) -> String {
        format!("{}@{k}", self.name())
    }
}

/// A metric at a cut-off, as configs, flags and reports write it (`NDCG@10`): parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricAt {
    /// The metric.
    pub metric: Metric,
    /// The cut-off K (1 to 100,000).
    pub k: usize,
}

impl MetricAt {
    /// `metric` at `k`.
    pub fn new(metric: Metric, k: usize) -> Self {
        MetricAt { metric, k }
    }
}

impl std::fmt::Display for MetricAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.metric.name(), self.k)
    }
}

impl std::str::FromStr for MetricAt {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let names = Metric::ALL.map(|m| m.name());
        let parsed = s.split_once('@').and_then(|(n, k)| {
            let metric = Metric::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(n))?;
            let k = k.parse::<usize>().ok().filter(|k| (1..=100_000).contains(k))?;
            Some(MetricAt { metric, k })
        });
        parsed.ok_or_else(|| {
            format!("'{s}' is not a metric: use NAME@K with NAME one of {} and K from 1 to 100000", names.join(", "))
        })
    }
}

impl Serialize for MetricAt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MetricAt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Values of every metric at one K (indexed like [`Metric::ALL`]).
pub type MetricValues = [f64; 6];

/// Computes every metric at each K in `ks` for one user's ranked list. `truth` must be sorted
/// and free of duplicates. Returns `None` when `truth` is empty (such users are not averaged).
pub fn user_metrics(ranked: &[u32], truth: &[u32], ks: &[usize]) -> Option<Vec<MetricValues>> {
    let max_k = ks.iter().copied().max().unwrap_or(0);
    let mut counted: Vec<u32> = Vec::new();
    let mut hits = Vec::new();
    for (idx, i) in ranked.iter().take(max_k).enumerate() {
        if truth.binary_search(i).is_ok() && !counted.contains(i) {
            counted.push(*i);
            hits.push(idx + 1);
        }
    }
    metrics_at_positions(&hits, truth.len(), ks)
}

/// Computes every metric at each K in `ks` from the 1-based positions (ascending, distinct) at
/// which `n_truth` held-out items were ranked; items never ranked are simply absent. Returns
/// `None` when `n_truth` is 0.
pub fn metrics_at_positions(hits: &[usize], n_truth: usize, ks: &[usize]) -> Option<Vec<MetricValues>> {
    if n_truth == 0 {
        return None;
    }
    debug_assert!(hits.windows(2).all(|w| w[0] < w[1]) && hits.len() <= n_truth);
    let t = n_truth;
    Some(
        ks.iter()
            .map(|&k| {
                let (mut found, mut dcg, mut ap) = (0usize, 0f64, 0f64);
                for &p in hits.iter().take_while(|&&p| p <= k) {
                    found += 1;
                    dcg += 1.0 / ((p + 1) as f64).log2();
                    ap += found as f64 / p as f64;
                }
                let first = hits.first().filter(|&&p| p <= k);
                let ideal = k.min(t);
                let idcg: f64 = (1..=ideal).map(|p| 1.0 / ((p + 1) as f64).log2()).sum();
                let mut v = [0f64; 6];
                v[0] = if idcg > 0.0 { dcg / idcg } else { 0.0 };
                v[1] = (found > 0) as u8 as f64;
                v[2] = if k > 0 { found as f64 / k as f64 } else { 0.0 };
                v[3] = found as f64 / t as f64;
                v[4] = first.map_or(0.0, |&p| 1.0 / p as f64);
                v[5] = if ideal > 0 { ap / ideal as f64 } else { 0.0 };
                v
            })
            .collect(),
    )
}

/// Sums per-user metric values and averages them over the users counted.
#[derive(Debug, Clone, Default)]
pub struct MetricSums {
    sums: Vec<MetricValues>,
    users: usize,
}

impl MetricSums {
    /// An accumulator for `n_ks` cut-offs.
    pub fn new(n_ks: usize) -> Self {
        MetricSums { sums: vec![[0.0; 6]; n_ks], users: 0 }
    }

    /// Adds one user's values.
    pub fn add(&mut self, values: &[MetricValues]) {
        for (s, v) in self.sums.iter_mut().zip(values) {
            for (a, b) in s.iter_mut().zip(v) {
                *a += b;
            }
        }
        self.users += 1;
    }

    /// Users counted.
    pub fn users(&self) -> usize {
        self.users
    }

    /// Mean of each metric at each K (0 when no user was counted).
    pub fn means(&self) -> Vec<MetricValues> {
        let n = self.users.max(1) as f64;
        self.sums.iter().map(|s| s.map(|x| x / n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn at(ranked: &[u32], truth: &[u32], k: usize) -> MetricValues {
        user_metrics(ranked, truth, &[k]).unwrap()[0]
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    #[test]
    fn hits_at_positions_two_and_four() {
        // T = {2, 4, 9}; ranked 1,2,3,4,5: hits at p = 2 and 4.
        let v = at(&[1, 2, 3, 4, 5], &[2, 4, 9], 5);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!(close(v[0], dcg / idcg), "NDCG {}", v[0]);
        assert!(close(v[1], 1.0));
        assert!(close(v[2], 2.0 / 5.0));
        assert!(close(v[3], 2.0 / 3.0));
        assert!(close(v[4], 0.5));
        // AP: (1/2 + 2/4) / min(5, 3)
        assert!(close(v[5], (0.5 + 0.5) / 3.0));
    }

    #[test]
    fn more_held_out_items_than_k() {
        // |T| = 4 > K = 2; one hit at p = 1.
        let v = at(&[7, 8, 9], &[1, 2, 3, 7], 2);
        assert!(close(v[0], 1.0 / (1.0 + 1.0 / 3f64.log2())));
        assert!(close(v[2], 0.5));
        assert!(close(v[3], 0.25));
        assert!(close(v[4], 1.0));
        assert!(close(v[5], 1.0 / 2.0), "MAP divides by min(K, |T|) = 2");
    }

    #[test]
    fn no_hit_scores_zero() {
        let v = at(&[1, 2, 3], &[4], 3);
        assert_eq!(v, [0.0; 6]);
    }

    #[test]
    fn user_without_held_out_items_is_skipped() {
        assert!(user_metrics(&[1, 2], &[], &[10]).is_none());
        let mut sums = MetricSums::new(1);
        sums.add(&user_metrics(&[1], &[1], &[1]).unwrap());
        if let Some(v) = user_metrics(&[1], &[], &[1]) {
            sums.add(&v);
        }
        assert_eq!(sums.users(), 1);
        assert!(close(sums.means()[0][1], 1.0), "averaged over users with held-out items only");
    }

    #[test]
    fn duplicate_predictions_count_once() {
        // Item 5 predicted twice: a hit only at p = 1; p = 2 is a wasted slot.
        let v = at(&[5, 5, 6], &[5, 6], 3);
        assert!(close(v[2], 2.0 / 3.0), "precision counts distinct hits");
        assert!(close(v[3], 1.0));
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!(close(v[0], dcg / idcg));
        assert!(close(v[5], (1.0 + 2.0 / 3.0) / 2.0));
    }

    #[test]
    fn several_ks_and_short_lists() {
        // A list shorter than K: missing positions are misses.
        let all = user_metrics(&[3], &[3, 4], &[1, 5]).unwrap();
        assert!(close(all[0][0], 1.0));
        assert!(close(all[1][2], 1.0 / 5.0));
        assert!(close(all[1][0], 1.0 / (1.0 + 1.0 / 3f64.log2())));
        assert!(close(all[1][5], 1.0 / 2.0));
    }

    #[test]
    fn metric_names_parse_once_and_round_trip() {
        let m: MetricAt = "NDCG@10".parse().unwrap();
        assert_eq!(m, MetricAt::new(Metric::Ndcg, 10));
        assert_eq!(m.to_string(), "NDCG@10");
        assert_eq!("map@12".parse::<MetricAt>().unwrap().to_string(), "MAP@12");
        for bad in ["NDCG", "NDCG@0", "NDCG@x", "AUC@10", "@10", "NDCG@1000000"] {
            let e = bad.parse::<MetricAt>().unwrap_err();
            assert!(e.contains(bad) && e.contains("NDCG, HR"), "{e}");
        }
        let json: MetricAt = serde_json::from_str("\"Recall@100\"").unwrap();
        assert_eq!(serde_json::to_string(&json).unwrap(), "\"Recall@100\"");
    }

    #[test]
    fn mrr_uses_first_hit_within_k_only() {
        assert!(close(at(&[1, 2, 3], &[3], 2)[4], 0.0));
        assert!(close(at(&[1, 2, 3], &[3], 3)[4], 1.0 / 3.0));
    }
}
