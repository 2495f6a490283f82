//! Hyper-parameter search over a model kind's space (`tandem_models::kind::Dim`, declared in
//! each model's file): seeded proposals — random for the first trials, then a TPE-style
//! proposal (Bergstra et al. 2011: of many random draws, the one most likely under the
//! best quarter of the trials so far relative to the rest) — and the log of trials,
//! `trials.jsonl`, one JSON object per line, appended as each trial ends, which a resumed
//! search reads back.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tandem_models::kind::{Dim, Range};

/// One finished trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Its number, from 0.
    pub trial: usize,
    /// The searched parameters it tried.
    pub params: Map<String, Value>,
    /// The validation metric's name, e.g. `NDCG@10`.
    pub metric: String,
    /// Its value (`None`: the trial failed).
    pub value: Option<f64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds to fit and validate.
    pub seconds: f64,
    /// Epochs the model kept (models trained in epochs, with validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// The validation value after each epoch (models trained in epochs), for [`prune`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<f64>,
    /// The epoch after which [`prune`] stopped it (its value is its best until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<usize>,
    /// Validation carvings its value is the mean of (`tandem tune --folds`; 1 when absent).
    #[serde(default = "one_fold", skip_serializing_if = "is_one_fold")]
    pub folds: usize,
    /// With several folds, the value on each (what [`steady_best`] compares).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fold_values: Vec<f64>,
}

fn one_fold() -> usize {
    1
}

fn is_one_fold(folds: &usize) -> bool {
    *folds == 1
}

/// Earlier trials that must have validated an epoch before a trial can be pruned at it.
pub const PRUNE_AFTER_TRIALS: usize = 5;

/// Trials planned for fewer epochs are never pruned.
pub const PRUNE_MIN_EPOCHS: usize = 10;

/// Whether a trial trained in epochs, planned for `planned` of them, whose validation values so
/// far are `curve`, should stop now: at least [`PRUNE_AFTER_TRIALS`] trials of `history`
/// validated as many epochs, and the trial's best so far is below the median of their bests
/// over the same epochs. This is the median rule (Optuna's `MedianPruner`; successive halving
/// without fixed rungs): a trial goes on only while it is in the better half of its peers at
/// the same point of training. A pruned trial is never the search's best: its value is below
/// the median of finished trials' values.
///
/// Slow starters are spared: no trial is pruned before a third of its epochs, nor one planned
/// for fewer than [`PRUNE_MIN_EPOCHS`], whose last epochs decide. (Measured on ml-100k: a
/// 5-epoch `bce` history model at learning rate 0.00136 validates 0.126 after its first epoch,
/// below every peer, and 0.153 after its fifth, above every peer.)
pub fn prune(history: &[Trial], curve: &[f64], planned: usize) -> bool {
    let Some(mine) = curve.iter().copied().reduce(f64::max) else { return false };
    let e = curve.len();
    if planned < PRUNE_MIN_EPOCHS || e < planned.div_ceil(3) {
        return false;
    }
    let mut peers: Vec<f64> = history
        .iter()
        .filter(|t| t.value.is_some() && t.curve.len() >= e)
        .map(|t| t.curve[..e].iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .collect();
    if peers.len() < PRUNE_AFTER_TRIALS {
        return false;
    }
    peers.sort_by(f64::total_cmp);
    let n = peers.len();
    let median = if n % 2 == 1 { peers[n / 2] } else { 0.5 * (peers[n / 2 - 1] + peers[n / 2]) };
    mine < median
}

/// Random proposals before the TPE-style ones start.
const WARMUP: usize = 10;
/// Random draws a TPE-style proposal chooses among.
const DRAWS: usize = 64;
/// After the warm-up, every this many trials one is a step from the best so far.
const LOCAL_EVERY: usize = 3;
/// The standard deviation of such a step, per unit coordinate.
const LOCAL_STEP: f64 = 0.08;

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (a, b): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
}

/// A point of the space as coordinates in [0, 1] per dimension.
fn to_unit(dim: &Dim, v: &Value) -> Option<f64> {
    let scale = |x: f64, lo: f64, hi: f64, log: bool| {
        let (x, lo, hi) = if log { (x.max(1e-300).ln(), lo.max(1e-300).ln(), hi.ln()) } else { (x, lo, hi) };
        if hi > lo {
            ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.5
        }
    };
    match dim.range {
        Range::Int { lo, hi, log } => v.as_f64().map(|x| scale(x, lo as f64, hi as f64, log)),
        Range::Float { lo, hi, log } => v.as_f64().map(|x| scale(x, lo, hi, log)),
        Range::Choice(values) => {
            let k = values.iter().position(|c| v.as_str() == Some(c))?;
            Some((k as f64 + 0.5) / values.len() as f64)
        }
    }
}

/// The value of `dim` at coordinate `u` in [0, 1].
fn from_unit(dim: &Dim, u: f64) -> Value {
    let unscale = |lo: f64, hi: f64, log: bool| {
        if log {
            (lo.max(1e-300).ln() + u * (hi.ln() - lo.max(1e-300).ln())).exp()
        } else {
            lo + u * (hi - lo)
        }
    };
    match dim.range {
        Range::Int { lo, hi, log } => Value::from((unscale(lo as f64, hi as f64, log).round() as i64).clamp(lo, hi)),
        Range::Float { lo, hi, log } => Value::from(four_digits(unscale(lo, hi, log).clamp(lo, hi)).clamp(lo, hi)),
        Range::Choice(values) => {
            Value::from(values[((u * values.len() as f64) as usize).min(values.len() - 1)].to_string())
        }
    }
}

/// A Parzen density at `u` from `points` (Gaussian kernels, bandwidth from their count), with
/// a uniform prior mixed in so no region is ruled out.
fn density(u: f64, points: &[f64], categorical: Option<usize>) -> f64 {
    let n = points.len() as f64;
    let prior = 1.0 / (n + 1.0);
    if let Some(choices) = categorical {
        let bin = (u * choices as f64) as usize;
        let same = points.iter().filter(|&&p| (p * choices as f64) as usize == bin).count() as f64;
        return prior + (1.0 - prior) * (same + 1.0) / (n + choices as f64) * choices as f64;
    }
    let h = (1.0 / n.max(1.0)).powf(0.2).max(0.05) * 0.5;
    let kernel: f64 =
        points.iter().map(|p| (-0.5 * ((u - p) / h).powi(2)).exp() / (h * 2.5066)).sum::<f64>() / n.max(1.0);
    prior + (1.0 - prior) * kernel
}

/// The search of one space.
pub struct Search {
    space: Vec<Dim>,
    seed: u64,
}

impl Search {
    /// A search of `space`, seeded.
    pub fn new(space: Vec<Dim>, seed: u64) -> Self {
        Search { space, seed }
    }

    /// The dimensions searched.
    pub fn space(&self) -> &[Dim] {
        &self.space
    }

    /// The parameters trial `trial` tries, given the finished trials `done` (higher values
    /// better). The same trials give the same proposal, so a resumed search carries on as the
    /// uninterrupted one would have.
    pub fn propose(&self, trial: usize, done: &[Trial]) -> Map<String, Value> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ (trial as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let draw = |rng: &mut ChaCha8Rng| -> Vec<f64> { self.space.iter().map(|_| rng.random::<f64>()).collect() };
        let mut scored: Vec<(f64, Vec<f64>)> =
            done.iter().filter_map(|t| Some((t.value?, self.unit_point(&t.params)?))).collect();
        let point = if scored.len() < WARMUP {
            draw(&mut rng)
        } else if trial.is_multiple_of(LOCAL_EVERY) {
            // A step from the best trial so far: independent kernels cannot follow a ridge
            // where two parameters must move together, a step can.
            let top = scored.iter().max_by(|a, b| a.0.total_cmp(&b.0)).map(|s| s.1.clone()).expect("warm-up done");
            top.iter().map(|&c| (c + LOCAL_STEP * normal(&mut rng)).clamp(0.0, 1.0)).collect()
        } else {
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            let n_good = (scored.len() / 4).max(1);
            let (good, bad) = scored.split_at(n_good);
            let column = |set: &[(f64, Vec<f64>)], d: usize| -> Vec<f64> { set.iter().map(|s| s.1[d]).collect() };
            let categorical = |d: &Dim| match d.range {
                Range::Choice(v) => Some(v.len()),
                _ => None,
            };
            let ratio = |u: &[f64]| -> f64 {
                self.space
                    .iter()
                    .enumerate()
                    .map(|(k, d)| {
                        (density(u[k], &column(good, k), categorical(d))
                            / density(u[k], &column(bad, k), categorical(d)))
                        .ln()
                    })
                    .sum()
            };
            // Half the draws near the good trials (a kernel's width around one), half uniform.
            let mut best: Option<(f64, Vec<f64>)> = None;
            for k in 0..DRAWS {
                let u: Vec<f64> = if k % 2 == 0 {
                    let centre = &good[rng.random_range(0..good.len())].1;
                    centre.iter().map(|&c| (c + (rng.random::<f64>() - 0.5) * 0.3).clamp(0.0, 1.0)).collect()
                } else {
                    draw(&mut rng)
                };
                let r = ratio(&u);
                if best.as_ref().is_none_or(|b| r > b.0) {
                    best = Some((r, u));
                }
            }
            best.map(|b| b.1).unwrap_or_else(|| draw(&mut rng))
        };
        let mut params: Map<String, Value> =
            self.space.iter().zip(point).map(|(d, u)| (d.key.to_string(), from_unit(d, u))).collect();
        for d in &self.space {
            if let Some(base) = self.relative_to(d, &params) {
                let v = params[d.key].as_f64().unwrap_or(0.0) * base;
                params.insert(d.key.to_string(), Value::from(four_digits(v)));
            }
        }
        params
    }

    /// `params` (trial parameters) as unit coordinates, relative dimensions divided back.
    fn unit_point(&self, params: &Map<String, Value>) -> Option<Vec<f64>> {
        self.space
            .iter()
            .map(|d| {
                let v = params.get(d.key)?;
                match self.relative_to(d, params) {
                    Some(base) => to_unit(d, &Value::from(v.as_f64()? / base)),
                    None => to_unit(d, v),
                }
            })
            .collect()
    }

    /// `1 + the value` of the key `d` is searched relative to, when that key is searched and
    /// `params` holds it as a number.
    fn relative_to(&self, d: &Dim, params: &Map<String, Value>) -> Option<f64> {
        let key = d.per_one_plus?;
        self.space.iter().any(|o| o.key == key).then_some(())?;
        Some(1.0 + params.get(key)?.as_f64()?)
    }
}

/// `x` to four significant digits: trial logs and YAML snippets stay readable.
fn four_digits(x: f64) -> f64 {
    let digits = 10f64.powi(3 - x.abs().max(1e-12).log10().floor() as i32);
    (x * digits).round() / digits
}

/// The trials a log holds (none when it does not exist). A torn last line (a crash mid-write)
/// is dropped; any other bad line is an error naming it.
pub fn read_trials(path: &Path) -> Result<Vec<Trial>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut trials = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Trial>(line) {
            Ok(t) => trials.push(t),
            Err(_) if k + 1 == lines.len() && !complete => break,
            Err(e) => return Err(format!("{}, line {}: not a trial: {e}", path.display(), k + 1)),
        }
    }
    Ok(trials)
}

/// Appends `trial` to the log at `path` (flushed and synced: a crash loses at most the trial
/// being run).
pub fn append_trial(path: &Path, trial: &Trial) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let line = serde_json::to_string(trial).map_err(std::io::Error::other)? + "\n";
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// The trial a search settles on: with values on several folds, the best of the trials that
/// beat the first trial (the defaults) on every fold, else the defaults; otherwise [`best`]. A
/// gain on the mean that one fold contradicts is as likely noise as not (on ml-100k temporal
/// the best EASE and item kNN trials validated 0.001 above the defaults and tested below them),
/// and settings that lose to the defaults are not worth a refit.
pub fn steady_best(trials: &[Trial]) -> Option<&Trial> {
    let defaults = trials.iter().find(|t| t.trial == 0).filter(|t| t.value.is_some() && t.fold_values.len() >= 2);
    let Some(defaults) = defaults else { return best(trials) };
    let steady = |t: &&Trial| {
        t.trial == 0
            || (t.value.is_some()
                && t.fold_values.len() == defaults.fold_values.len()
                && t.fold_values.iter().zip(&defaults.fold_values).all(|(v, d)| v > d))
    };
    best_of(trials.iter().filter(steady))
}

/// The best finished trial (highest value; the earlier on ties).
pub fn best(trials: &[Trial]) -> Option<&Trial> {
    best_of(trials.iter())
}

/// [`best`] of `trials`.
fn best_of<'a>(trials: impl Iterator<Item = &'a Trial>) -> Option<&'a Trial> {
    trials.filter(|t| t.value.is_some()).fold(None, |b: Option<&Trial>, t| match b {
        Some(b) if b.value >= t.value => Some(b),
        _ => Some(t),
    })
}

pub use crate::plot::trials_svg;

/// Parameters as YAML lines (`key: value`), sorted by key: the snippet a config takes.
pub fn yaml_snippet(kind: &str, params: &Map<String, Value>) -> String {
    let sorted: BTreeMap<&String, &Value> = params.iter().collect();
    let mut s = format!("kind: {kind}\n");
    for (k, v) in sorted {
        s += &format!("{k}: {v}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Vec<Dim> {
        vec![
            Dim::int("factors", 16, 256, true),
            Dim::float("regularization", 0.01, 100.0, true),
            Dim::float("alpha", 0.0, 40.0, false),
            Dim::choice("weighting", &["bm25", "cosine"]),
        ]
    }

    fn trial(k: usize, params: Map<String, Value>, value: f64) -> Trial {
        Trial {
            trial: k,
            params,
            metric: "NDCG@10".into(),
            value: Some(value),
            error: None,
            seconds: 0.1,
            epochs: None,
            curve: Vec::new(),
            pruned: None,
            folds: 1,
            fold_values: Vec::new(),
        }
    }

    #[test]
    fn with_folds_the_settled_trial_beats_the_defaults_on_every_fold() {
        let folded = |k: usize, values: &[f64]| Trial {
            folds: values.len(),
            fold_values: values.to_vec(),
            ..trial(k, Map::new(), values.iter().sum::<f64>() / values.len() as f64)
        };
        // Trial 1 has the best mean but loses fold 2; trial 2 wins every fold.
        let trials = vec![folded(0, &[0.5, 0.5, 0.5]), folded(1, &[0.9, 0.4, 0.8]), folded(2, &[0.6, 0.55, 0.6])];
        assert_eq!(best(&trials).unwrap().trial, 1);
        assert_eq!(steady_best(&trials).unwrap().trial, 2);
        assert_eq!(steady_best(&trials[..2]).unwrap().trial, 0, "none beats the defaults everywhere");
        let one_fold: Vec<Trial> = (0..3).map(|k| trial(k, Map::new(), k as f64)).collect();
        assert_eq!(steady_best(&one_fold).unwrap().trial, 2, "one fold: the best");
    }

    /// A dimension searched per `1 + alpha`: proposals scale it, and a trial's point divides it
    /// back (so a step from the best keeps the ratio, not the value).
    #[test]
    fn relative_dimensions_scale_with_their_base() {
        let relative = vec![
            Dim::float("regularization", 0.01, 100.0, true).per_one_plus("alpha"),
            Dim::float("alpha", 0.0, 40.0, false),
        ];
        let s = Search::new(relative.clone(), 3);
        let mut outside = 0;
        for k in 0..20 {
            let p = s.propose(k, &[]);
            let (r, a) = (p["regularization"].as_f64().unwrap(), p["alpha"].as_f64().unwrap());
            let per = r / (1.0 + a);
            assert!((0.0099..=100.1).contains(&per), "{p:?}");
            outside += usize::from(r > 100.0);
            let back = s.unit_point(&p).unwrap();
            let plain = Search::new(vec![relative[0].clone().per_one_plus("none"), relative[1].clone()], 3);
            let mut given = p.clone();
            given.insert("regularization".into(), Value::from(per));
            let direct = plain.unit_point(&given).unwrap();
            assert!(back.iter().zip(&direct).all(|(x, y)| (x - y).abs() < 1e-3), "{back:?} vs {direct:?}");
        }
        assert!(outside > 0, "values beyond the plain range: the ratio is what is bounded");
        // Without its base in the space a relative dimension is searched as it is.
        let alone = Search::new(relative[..1].to_vec(), 3);
        for k in 0..10 {
            let r = alone.propose(k, &[])["regularization"].as_f64().unwrap();
            assert!((0.01..=100.0).contains(&r));
        }
    }

    #[test]
    fn proposals_stay_in_their_ranges_and_repeat_with_the_seed() {
        let s = Search::new(space(), 3);
        let mut done = Vec::new();
        for k in 0..30 {
            let p = s.propose(k, &done);
            let f = p["factors"].as_i64().unwrap();
            assert!((16..=256).contains(&f), "{p:?}");
            let r = p["regularization"].as_f64().unwrap();
            assert!((0.01..=100.0).contains(&r), "{p:?}");
            assert!(["bm25", "cosine"].contains(&p["weighting"].as_str().unwrap()));
            assert_eq!(Search::new(space(), 3).propose(k, &done), p, "seeded");
            done.push(trial(k, p, k as f64));
        }
    }

    /// After the warm-up every third proposal is a small step from the best trial so far (here
    /// trial 4), which follows a ridge the independent kernels cannot.
    #[test]
    fn every_third_proposal_after_the_warm_up_steps_from_the_best() {
        let s = Search::new(space(), 5);
        let done: Vec<Trial> = (0..10).map(|k| trial(k, s.propose(k, &[]), if k == 4 { 1.0 } else { 0.0 })).collect();
        let top = &done[4].params;
        let unit = |d: &Dim, p: &Map<String, Value>| to_unit(d, &p[d.key]).unwrap();
        let mut near = 0;
        for k in [12, 15, 18, 21] {
            let p = s.propose(k, &done);
            let far = space().iter().map(|d| (unit(d, &p) - unit(d, top)).abs()).fold(0.0, f64::max);
            near += usize::from(far < 0.35);
        }
        assert_eq!(near, 4, "steps of 0.08 per coordinate stay near the best");
    }

    /// On a smooth objective the TPE-style proposals beat the random ones: the best of 15
    /// proposals after 10 random ones is closer to the optimum than the best of the first 10.
    #[test]
    fn proposals_after_the_warm_up_move_towards_good_regions() {
        let s = Search::new(space(), 11);
        let objective = |p: &Map<String, Value>| {
            let r = p["regularization"].as_f64().unwrap().ln() - 1.0_f64.ln();
            let a = (p["alpha"].as_f64().unwrap() - 30.0) / 40.0;
            -(r * r) / 10.0 - a * a
        };
        let mut done = Vec::new();
        for k in 0..25 {
            let p = s.propose(k, &done);
            let v = objective(&p);
            done.push(trial(k, p, v));
        }
        let best_of = |ts: &[Trial]| ts.iter().filter_map(|t| t.value).fold(f64::MIN, f64::max);
        let (warm, guided) = done.split_at(WARMUP);
        let mean = |ts: &[Trial]| ts.iter().filter_map(|t| t.value).sum::<f64>() / ts.len() as f64;
        assert!(mean(guided) > mean(warm), "guided mean {} vs random {}", mean(guided), mean(warm));
        assert!(best_of(guided) >= best_of(warm) - 0.05, "{} vs {}", best_of(guided), best_of(warm));
    }

    #[test]
    fn trial_logs_round_trip_resume_past_a_torn_line_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trials.jsonl");
        assert!(read_trials(&path).unwrap().is_empty());
        let s = Search::new(space(), 1);
        let t0 = trial(0, s.propose(0, &[]), 0.2);
        let mut t1 = trial(1, s.propose(1, &[]), 0.0);
        (t1.value, t1.error) = (None, Some("did not converge".into()));
        append_trial(&path, &t0).unwrap();
        append_trial(&path, &t1).unwrap();
        assert_eq!(read_trials(&path).unwrap(), vec![t0.clone(), t1.clone()]);
        assert_eq!(best(&[t0.clone(), t1.clone()]), Some(&t0));
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"trial\": 2, \"par").unwrap();
        assert_eq!(read_trials(&path).unwrap().len(), 2, "a torn last line is dropped");
        std::fs::write(&path, "{\"trial\": 0}\n{}\n").unwrap();
        let e = read_trials(&path).unwrap_err();
        assert!(e.contains("trials.jsonl, line 1"), "{e}");
    }

    #[test]
    fn snippets_are_yaml_a_config_reads() {
        let mut p = Map::new();
        p.insert("regularization".into(), Value::from(0.5));
        p.insert("factors".into(), Value::from(64));
        p.insert("weighting".into(), Value::from("bm25"));
        assert_eq!(yaml_snippet("als", &p), "kind: als\nfactors: 64\nregularization: 0.5\nweighting: \"bm25\"\n");
    }

    #[test]
    fn a_trial_is_pruned_below_the_median_of_its_peers_at_the_same_epoch() {
        let curved = |k: usize, curve: &[f64]| Trial {
            curve: curve.to_vec(),
            ..trial(k, Map::new(), curve.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        };
        // Peers' bests over their first 4 epochs: 0.125, 0.25, 0.375, 0.5 (a short trial of one
        // epoch does not count at epoch 4).
        let mut history: Vec<Trial> = (1..5).map(|k| curved(k, &[0.0, 0.0, 0.0, k as f64 * 0.125, 1.0])).collect();
        history.push(curved(0, &[0.9]));
        // 12 planned epochs: prunable from epoch 4.
        assert!(!prune(&history, &[0.0, 0.0, 0.0, 0.0], 12), "four peers are too few to prune");
        history.push(curved(5, &[0.0, 0.0, 0.0, 0.625])); // median 0.375
        assert!(prune(&history, &[0.0, 0.0, 0.0, 0.25], 12));
        assert!(!prune(&history, &[0.0, 0.0, 0.0, 0.375], 12), "at the median it goes on");
        assert!(!prune(&history, &[0.5, 0.0, 0.0, 0.0], 12), "the best so far counts, not the latest");
        assert!(!prune(&history, &[0.0, 0.0, 0.0], 12), "not before a third of its epochs");
        assert!(!prune(&history, &[0.0, 0.0, 0.0, 0.25], 9), "short runs are never pruned");
        // Failed trials are not peers.
        let failed = Trial { value: None, ..curved(7, &[0.9; 5]) };
        assert!(!prune(&vec![failed; 5], &[0.0; 4], 12));
        assert!(!prune(&history, &[], 12), "nothing validated yet");
    }
}
