//! A loaded data set: id maps, the interaction log and metadata.

use crate::read::{ItemInfo, LoadReport};
use crate::{IdMap, Interactions};

/// Everything read from a source: dense ids both ways, the log, metadata and what reading did.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// User ids.
    pub users: IdMap,
    /// Item ids.
    pub items: IdMap,
    /// The interaction log, in file order.
    pub interactions: Interactions,
    /// Metadata per item index (default where the source has none).
    pub item_info: Vec<ItemInfo>,
    /// Attributes per user index (default where the source has none).
    pub user_info: Vec<ItemInfo>,
    /// One report per file read.
    pub reports: Vec<LoadReport>,
}

/// Item and user metadata by dense index, as fitting reads them (either may be empty).
#[derive(Debug, Clone, Copy, Default)]
pub struct Side<'a> {
    /// Metadata per item index.
    pub items: &'a [ItemInfo],
    /// Attributes per user index.
    pub users: &'a [ItemInfo],
}

impl<'a> Side<'a> {
    /// Item metadata only.
    pub fn items(items: &'a [ItemInfo]) -> Self {
        Side { items, users: &[] }
    }
}

/// Counts that describe a data set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DatasetStats {
    /// Rows in the log.
    pub interactions: usize,
    /// Distinct users with at least one row.
    pub users: usize,
    /// Distinct items with at least one row.
    pub items: usize,
    /// Items known from metadata only.
    pub items_without_interactions: usize,
    /// interactions / (users * items).
    pub density: f64,
    /// First timestamp (unix seconds).
    pub first_time: Option<i64>,
    /// Last timestamp (unix seconds).
    pub last_time: Option<i64>,
    /// Median interactions per user.
    pub median_per_user: usize,
    /// Median interactions per item.
    pub median_per_item: usize,
}

impl Dataset {
    /// The item and user metadata.
    pub fn side(&self) -> Side<'_> {
        Side { items: &self.item_info, users: &self.user_info }
    }

    /// Number of user indices.
    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    /// Number of item indices (including items known only from metadata).
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// Summary counts.
    pub fn stats(&self) -> DatasetStats {
        let log = &self.interactions;
        let (users, items) = (log.count_users(), log.count_items());
        let median = |ids: &[u32], n: usize| {
            let mut c = vec![0usize; n];
            for &i in ids {
                c[i as usize] += 1;
            }
            c.retain(|&x| x > 0);
            c.sort_unstable();
            c.get(c.len() / 2).copied().unwrap_or(0)
        };
        DatasetStats {
            interactions: log.len(),
            users,
            items,
            items_without_interactions: self.n_items() - items,
            density: log.len() as f64 / (users.max(1) as f64 * items.max(1) as f64),
            first_time: log.time.iter().copied().min(),
            last_time: log.max_time(),
            median_per_user: median(&log.user, self.n_users()),
            median_per_item: median(&log.item, self.n_items()),
        }
    }
}
