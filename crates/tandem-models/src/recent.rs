//! What each user bought last: the recency every H&M candidate source starts from.

use tandem_data::Csr;

use crate::retriever::TrainSet;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// The last day of `train` (days since the epoch), or 0 for an empty log.
pub fn last_day(train: &TrainSet) -> i64 {
    train.log.max_time().unwrap_or(0).div_euclid(DAY)
}

/// The rows of the last `days` days of `train` (the last day included), over the same users
/// and items.
pub fn last_days(train: &TrainSet, days: u32) -> TrainSet {
    let from = last_day(train) - days as i64 + 1;
    let log = &train.log;
    let rows: Vec<usize> = (0..log.len()).filter(|&r| log.time[r].div_euclid(DAY) >= from).collect();
    TrainSet::new(log.select(&rows), train.n_users(), train.n_items())
}

/// Each user's `n` most recently bought distinct items (all of them for `n = 0`), as users x
/// items with the days between the item's last purchase and the end of `train` as the value
/// (0 = bought on the last day). Ties in time go to the later row.
pub fn latest_items(train: &TrainSet, n: usize) -> Csr {
    let log = &train.log;
    let n_users = train.n_users();
    let order = train.rows_in_time();
    let end = last_day(train);
    let (mut users, mut items, mut days) = (Vec::new(), Vec::new(), Vec::new());
    let mut picked: Vec<u32> = Vec::new();
    for u in 0..n_users {
        picked.clear();
        // Latest first.
        for &r in order.user(u).iter().rev() {
            let item = log.item[r as usize];
            // Users hold few distinct items next to n; a linear check beats a set.
            if picked.contains(&item) {
                continue;
            }
            picked.push(item);
            users.push(u as u32);
            items.push(item);
            days.push((end - log.time[r as usize].div_euclid(DAY)) as f32);
            if picked.len() == n {
                break;
            }
        }
    }
    Csr::from_triplets(n_users, train.n_items(), &users, &items, &days)
}

/// Each user's training rows with their weights multiplied by `0.5^(age / half_life)`, age
/// being how many of the user's rows came after the row (ties in time go to the later row), as
/// users x items with repeated pairs summed: a history in which the latest items count most,
/// for test sets that are each user's next items. `half_life` is in rows and > 0.
pub fn recency_weighted(train: &TrainSet, half_life: f32) -> Csr {
    let log = &train.log;
    let order = train.rows_in_time();
    let mut weights = vec![0f32; log.len()];
    for u in 0..train.n_users() {
        let rows = order.user(u);
        for (age, &r) in rows.iter().rev().enumerate() {
            weights[r as usize] = log.weight[r as usize] * 0.5f32.powf(age as f32 / half_life);
        }
    }
    Csr::from_triplets(train.n_users(), train.n_items(), &log.user, &log.item, &weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_data::{Interaction, Interactions};

    #[test]
    fn latest_distinct_items_with_days_before_the_end() {
        let mut log = Interactions::new();
        // user 0: item 3 on day 1, item 5 on day 2, item 3 again on day 9, item 1 on day 4.
        for (user, item, day) in [(0, 3, 1), (0, 5, 2), (0, 3, 9), (0, 1, 4), (1, 2, 10)] {
            log.push(Interaction { user, item, time: day * DAY + 60, weight: 1.0 });
        }
        let t = TrainSet::new(log, 3, 6);
        let two = latest_items(&t, 2);
        assert_eq!(two.row(0), (&[1, 3][..], &[6.0, 1.0][..]), "item 3 (day 9) and item 1 (day 4)");
        assert_eq!(two.row(1), (&[2][..], &[0.0][..]));
        assert_eq!(two.row_len(2), 0);
        assert_eq!(latest_items(&t, 0).row(0), (&[1, 3, 5][..], &[6.0, 1.0, 8.0][..]));
    }

    #[test]
    fn recency_halves_the_weight_every_half_life_of_later_rows() {
        let mut log = Interactions::new();
        // user 0 by time: item 3 (weight 2), item 5, item 3 again, item 1; user 1: item 2.
        for (user, item, time, weight) in
            [(0, 3, 1, 2.0), (0, 5, 2, 1.0), (0, 3, 9, 1.0), (0, 1, 4, 1.0), (1, 2, 0, 1.0)]
        {
            log.push(Interaction { user, item, time, weight });
        }
        let t = TrainSet::new(log, 2, 6);
        // Ages: item 3 (t 9) 0, item 1 (t 4) 1, item 5 (t 2) 2, item 3 (t 1) 3; half-life 1.
        let m = recency_weighted(&t, 1.0);
        assert_eq!(m.row(0), (&[1, 3, 5][..], &[0.5, 1.0 + 2.0 / 8.0, 0.25][..]));
        assert_eq!(m.row(1), (&[2][..], &[1.0][..]));
    }
}
