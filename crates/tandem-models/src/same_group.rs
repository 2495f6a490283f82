//! `same_group`: the best sellers of the groups the customer bought from lately — an item
//! attribute (H&M's `product_group_name`) turned into a candidate source. The user's latest
//! `latest` items vote for their groups; each voted group proposes its `per_group` items most
//! bought in the last `window_days` days. An item scores its group's votes plus its recent
//! popularity scaled below 1 (so votes order groups, popularity orders within them); items of
//! no voted group score -inf (not proposed).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tandem_data::{Csr, Side};

use crate::artifact::{put_csr, Artifact, Tensor, TensorReader, Tensors};
use crate::error::{within, ModelError, Result};
use crate::kind::{saved_params, Dim, Fit, ModelParams};
use crate::popularity::{PopularityMode, PopularityParams};
use crate::recent::latest_items;
use crate::retriever::{Query, Retriever, TrainSet};
use crate::topk::Scored;

/// An item without the attribute.
const NO_GROUP: u32 = u32::MAX;

/// Parameters of [`SameGroup`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SameGroupParams {
    /// The item attribute that groups items (default `product_group_name`).
    pub attribute: String,
    /// The user's latest distinct items that vote for groups (default 10, >= 1).
    pub latest: usize,
    /// Days of popularity that order a group's items (default 7, >= 1).
    pub window_days: u32,
    /// Items each voted group proposes (default 50, >= 1).
    pub per_group: usize,
}

impl Default for SameGroupParams {
    fn default() -> Self {
        SameGroupParams { attribute: "product_group_name".into(), latest: 10, window_days: 7, per_group: 50 }
    }
}

/// Groups, their best sellers, and each user's latest items.
#[derive(Debug, Clone)]
pub struct SameGroup {
    params: SameGroupParams,
    /// Group of each item ([`NO_GROUP`] without the attribute).
    group: Vec<u32>,
    /// Recent popularity of each item.
    popularity: Vec<f32>,
    /// Users x items: each user's latest items (days before the end as values).
    latest: Csr,
    /// Per group: its best sellers, best first, with scores in [0, 1).
    best: Vec<Vec<Scored>>,
}

impl SameGroupParams {
    /// Reads each item's group from `side.items` and counts recent sales.
    pub fn fit(&self, train: &TrainSet, side: Side<'_>) -> Result<SameGroup> {
        self.check()?;
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let group: Vec<u32> = (0..train.n_items())
            .map(|i| {
                let attributes = side.items.get(i).map_or(&[][..], |info| &info.attributes[..]);
                attributes.iter().find(|(k, _)| **k == *self.attribute).map_or(NO_GROUP, |(_, v)| {
                    let next = ids.len() as u32;
                    *ids.entry(&**v).or_insert(next)
                })
            })
            .collect();
        if ids.is_empty() {
            return Err(ModelError::invalid(
                "attribute",
                &self.attribute,
                format!("an attribute of the item metadata: none of the {} items has it", train.n_items()),
            ));
        }
        let recent =
            PopularityParams { mode: PopularityMode::Recent, window_days: self.window_days, ..Default::default() };
        let popularity = recent.fit(train)?.scores().to_vec();
        Ok(SameGroup::new(self.clone(), group, popularity, latest_items(train, self.latest)))
    }
}

impl SameGroup {
    fn new(params: SameGroupParams, group: Vec<u32>, popularity: Vec<f32>, latest: Csr) -> Self {
        let n_groups = group.iter().filter(|&&g| g != NO_GROUP).map(|&g| g as usize + 1).max().unwrap_or(0);
        let top = popularity.iter().copied().fold(0f32, f32::max) + 1.0;
        let mut best: Vec<Vec<Scored>> = vec![Vec::new(); n_groups];
        for (i, &g) in group.iter().enumerate() {
            if g != NO_GROUP {
                best[g as usize].push(Scored { item: i as u32, score: popularity[i] / top });
            }
        }
        for list in &mut best {
            list.sort_by(crate::topk::rank_order);
            list.truncate(params.per_group);
        }
        SameGroup { params, group, popularity, latest, best }
    }
}

impl crate::SparseScorer for SameGroup {
    /// The proposed items: the voted groups' best sellers, scored by votes + popularity.
    fn proposed(&self, query: &Query<'_>) -> Vec<Scored> {
        let items = match query.trained {
            Some(u) if (u as usize) < self.latest.n_rows() => self.latest.row(u as usize).0,
            _ => query.items,
        };
        let mut votes: Vec<(u32, f32)> = Vec::new();
        for &i in items {
            match self.group.get(i as usize) {
                Some(&g) if g != NO_GROUP => match votes.iter_mut().find(|v| v.0 == g) {
                    Some(v) => v.1 += 1.0,
                    None => votes.push((g, 1.0)),
                },
                _ => {}
            }
        }
        votes
            .iter()
            .flat_map(|&(g, n)| self.best[g as usize].iter().map(move |s| Scored { item: s.item, score: n + s.score }))
            .collect()
    }
}

impl Retriever for SameGroup {
    fn n_items(&self) -> usize {
        self.group.len()
    }

    crate::kind_and_params!("same_group");

    fn artifact(&self) -> Artifact {
        let mut tensors = Tensors::new();
        tensors.insert("group".into(), Tensor::u32(self.group.clone()));
        tensors.insert("popularity".into(), Tensor::f32(self.popularity.clone()));
        put_csr(&mut tensors, "latest", &self.latest);
        Artifact { kind: "same_group", params: self.params(), tensors }
    }

    crate::sparse_scoring!();
}

impl ModelParams for SameGroupParams {
    fn check(&self) -> Result<()> {
        within("latest", self.latest, 1..=1000)?;
        within("window_days", self.window_days, 1..)?;
        within("per_group", self.per_group, 1..)
    }

    fn fit(&self, fit: &mut Fit<'_>) -> Result<Box<dyn Retriever>> {
        Ok(Box::new(SameGroupParams::fit(self, fit.train, fit.side)?))
    }

    fn load(kind: &str, params: Value, tensors: &Tensors) -> Result<Box<dyn Retriever>> {
        let r = TensorReader::new(tensors, "same_group");
        let (group, popularity, latest) = (r.u32("group")?, r.f32("popularity")?.1, r.csr("latest")?);
        if popularity.len() != group.len() || latest.n_cols() != group.len() {
            return Err(ModelError::Artifact {
                path: "same_group model".into(),
                message: "tensor sizes differ".into(),
            });
        }
        Ok(Box::new(SameGroup::new(saved_params(kind, params)?, group, popularity, latest)))
    }

    fn space() -> Vec<Dim> {
        vec![
            Dim::int("latest", 1, 50, true),
            Dim::int("window_days", 1, 60, true),
            Dim::int("per_group", 10, 500, true),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recent::DAY;
    use crate::testing::{checkerboard, conformance};
    use tandem_data::read::ItemInfo;
    use tandem_data::{Interaction, Interactions};

    fn info(groups: &[&str]) -> Vec<ItemInfo> {
        let attr = |g: &str| vec![("product_group_name".into(), g.into())];
        groups
            .iter()
            .map(|g| ItemInfo { attributes: if g.is_empty() { vec![] } else { attr(g) }, ..Default::default() })
            .collect()
    }

    #[test]
    fn the_latest_items_groups_propose_their_recent_best_sellers() {
        // Items 0-2 shoes, 3-4 bags, 5 no group. Item 1 sells most lately, then 2, 0 (with user
        // 0's purchase); bag 4 over 3.
        let mut log = Interactions::new();
        let mut push = |user, item, day| log.push(Interaction { user, item, time: day * DAY, weight: 1.0 });
        for (item, n) in [(1, 4), (2, 3), (0, 1), (4, 2), (3, 1)] {
            (0..n).for_each(|k| push(8 + k, item, 10));
        }
        // User 0 bought bag 3 long ago, then shoe 0 and item 5 lately.
        push(0, 3, 0);
        push(0, 0, 9);
        push(0, 5, 9);
        let t = TrainSet::new(log, 12, 6);
        let side = info(&["shoes", "shoes", "shoes", "bags", "bags", ""]);
        let p = SameGroupParams { latest: 2, window_days: 7, per_group: 2, ..Default::default() };
        let m = p.fit(&t, Side::items(&side)).unwrap();
        let q = Query::from_row(&t.user_items, 0);
        // Latest 2: shoe 0 and item 5 (no group): shoes only, their two best sellers.
        let got: Vec<u32> = m.recommend(&q, 3, &|_| true).iter().map(|s| s.item).collect();
        assert_eq!(got[..2], [1, 2]);
        let all = SameGroupParams { latest: 3, ..p.clone() }.fit(&t, Side::items(&side)).unwrap();
        let got: Vec<u32> = all.recommend(&q, 4, &|_| true).iter().map(|s| s.item).collect();
        assert_eq!(got, vec![1, 2, 4, 3], "one vote each: shoes first by popularity, then bags");
        let e = SameGroupParams { attribute: "colour".into(), ..p }.fit(&t, Side::items(&side)).unwrap_err();
        assert!(e.to_string().contains("none of the 6 items has it"), "{e}");
    }

    #[test]
    fn conformance_suite() {
        let t = checkerboard();
        let side = info(&["a", "b", "a", "b", "a", "b", "a", "b", "a", "b"]);
        let m = SameGroupParams::default().fit(&t, Side::items(&side)).unwrap();
        conformance::<SameGroupParams>(&m, &t, 0.0);
    }
}
