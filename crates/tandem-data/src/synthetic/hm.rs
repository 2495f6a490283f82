//! A synthetic log in the H&M Kaggle layout (`transactions_train.csv`, `articles.csv`,
//! `customers.csv`), with the structure the H&M candidate sources feed on: articles launch and
//! fade (recent popularity beats all-time popularity), customers buy baskets and rebuy what they
//! bought (repurchase), communities lean to product groups (same-group candidates) and to age
//! bands (segment popularity). Days are written in order, as in the real file.

use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{draw, zipf_cdf, SyntheticSpec};
use crate::progress::Progress;

/// H&M's product groups (the ones with the most articles).
const GROUPS: [&str; 12] = [
    "Garment Upper body",
    "Garment Lower body",
    "Garment Full body",
    "Accessories",
    "Underwear",
    "Shoes",
    "Swimwear",
    "Socks & Tights",
    "Nightwear",
    "Bags",
    "Cosmetic",
    "Items",
];
/// Age bands; a community's customers mostly fall in one.
const AGE_BANDS: [(u32, u32); 5] = [(16, 25), (25, 35), (35, 45), (45, 60), (60, 90)];
/// Share of rows that rebuy one of the customer's 10 latest items.
const REPURCHASE: f64 = 0.12;
/// Share of articles whose product group follows their community.
const GROUP_AFFINITY: f64 = 0.7;
/// Share of customers whose age band follows their community.
const AGE_AFFINITY: f64 = 0.6;
/// Probability that a basket goes on after each item (mean basket 1 / (1 - p) items).
const BASKET_CONTINUES: f64 = 0.6;
/// An article sells at this share of its launch rate once faded.
const FLOOR: f64 = 0.05;

/// The 64-hex-digit id of customer `u` (the real file's ids are SHA-256 digests).
fn customer_id(seed: u64, u: u32) -> String {
    // Four splitmix64 steps from a state no other customer's steps pass through.
    let mut x =
        (4 * u as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut s = String::with_capacity(64);
    for _ in 0..4 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        s.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    s
}

/// The 10-digit article id of item `j` (leading zero, as H&M's).
fn article_id(j: usize) -> String {
    format!("0{:09}", 108_775_015 + j * 7)
}

struct Article {
    community: u32,
    group: usize,
    launch: i64,
    half_life: f64,
    price: f64,
}

/// Counts of what [`SyntheticSpec::write_hm`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmCounts {
    /// Transactions written.
    pub transactions: u64,
    /// Article rows.
    pub articles: u32,
    /// Customer rows.
    pub customers: u32,
}

impl SyntheticSpec {
    /// Writes the three H&M files into `dir` (which must exist). Rows per day are even; each
    /// day's baskets draw from the articles on sale that week.
    pub fn write_hm(&self, dir: &Path, progress: &dyn Progress) -> std::io::Result<HmCounts> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let (n_items, n_users, c) = (self.items as usize, self.users as usize, self.communities);
        let days = self.days as i64;
        let mut rank_of_item: Vec<u32> = (0..self.items).collect();
        shuffle(&mut rank_of_item, &mut rng);
        let articles: Vec<Article> = rank_of_item
            .iter()
            .map(|&rank| {
                let community = rank % c;
                let group = if rng.random::<f64>() < GROUP_AFFINITY {
                    community as usize % GROUPS.len()
                } else {
                    rng.random_range(0..GROUPS.len())
                };
                Article {
                    community,
                    group,
                    // A third of the catalogue is on sale when the log starts.
                    launch: rng.random_range(-days / 2..days),
                    half_life: rng.random_range(14.0..90.0),
                    price: 0.005 + 0.08 * rng.random::<f64>().powi(2),
                }
            })
            .collect();
        let zipf = zipf_cdf(self.items, self.item_exponent);
        let weight_of_rank = |r: u32| zipf[r as usize] - if r == 0 { 0.0 } else { zipf[r as usize - 1] };

        // Per week: a cumulative weight over all articles and over each community's articles.
        let weeks = self.days.div_ceil(7) as usize;
        let members: Vec<Vec<u32>> = {
            let mut m = vec![Vec::new(); c as usize];
            for (j, a) in articles.iter().enumerate() {
                m[a.community as usize].push(j as u32);
            }
            m
        };
        let step = progress.step("preparing weekly sales curves", weeks as u64);
        let curves: Vec<(Vec<f64>, Vec<Vec<f64>>)> = (0..weeks)
            .map(|w| {
                let day = w as i64 * 7 + 3;
                let weight: Vec<f64> = articles
                    .iter()
                    .zip(&rank_of_item)
                    .map(|(a, &r)| {
                        let age = (day - a.launch) as f64;
                        let alive =
                            if age < 0.0 { 0.0 } else { FLOOR + (1.0 - FLOOR) * 0.5f64.powf(age / a.half_life) };
                        weight_of_rank(r) * alive
                    })
                    .collect();
                let cumulative = |items: &mut dyn Iterator<Item = usize>| {
                    let mut total = 0.0;
                    items
                        .map(|j| {
                            total += weight[j];
                            total
                        })
                        .collect::<Vec<f64>>()
                };
                let global = cumulative(&mut (0..n_items));
                let local = members.iter().map(|m| cumulative(&mut m.iter().map(|&j| j as usize))).collect();
                step.inc(1);
                (global, local)
            })
            .collect();
        drop(step);

        let mut user_of_rank: Vec<u32> = (0..self.users).collect();
        shuffle(&mut user_of_rank, &mut rng);
        let activity = zipf_cdf(self.users, self.user_exponent);
        let band: Vec<usize> = (0..self.users)
            .map(|u| {
                if rng.random::<f64>() < AGE_AFFINITY {
                    (u % c) as usize % AGE_BANDS.len()
                } else {
                    rng.random_range(0..AGE_BANDS.len())
                }
            })
            .collect();
        let ids: Vec<String> = (0..self.users).map(|u| customer_id(self.seed, u)).collect();

        let mut out = create(dir, "customers.csv")?;
        writeln!(out, "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code")?;
        for (u, id) in ids.iter().enumerate() {
            let (lo, hi) = AGE_BANDS[band[u]];
            let age = rng.random_range(lo..hi);
            let news = if rng.random::<f64>() < 0.35 { "Regularly" } else { "NONE" };
            writeln!(out, "{id},,,ACTIVE,{news},{age},{:016x}", rng.random::<u64>())?;
        }
        out.flush()?;
        let mut out = create(dir, "articles.csv")?;
        writeln!(out, "article_id,prod_name,product_group_name,index_name,garment_group_name")?;
        for (j, a) in articles.iter().enumerate() {
            let index = ["Ladieswear", "Menswear", "Divided", "Baby/Children", "Sport"][a.community as usize % 5];
            writeln!(out, "{},Article {j},{},{index},{}", article_id(j), GROUPS[a.group], GROUPS[a.group])?;
        }
        out.flush()?;

        let mut out = create(dir, "transactions_train.csv")?;
        writeln!(out, "t_dat,customer_id,article_id,price,sales_channel_id")?;
        let mut history: Vec<Vec<u32>> = vec![Vec::new(); n_users];
        let first = 1_704_067_200 - days * 86_400; // the log ends 2024-01-01
        let step = progress.step("generating transactions", self.interactions);
        let mut written = 0u64;
        for day in 0..days {
            let date = chrono::DateTime::from_timestamp(first + day * 86_400, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let (global, local) = &curves[day as usize / 7];
            let until = self.interactions * (day as u64 + 1) / days as u64;
            while written < until {
                let u = user_of_rank[draw(&activity, &mut rng)] as usize;
                let channel = 1 + u.is_multiple_of(3) as u8;
                loop {
                    let seen = &history[u];
                    let j = if !seen.is_empty() && rng.random::<f64>() < REPURCHASE {
                        seen[seen.len() - 1 - rng.random_range(0..seen.len().min(10))] as usize
                    } else if rng.random::<f64>() < self.affinity {
                        let m = (u as u32 % c) as usize;
                        if local[m].last().is_some_and(|&t| t > 0.0) {
                            members[m][draw(&local[m], &mut rng)] as usize
                        } else {
                            draw(global, &mut rng)
                        }
                    } else {
                        draw(global, &mut rng)
                    };
                    history[u].push(j as u32);
                    writeln!(out, "{date},{},{},{:.6},{channel}", ids[u], article_id(j), articles[j].price)?;
                    written += 1;
                    if written.is_multiple_of(65_536) {
                        step.inc(65_536);
                    }
                    if written >= until || rng.random::<f64>() >= BASKET_CONTINUES {
                        break;
                    }
                }
            }
        }
        step.inc(written % 65_536);
        out.flush()?;
        Ok(HmCounts { transactions: written, articles: self.items, customers: self.users })
    }
}

fn shuffle(v: &mut [u32], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.random_range(0..=i));
    }
}

fn create(dir: &Path, name: &str) -> std::io::Result<std::io::BufWriter<std::fs::File>> {
    Ok(std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join(name))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use crate::read::{HmSource, Source};

    #[test]
    fn reads_back_through_the_hm_source_with_its_structure() {
        let d = tempfile::tempdir().unwrap();
        let spec = SyntheticSpec { users: 300, items: 200, interactions: 20_000, days: 120, ..Default::default() };
        let counts = spec.write_hm(d.path(), &NoProgress).unwrap();
        assert_eq!(counts.transactions, 20_000);
        let ds =
            Source::Hm(HmSource { path: d.path().into(), on_bad_row: Default::default() }).load(&NoProgress).unwrap();
        assert_eq!(ds.interactions.len(), 20_000);
        assert_eq!((ds.n_users(), ds.n_items()), (300, 200), "every customer and article is listed");
        let times = &ds.interactions.time;
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "days in order");
        assert_eq!(times.last().copied(), Some(1_704_067_200 - 86_400), "the last day is 2023-12-31");
        let group =
            |i: u32| ds.item_info[i as usize].attributes.iter().find(|(k, _)| &**k == "product_group_name").cloned();
        assert!(group(0).is_some(), "articles carry their product group");
        assert!(ds.user_info.iter().all(|u| u.attributes.iter().any(|(k, _)| &**k == "age")), "customers carry an age");
        // Customers rebuy: far more repeated (customer, article) pairs than chance gives.
        let mut pairs: Vec<(u32, u32)> = ds.interactions.iter().map(|r| (r.user, r.item)).collect();
        pairs.sort_unstable();
        let repeats = pairs.windows(2).filter(|w| w[0] == w[1]).count();
        assert!(repeats > 2_000, "{repeats} repeated pairs");
        // Articles fade: the best sellers of the first month are not those of the last.
        let top = |lo: i64, hi: i64| {
            let mut n = vec![0u32; 200];
            ds.interactions.iter().filter(|r| (lo..hi).contains(&r.time)).for_each(|r| n[r.item as usize] += 1);
            let mut order: Vec<usize> = (0..200).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(n[i]));
            order[..10].to_vec()
        };
        let (t0, t1) = (times[0], times[times.len() - 1]);
        let (early, late) = (top(t0, t0 + 30 * 86_400), top(t1 - 30 * 86_400, t1 + 1));
        assert!(early.iter().filter(|i| late.contains(i)).count() < 7, "{early:?} vs {late:?}");
        let again = tempfile::tempdir().unwrap();
        spec.write_hm(again.path(), &NoProgress).unwrap();
        let read = |p: &Path| std::fs::read(p.join("transactions_train.csv")).unwrap();
        assert_eq!(read(d.path()), read(again.path()), "seeded");
    }
}
