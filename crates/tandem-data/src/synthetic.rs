//! Synthetic interaction logs at any scale, for benchmarks and tests: power-law item and user
//! activity with latent communities, so collaborative models have structure to find.

use std::io::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::progress::Progress;

pub mod hm;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    /// Number of users (ids `1..=users`).
    pub users: u32,
    /// Number of items (ids `1..=items`).
    pub items: u32,
    /// Number of rows.
    pub interactions: u64,
    /// Zipf exponent of item popularity (1.0 is typical of retail and media).
    pub item_exponent: f64,
    /// Zipf exponent of user activity.
    pub user_exponent: f64,
    /// Latent communities; each user draws `affinity` of their rows from their community's items.
    pub communities: u32,
    /// Share of a user's rows drawn from their community, in [0, 1].
    pub affinity: f64,
    /// Days the timestamps span (ending 2024-01-01 UTC).
    pub days: u32,
    /// Random seed.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            users: 10_000,
            items: 5_000,
            interactions: 1_000_000,
            item_exponent: 1.0,
            user_exponent: 0.8,
            communities: 20,
            affinity: 0.7,
            days: 365,
            seed: 42,
        }
    }
}

/// Cumulative Zipf weights 1/rank^a over `n` ranks.
fn zipf_cdf(n: u32, a: f64) -> Vec<f64> {
    let mut total = 0.0;
    (1..=n)
        .map(|r| {
            total += (r as f64).powf(-a);
            total
        })
        .collect()
}

fn draw(cdf: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let x = rng.random::<f64>() * cdf.last().copied().unwrap_or(0.0);
    cdf.partition_point(|&c| c <= x).min(cdf.len() - 1)
}

impl SyntheticSpec {
    /// Checks the parameters.
    pub fn check(&self) -> Result<()> {
        let bad =
            |what: &str, message: &str| Err(DataError::InvalidParameter { what: what.into(), message: message.into() });
        if self.users == 0 || self.items == 0 || self.interactions == 0 {
            return bad("users/items/interactions", "each must be at least 1");
        }
        if self.communities == 0 || self.communities > self.items {
            return bad("communities", "must be between 1 and the number of items");
        }
        if !(0.0..=1.0).contains(&self.affinity) {
            return bad("affinity", "must be in [0, 1]");
        }
        if !(self.item_exponent.is_finite() && self.user_exponent.is_finite())
            || self.item_exponent < 0.0
            || self.user_exponent < 0.0
        {
            return bad("exponent", "must be a finite number >= 0");
        }
        if self.days == 0 {
            return bad("days", "must be at least 1");
        }
        Ok(())
    }

    /// Writes `user,item,timestamp` CSV rows (with a header) to `out`.
    pub fn write_csv(&self, out: &mut dyn Write, progress: &dyn Progress) -> std::io::Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // Popularity ranks are a random permutation of ids, so id order says nothing.
        let mut item_of_rank: Vec<u32> = (1..=self.items).collect();
        let mut user_of_rank: Vec<u32> = (1..=self.users).collect();
        for v in [&mut item_of_rank, &mut user_of_rank] {
            for i in (1..v.len()).rev() {
                v.swap(i, rng.random_range(0..=i));
            }
        }
        let global = zipf_cdf(self.items, self.item_exponent);
        let users = zipf_cdf(self.users, self.user_exponent);
        // Community c owns the ranks r with r % communities == c.
        let per_community = self.items.div_ceil(self.communities);
        let local = zipf_cdf(per_community, self.item_exponent);
        let end = 1_704_067_200i64; // 2024-01-01T00:00:00Z
        let span = self.days as i64 * 86_400;
        writeln!(out, "user,item,timestamp")?;
        let step = progress.step("generating", self.interactions);
        for n in 0..self.interactions {
            let user = user_of_rank[draw(&users, &mut rng)];
            let community = user % self.communities;
            let rank = if rng.random::<f64>() < self.affinity {
                let r = draw(&local, &mut rng) as u32 * self.communities + community;
                if r < self.items {
                    r as usize
                } else {
                    draw(&global, &mut rng)
                }
            } else {
                draw(&global, &mut rng)
            };
            let t = end - span + rng.random_range(0..span);
            writeln!(out, "{user},{},{t}", item_of_rank[rank])?;
            if n % 65_536 == 0 {
                step.inc(65_536.min(self.interactions - n));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn seeded_power_law_with_valid_ids() {
        let spec = SyntheticSpec { users: 50, items: 40, interactions: 5_000, ..Default::default() };
        let mut a = Vec::new();
        spec.write_csv(&mut a, &NoProgress).unwrap();
        let mut b = Vec::new();
        spec.write_csv(&mut b, &NoProgress).unwrap();
        assert_eq!(a, b, "same seed, same log");
        let text = String::from_utf8(a).unwrap();
        let mut counts = vec![0u32; 41];
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let (u, i): (u32, usize) = (f[0].parse().unwrap(), f[1].parse().unwrap());
            assert!((1..=50).contains(&u) && (1..=40).contains(&i));
            counts[i] += 1;
        }
        assert_eq!(text.lines().count(), 5_001);
        counts.sort_unstable_by(|a, b| b.cmp(a));
        assert!(counts[0] > 5 * counts[30].max(1), "skewed popularity: {counts:?}");
        assert!(SyntheticSpec { communities: 0, ..spec }.check().is_err());
    }
}
