//! Training cost per example of the full softmax, the hierarchical softmax and TDM as the
//! catalogue grows (synthetic power-law logs of 10k / 30k / 100k items, the same number of
//! training examples each). Run: `cargo bench -p tandem-neural --bench tree_cost`, or
//! `bash bench/tree_cost.sh`, which also records the table.
//!
//! The time is one epoch's, from the epoch report (tree construction excluded: random trees,
//! no re-learning); medians of `REPS` runs.

use std::time::Instant;

use tandem_data::synthetic::SyntheticSpec;
use tandem_data::{Interaction, Interactions, NoProgress};
use tandem_models::TrainSet;
use tandem_neural::{SoftmaxParams, Structure, TreeInit};

const REPS: usize = 3;

fn synthetic(items: u32, interactions: u64) -> TrainSet {
    let spec = SyntheticSpec { users: 20_000, items, interactions, ..Default::default() };
    let mut csv = Vec::new();
    spec.write_csv(&mut csv, &NoProgress).expect("writing to memory");
    let mut log = Interactions::new();
    for line in String::from_utf8(csv).expect("utf-8").lines().skip(1) {
        let f: Vec<i64> = line.split(',').map(|v| v.parse().expect("a number")).collect();
        log.push(Interaction { user: f[0] as u32 - 1, item: f[1] as u32 - 1, time: f[2], weight: 1.0 });
    }
    TrainSet::new(log, spec.users as usize, items as usize)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let examples: u64 = std::env::var("TREE_COST_EXAMPLES").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let params = SoftmaxParams { epochs: 1, relearn: 0, tree_init: TreeInit::Random, ..Default::default() };
    let structures = [Structure::Full, Structure::Hierarchical, Structure::Tdm];
    println!("training cost per example (µs, median of {REPS} one-epoch runs; {examples} rows, 64 factors, batch 256, tdm 16 negatives per level)\n");
    println!("| items | softmax | hsoftmax | tdm | softmax / hsoftmax | softmax / tdm |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for items in [10_000u32, 30_000, 100_000] {
        let train = synthetic(items, examples);
        let n = train.user_items.nnz() as f64;
        let mut cost = Vec::new();
        for s in structures {
            let runs = (0..REPS)
                .map(|_| {
                    let mut seconds = None;
                    let start = Instant::now();
                    params
                        .fit_with(
                            s,
                            &train,
                            &NoProgress,
                            Some(&mut |report, _| {
                                seconds = Some(report.seconds);
                                None
                            }),
                        )
                        .expect("fits");
                    seconds.unwrap_or(start.elapsed().as_secs_f64()) / n * 1e6
                })
                .collect();
            cost.push(median(runs));
        }
        println!(
            "| {items} | {:.1} | {:.2} | {:.2} | {:.0}x | {:.0}x |",
            cost[0],
            cost[1],
            cost[2],
            cost[0] / cost[1],
            cost[0] / cost[2]
        );
    }
}
