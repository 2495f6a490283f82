//! The interaction log as columns of dense indices.

/// One row of the log in dense indices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    /// Dense user index.
    pub user: u32,
    /// Dense item index.
    pub item: u32,
    /// Unix seconds (or a row position where the source has no time).
    pub time: i64,
    /// Rating, quantity or 1.0.
    pub weight: f32,
}

/// A log of interactions stored column-wise; memory is 20 bytes a row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    /// Dense user index per row.
    pub user: Vec<u32>,
    /// Dense item index per row.
    pub item: Vec<u32>,
    /// Unix seconds per row.
    pub time: Vec<i64>,
    /// Weight (rating, quantity, 1.0) per row.
    pub weight: Vec<f32>,
}

impl Interactions {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one row.
    pub fn push(&mut self, r: Interaction) {
        self.user.push(r.user);
        self.item.push(r.item);
        self.time.push(r.time);
        self.weight.push(r.weight);
    }

    /// Row `i`.
    pub fn get(&self, i: usize) -> Interaction {
        Interaction { user: self.user[i], item: self.item[i], time: self.time[i], weight: self.weight[i] }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.user.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// Iterates over the rows.
    pub fn iter(&self) -> impl Iterator<Item = Interaction> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The rows at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Interactions {
        let mut out = Interactions::with_capacity(rows.len());
        for &r in rows {
            out.push(self.get(r));
        }
        out
    }

    /// An empty log with room for `n` rows.
    pub fn with_capacity(n: usize) -> Self {
        Interactions {
            user: Vec::with_capacity(n),
            item: Vec::with_capacity(n),
            time: Vec::with_capacity(n),
            weight: Vec::with_capacity(n),
        }
    }

    /// Keeps the rows for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(Interaction) -> bool) {
        let rows: Vec<usize> = (0..self.len()).filter(|&i| keep(self.get(i))).collect();
        *self = self.select(&rows);
    }

    /// Row indices grouped by user (`result[u]` lists user `u`'s rows in log order);
    /// `n_users` must exceed every user index.
    pub fn rows_by_user(&self, n_users: usize) -> Vec<Vec<usize>> {
        let mut by_user = vec![Vec::new(); n_users];
        for (i, &u) in self.user.iter().enumerate() {
            by_user[u as usize].push(i);
        }
        by_user
    }

    /// The number of distinct users that have at least one row.
    pub fn count_users(&self) -> usize {
        count_distinct(&self.user)
    }

    /// The number of distinct items that have at least one row.
    pub fn count_items(&self) -> usize {
        count_distinct(&self.item)
    }

    /// Rows per item over `n_items` items (items beyond it are not counted).
    pub fn item_counts(&self, n_items: usize) -> Vec<u32> {
        let mut counts = vec![0u32; n_items];
        for &i in &self.item {
            if let Some(c) = counts.get_mut(i as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// The latest timestamp, if any.
    pub fn max_time(&self) -> Option<i64> {
        self.time.iter().copied().max()
    }

    /// Appends every row of `other`.
    pub fn extend(&mut self, other: &Interactions) {
        self.user.extend_from_slice(&other.user);
        self.item.extend_from_slice(&other.item);
        self.time.extend_from_slice(&other.time);
        self.weight.extend_from_slice(&other.weight);
    }
}

fn count_distinct(ids: &[u32]) -> usize {
    let n = ids.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut seen = vec![false; n];
    ids.iter().filter(|&&i| !std::mem::replace(&mut seen[i as usize], true)).count()
}
