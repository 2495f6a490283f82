//! What a ranker knows about items beyond their ids: a year bucket, genres and standardised
//! log-popularity (nanoRecSys's item features). Built from the data set's item metadata and the
//! training matrix; items without metadata get the "unknown" bucket and no genres.

use serde::{Deserialize, Serialize};
use tandem_data::read::ItemInfo;
use tandem_models::TrainSet;

/// Year buckets at most (quantiles of the known years), plus bucket 0 for "unknown".
const YEAR_BUCKETS: usize = 10;

/// Per-item features, indexed like the training matrix's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemFeatures {
    /// Year bucket per item: 0 = unknown, 1..=buckets by quantiles of the known years.
    pub year_bucket: Vec<u32>,
    /// Upper year of each bucket 1.. (a year goes to the first bucket whose bound it does not exceed).
    pub year_bounds: Vec<i32>,
    /// Genre ids per item.
    pub genres: Vec<Vec<u32>>,
    /// Genre names by id.
    pub genre_names: Vec<String>,
    /// log(1 + training count), standardised to mean 0 and standard deviation 1 over items.
    pub log_pop: Vec<f32>,
    /// The standardised log-popularity of an item with no training rows (what an unknown item
    /// shows).
    pub log_pop_zero: f32,
    /// Training count per item.
    pub counts: Vec<u32>,
    /// Group id per item (`u32::MAX`: none): the `product_group_name` attribute where items have
    /// one (H&M), else the first genre. What the GBDT ranker's same-group features compare.
    #[serde(default)]
    pub groups: Vec<u32>,
}

/// The item attribute that names an item's group, where the metadata has it.
pub const GROUP_ATTRIBUTE: &str = "product_group_name";

impl ItemFeatures {
    /// Features of `train`'s items; `info[i]` describes item `i` (shorter or empty: unknown).
    pub fn new(info: &[ItemInfo], train: &TrainSet) -> Self {
        let n = train.n_items();
        let mut counts = vec![0u32; n];
        for &i in train.user_items.indices() {
            counts[i as usize] += 1;
        }
        let logs: Vec<f64> = counts.iter().map(|&c| (1.0 + c as f64).ln()).collect();
        let mean = logs.iter().sum::<f64>() / n.max(1) as f64;
        let std = (logs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n.max(1) as f64).sqrt().max(1e-9);
        let log_pop = logs.iter().map(|v| ((v - mean) / std) as f32).collect();
        let log_pop_zero = (-mean / std) as f32;

        let years: Vec<Option<i32>> = (0..n).map(|i| info.get(i).and_then(|x| x.year)).collect();
        let mut known: Vec<i32> = years.iter().flatten().copied().collect();
        known.sort_unstable();
        let mut year_bounds: Vec<i32> = (1..=YEAR_BUCKETS)
            .filter_map(|q| known.get((q * known.len()).div_ceil(YEAR_BUCKETS).max(1) - 1))
            .copied()
            .collect();
        year_bounds.dedup();
        let year_bucket = years
            .iter()
            .map(|y| match y {
                None => 0,
                Some(y) => 1 + year_bounds.iter().position(|b| y <= b).unwrap_or(year_bounds.len() - 1) as u32,
            })
            .collect();

        let mut genre_names: Vec<String> = Vec::new();
        let mut genres = Vec::with_capacity(n);
        for i in 0..n {
            let mut ids = Vec::new();
            for g in info.get(i).map_or(&[][..], |x| &x.genres[..]) {
                let id = match genre_names.iter().position(|x| x == g) {
                    Some(k) => k,
                    None => {
                        genre_names.push(g.clone());
                        genre_names.len() - 1
                    }
                };
                ids.push(id as u32);
            }
            genres.push(ids);
        }
        let mut group_ids: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        let by_attribute = info.iter().any(|x| x.attributes.iter().any(|(k, _)| &**k == GROUP_ATTRIBUTE));
        let groups = (0..n)
            .map(|i| {
                let name = info.get(i).and_then(|x| match by_attribute {
                    true => x.attributes.iter().find(|(k, _)| &**k == GROUP_ATTRIBUTE).map(|(_, v)| &**v),
                    false => x.genres.first().map(String::as_str),
                });
                match name {
                    None => u32::MAX,
                    Some(name) => {
                        let next = group_ids.len() as u32;
                        *group_ids.entry(name).or_insert(next)
                    }
                }
            })
            .collect();
        ItemFeatures { year_bucket, year_bounds, genres, genre_names, log_pop, log_pop_zero, counts, groups }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.log_pop.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.log_pop.is_empty()
    }

    /// Year buckets including "unknown".
    pub fn n_year_buckets(&self) -> usize {
        self.year_bounds.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::{Interaction, Interactions};

    #[test]
    fn buckets_genres_and_popularity() {
        let mut log = Interactions::new();
        for (user, item) in [(0, 0), (1, 0), (2, 0), (0, 1)] {
            log.push(Interaction { user, item, time: 0, weight: 1.0 });
        }
        let train = TrainSet::new(log, 3, 4);
        let info = |year, genres: &[&str]| ItemInfo {
            year,
            genres: genres.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        };
        let f = ItemFeatures::new(
            &[info(Some(1990), &["Drama"]), info(Some(2000), &["Comedy", "Drama"]), info(None, &[])],
            &train,
        );
        assert_eq!(f.len(), 4);
        assert_eq!(f.counts, vec![3, 1, 0, 0]);
        assert_eq!(f.genre_names, vec!["Drama", "Comedy"]);
        assert_eq!(f.genres, vec![vec![0], vec![1, 0], vec![], vec![]]);
        assert_eq!(f.year_bucket[2], 0, "no year: unknown");
        assert_eq!(f.year_bucket[3], 0, "no metadata: unknown");
        assert!(f.year_bucket[0] >= 1 && f.year_bucket[1] > f.year_bucket[0]);
        let mean: f32 = f.log_pop.iter().sum::<f32>() / 4.0;
        assert_eq!(f.log_pop_zero, f.log_pop[3], "no rows");
        assert!(mean.abs() < 1e-5 && f.log_pop[0] > f.log_pop[1] && f.log_pop[1] > f.log_pop[2]);
    }
}
