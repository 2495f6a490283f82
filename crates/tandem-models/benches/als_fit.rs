//! ALS fit on an H&M-shaped synthetic log (Zipf-popular items, ~23 items per user):
//! `cargo bench -p tandem-models --bench als_fit -- [USERS] [ITEMS] [ROWS] [ITERATIONS] [ALPHA]`.
//! Prints seconds per iteration and the flops the CG solves do, for profiling the solver
//! (`perf record` on this binary) without loading the 31.8M-row files.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use tandem_data::{Interactions, NoProgress};
use tandem_models::{AlsParams, TrainSet};

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let arg = |i: usize, d: f64| *args.get(i).unwrap_or(&d);
    let (users, items, rows) = (arg(0, 300_000.0) as usize, arg(1, 105_542.0) as usize, arg(2, 7_000_000.0) as usize);
    let (iterations, alpha) = (arg(3, 3.0) as usize, arg(4, 1.0) as f32);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut log = Interactions::new();
    // Item popularity ~ 1/rank^0.8: a long tail like the H&M catalogue's.
    let cdf: Vec<f64> = (1..=items)
        .scan(0.0, |s, r| {
            *s += (r as f64).powf(-0.8);
            Some(*s)
        })
        .collect();
    let total = *cdf.last().unwrap_or(&1.0);
    for r in 0..rows {
        let u = rng.random_range(0..users);
        let x = rng.random::<f64>() * total;
        let i = cdf.partition_point(|&c| c < x).min(items - 1);
        log.user.push(u as u32);
        log.item.push(i as u32);
        log.time.push(r as i64);
        log.weight.push(1.0);
    }
    let train = TrainSet::new(log, users, items);
    let params = AlsParams { factors: 64, iterations, alpha, ..AlsParams::default() };
    println!(
        "{users} users x {items} items, {} pairs, 64 factors, {} CG steps, alpha {alpha}, {} threads",
        train.user_items.nnz(),
        params.cg_steps,
        rayon::current_num_threads()
    );
    let t = Instant::now();
    let model = params.fit(&train, &NoProgress).expect("fit");
    let s = t.elapsed().as_secs_f64();
    println!("fit: {s:.2} s, {:.2} s per iteration", s / iterations as f64);
    let norm: f64 = model.user_factors().as_slice().iter().map(|&v| (v as f64) * (v as f64)).sum();
    println!("checksum (user factor norm^2): {norm:.6}");
}
