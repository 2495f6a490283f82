//! Blocked top-k against the one-query-at-a-time path on H&M-sized item factors:
//! `cargo bench -p tandem-models --bench batch_scoring -- [USERS] [ITEMS] [FACTORS]`.
//! Prints GFLOP/s of the products (2 x users x items x factors per pass), for comparing with
//! what the CPU's FMA units allow.

use std::time::Instant;

use rand::SeedableRng;
use rayon::prelude::*;
use tandem_models::panels::ItemPanels;
use tandem_models::{top_k, Factors};

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (users, items, f) =
        (*args.first().unwrap_or(&20_000), *args.get(1).unwrap_or(&105_542), *args.get(2).unwrap_or(&64));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (u, y) = (Factors::normal(users, f, 0.1, &mut rng), Factors::normal(items, f, 0.1, &mut rng));
    let panels = ItemPanels::pack(&y);
    let flop = 2.0 * users as f64 * items as f64 * f as f64;
    let threads = rayon::current_num_threads();
    println!("{users} users x {items} items x {f} factors, top-12, {threads} threads");

    let t = Instant::now();
    let blocked: Vec<_> = (0..users)
        .into_par_iter()
        .step_by(256)
        .flat_map_iter(|u0| {
            let rows = &u.as_slice()[u0 * f..(u0 + 256).min(users) * f];
            panels.top_k(rows, 12, &|_, _| true)
        })
        .collect();
    let s = t.elapsed().as_secs_f64();
    println!("blocked fused top-k : {s:8.2} s  {:6.1} GFLOP/s  {:9.0} users/s", flop / s / 1e9, users as f64 / s);

    let sample = users.min(2_000);
    let t = Instant::now();
    let single: Vec<_> = (0..sample)
        .into_par_iter()
        .map(|i| {
            let mut out = vec![0f32; items];
            y.scores(u.row(i), &mut out);
            top_k(&out, 12, |_| true)
        })
        .collect();
    let s1 = t.elapsed().as_secs_f64() * users as f64 / sample as f64;
    println!("one user at a time  : {s1:8.2} s  {:6.1} GFLOP/s  (extrapolated from {sample} users)", flop / s1 / 1e9);
    println!("speed-up            : {:8.1}x", s1 / s);
    let same =
        single.iter().zip(&blocked).filter(|(a, b)| a.iter().map(|s| s.item).eq(b.iter().map(|s| s.item))).count();
    println!("same top-12 items   : {same} of {sample} users (dot() sums in another order than the kernel)");
    let peak = fma_peak(threads);
    println!(
        "FMA peak (measured) : {peak:6.1} GFLOP/s on {threads} threads; blocked at {:.0}% of it",
        100.0 * flop / s / 1e9 / peak
    );
}

/// What the FMA units do with nothing else in the way: 12 independent 8-lane FMA chains in
/// registers on every thread, as GFLOP/s (2 flops per lane per FMA).
fn fma_peak(threads: usize) -> f64 {
    const ITERS: u64 = 100_000_000;
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn chains() -> f32 {
        use std::arch::x86_64::*;
        let (a, b) = (_mm256_set1_ps(std::hint::black_box(0.999_999)), _mm256_set1_ps(std::hint::black_box(1e-7)));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut out = [0f32; 8];
        // SAFETY: out holds 8 floats.
        unsafe {
            _mm256_storeu_ps(out.as_mut_ptr(), acc.iter().fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v)))
        };
        out[0]
    }
    if tandem_models::simd() == tandem_models::Simd::Base {
        return f64::NAN;
    }
    let t = Instant::now();
    // SAFETY: simd() found AVX2 and FMA.
    let n = (0..threads).into_par_iter().map(|_| std::hint::black_box(unsafe { chains() })).count();
    2.0 * (n as u64 * ITERS * 12 * 8) as f64 / t.elapsed().as_secs_f64() / 1e9
}
