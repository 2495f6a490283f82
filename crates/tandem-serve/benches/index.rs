//! Candidate indexes side by side: recall@100 of the IVF index against the exact scan, and the latency
//! of each, on ALS item vectors of synthetic power-law logs (`bash bench/index.sh`).
//!
//! Usage: cargo bench -p tandem-serve --bench index -- [ITEMS ...]   (default 20000 100000)

use std::time::Instant;

use tandem_data::synthetic::SyntheticSpec;
use tandem_data::{Interaction, Interactions, NoProgress};
use tandem_models::index::IVF_PROBE_SHARE;
use tandem_models::{AlsParams, Retriever, TrainSet};
use tandem_serve::{IndexKind, ItemIndex};

const QUERIES: usize = 1000;
const K: usize = 100;

fn log(items: u32) -> TrainSet {
    let spec = SyntheticSpec { users: 20_000, items, interactions: 30 * items as u64, seed: 42, ..Default::default() };
    let mut csv = Vec::new();
    spec.write_csv(&mut csv, &NoProgress).unwrap();
    let mut log = Interactions::new();
    for line in String::from_utf8(csv).unwrap().lines().skip(1) {
        let mut f = line.split(',');
        let (u, i, t) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let (user, item) = (u.parse::<u32>().unwrap() - 1, i.parse::<u32>().unwrap() - 1);
        log.push(Interaction { user, item, time: t.parse().unwrap(), weight: 1.0 });
    }
    TrainSet::new(log, spec.users as usize, items as usize)
}

fn median_and_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
}

fn main() {
    let sizes: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![20_000, 100_000] } else { sizes };
    println!("| items | vectors | index | build s | recall@{K} vs exact | median ms/query | p99 ms/query |");
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        let t = log(n);
        let als = AlsParams { factors: 64, iterations: 10, ..Default::default() }.fit(&t, &NoProgress).unwrap();
        let e = als.embeddings().unwrap();
        let queries: Vec<&[f32]> = (0..QUERIES).map(|q| e.users.row(q * e.users.rows() / QUERIES)).collect();
        let mut exact_lists = Vec::new();
        for (kind, share) in
            [(IndexKind::Exact, 1.0), (IndexKind::Ivf, 0.1), (IndexKind::Ivf, IVF_PROBE_SHARE), (IndexKind::Ivf, 0.5)]
        {
            let start = Instant::now();
            let index = ItemIndex::build(kind, e.items, share);
            let build = start.elapsed().as_secs_f64();
            let mut times = Vec::with_capacity(QUERIES);
            let mut lists = Vec::with_capacity(QUERIES);
            for q in &queries {
                let s = Instant::now();
                let top = index.top_k(q, K, &|_| true);
                times.push(s.elapsed().as_secs_f64() * 1e3);
                lists.push(top.into_iter().map(|s| s.item).collect::<Vec<u32>>());
            }
            if kind == IndexKind::Exact {
                exact_lists = lists.clone();
            }
            let hits: usize =
                lists.iter().zip(&exact_lists).map(|(got, want)| got.iter().filter(|i| want.contains(i)).count()).sum();
            let recall = hits as f64 / (QUERIES * K) as f64;
            let (median, p99) = median_and_p99(times);
            println!(
                "| {n} | ALS 64 factors | {} | {build:.2} | {recall:.4} | {median:.3} | {p99:.3} |",
                if kind == IndexKind::Exact { "exact".to_string() } else { format!("IVF, {share} of the lists") }
            );
        }
    }
}
