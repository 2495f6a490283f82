//! `tandem tune SPLIT_DIR --model KIND`: hyper-parameter search on validation data carved from
//! the training part (never the test part), then the best settings refitted on all of train
//! and evaluated on test once, as `evaluate-split` does. [`Searcher`] is the search itself,
//! which `tandem run` also drives for a model entry with `tune:`.

use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde_json::{Map, Value};
use tandem_data::{IdMap, Interactions, NoProgress, Progress, Side, SplitDir};
use tandem_eval::holdout::{carve_folds, Holdout};
use tandem_eval::search::{append_trial, best, prune, read_trials, steady_best, yaml_snippet, Search, Trial};
use tandem_eval::{setup, Candidates, MetricAt, Parts, Setup};
use tandem_models::fit::EpochReport;
use tandem_models::TrainSet;
use tandem_rank::{registry, Spec, TwoStageSpec};

use super::evaluate_split::{evaluate_split, model_spec, param_map, SplitEval};
use crate::pipeline::Validation;

/// Options of `tune` beyond the model.
pub struct TuneOptions<'a> {
    /// Trials to run (a resumed search counts the ones already run).
    pub budget: usize,
    /// No trial starts after this long from the start of the search.
    pub time: Option<std::time::Duration>,
    /// The validation metric maximised.
    pub metric: MetricAt,
    /// How validation rows are carved from train.tsv (`None`: valid.tsv when the split has
    /// one, else the last 5 rows per user).
    pub holdout: Option<Holdout>,
    /// Seed of the proposals and of a `share` holdout.
    pub seed: u64,
    /// Validation sets carved from train whose mean scores a trial ([`carve_folds`]).
    pub folds: usize,
    /// Carry on from OUT/trials.jsonl.
    pub resume: bool,
    /// Trials run at once.
    pub parallel: usize,
    /// Stop trials trained in epochs that validate below their peers (the median rule).
    pub prune: bool,
    /// A MovieLens item file with the items' metadata.
    pub items: Option<&'a Path>,
    /// Cut-offs of the final test evaluation.
    pub ks: &'a [usize],
}

/// Validation rows carved from `rows` by `holdout`, `folds` times ([`carve_folds`]), ranked
/// with `candidates`: per fold the rows to fit on and the evaluation of the held-out ones.
pub(crate) fn carved(
    rows: &Interactions,
    (n_users, n_items): (usize, usize),
    items: &IdMap,
    (holdout, folds): (Holdout, usize),
    seed: u64,
    candidates: Candidates<'_>,
) -> Result<Vec<(TrainSet, Setup)>> {
    let carvings = carve_folds(rows, n_users, items, holdout, seed, folds)
        .map_err(|e| anyhow::anyhow!("holdout {holdout}: {e}"))?;
    let n = carvings.len();
    carvings
        .into_iter()
        .enumerate()
        .map(|(k, (fit, valid))| {
            let how =
                if n > 1 { format!("train, {holdout}, fold {} of {n}", k + 1) } else { format!("train, {holdout}") };
            validation_setup(fit, &valid, (n_users, n_items), candidates, &how)
        })
        .collect()
}

fn validation_setup(
    fit: Interactions,
    valid: &Interactions,
    (n_users, n_items): (usize, usize),
    candidates: Candidates<'_>,
    how: &str,
) -> Result<(TrainSet, Setup)> {
    if valid.is_empty() {
        bail!("no validation rows: {how} holds none (users need more rows than the holdout takes)");
    }
    let empty = Interactions::new();
    let parts = Parts { fit: &fit, train: &fit, valid: &empty, test: valid, n_users, n_items };
    let s = setup(&parts, candidates, format!("validation carved from {how}"), &[10])
        .map_err(|e| anyhow::anyhow!("validation data: {e}"))?;
    Ok((TrainSet::new(fit, n_users, n_items), s))
}

/// How a trial's epochs went: the epoch kept, the validation value after each, and where it
/// was pruned.
#[derive(Default)]
struct Fitted {
    epochs: Option<usize>,
    curve: Vec<f64>,
    pruned: Option<usize>,
    /// The value on each fold.
    values: Vec<f64>,
}

impl Fitted {
    /// The trial's value (the folds' mean), with the epoch kept: the curve's first best, as a
    /// trainer keeps it; `numbers` are the curve's epoch numbers.
    fn settle(mut self, numbers: &[usize]) -> (f64, Fitted) {
        let best = self.curve.iter().enumerate().fold(None, |top: Option<(usize, f64)>, (e, &v)| match top {
            Some((_, b)) if v <= b => top,
            _ => Some((e, v)),
        });
        self.epochs = best.and_then(|(e, _)| numbers.get(e).copied());
        let mean = self.values.iter().sum::<f64>() / self.values.len() as f64;
        (mean, self)
    }
}

/// Where folds trained in lockstep ([`Searcher::fit_in_lockstep`]) meet after each epoch.
struct Meeting {
    state: Mutex<Met>,
    turn: Condvar,
}

/// What the folds have validated so far.
struct Met {
    /// Each fold's values by epoch (`None`: the metric was not computed).
    curves: Vec<Vec<Option<f64>>>,
    /// Folds still fitting; one that ended (done, failed or panicked) is not waited for.
    fitting: Vec<bool>,
    /// A fold ended without a value: the others stop at their next epoch.
    failed: bool,
    /// The folds' mean by epoch, and the epochs' numbers.
    mean: Vec<f64>,
    numbers: Vec<usize>,
    /// The epoch after which the mean curve was pruned.
    pruned: Option<usize>,
}

/// A fold's place at the [`Meeting`]: dropped (on return, error or panic) it leaves, so no
/// other fold waits for it; dropped before [`Seat::done`] it also stops the others.
struct Seat<'m> {
    meeting: &'m Meeting,
    fold: usize,
    ok: bool,
}

impl Seat<'_> {
    fn done(&mut self) {
        self.ok = true;
    }
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        let mut met = self.meeting.lock();
        met.fitting[self.fold] = false;
        met.failed |= !self.ok;
        self.meeting.turn.notify_all();
    }
}

impl Meeting {
    fn new(folds: usize) -> Meeting {
        let met = Met {
            curves: vec![Vec::new(); folds],
            fitting: vec![true; folds],
            failed: false,
            mean: Vec::new(),
            numbers: Vec::new(),
            pruned: None,
        };
        Meeting { state: Mutex::new(met), turn: Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Met> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn seat(&self, fold: usize) -> Seat<'_> {
        Seat { meeting: self, fold, ok: false }
    }

    /// Fold `fold` validated `value` after `report`'s epoch: waits until every fold still
    /// fitting has, then returns the folds' mean at that epoch, asking the trainer to stop
    /// when `prune_at` prunes the mean curve or a fold failed.
    fn meet(&self, fold: usize, value: Option<f64>, report: &EpochReport, prune_at: &dyn Fn(&[f64]) -> bool) -> f64 {
        let mut met = self.lock();
        met.curves[fold].push(value);
        met.failed |= value.is_none();
        let e = met.curves[fold].len();
        self.turn.notify_all();
        while !met.failed && (0..met.curves.len()).any(|j| met.fitting[j] && met.curves[j].len() < e) {
            met = self.turn.wait(met).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if met.failed {
            report.stop();
            return value.unwrap_or(f64::NEG_INFINITY);
        }
        if met.mean.len() < e {
            // The first fold through computes the epoch's mean and the pruning verdict.
            let at: Vec<f64> = met.curves.iter().filter_map(|c| c.get(e - 1).copied().flatten()).collect();
            let mean = at.iter().sum::<f64>() / at.len() as f64;
            met.mean.push(mean);
            met.numbers.push(report.epoch);
            if met.pruned.is_none() && prune_at(&met.mean) {
                met.pruned = Some(report.epoch);
            }
        }
        if met.pruned.is_some() {
            report.stop();
        }
        met.mean[e - 1]
    }
}

/// One model's search: its kind and parameters, the space searched (the kind's, less the
/// fixed keys) and the data trials are fitted and validated on.
pub(crate) struct Searcher<'a> {
    kind: &'static tandem_models::kind::Kind,
    base: Map<String, Value>,
    search: Search,
    /// The rows each trial fits on and the validation it is scored on, one pair per fold (the
    /// trial's value is the mean).
    folds: Vec<(&'a TrainSet, Validation<'a>)>,
    side: Side<'a>,
    /// Stop trials trained in epochs that validate below their peers ([`prune`]).
    prune: bool,
}

impl<'a> Searcher<'a> {
    /// A search of `spec`'s kind around its parameters, `fixed` keys left as they are; the
    /// kind's recency dimensions ([`Dim::next_items`](tandem_models::kind::Dim)) only when the
    /// folds hold out what users do `next` rather than a random share.
    pub(crate) fn new(
        spec: &Spec,
        fixed: &[&str],
        (seed, next): (u64, bool),
        folds: Vec<(&'a TrainSet, Validation<'a>)>,
        side: Side<'a>,
    ) -> Result<Searcher<'a>> {
        let kind = registry::kind(spec.kind()).expect("a parsed spec has a known kind");
        let space: Vec<_> =
            kind.space().into_iter().filter(|d| !fixed.contains(&d.key) && (next || !d.next_items)).collect();
        if space.is_empty() {
            bail!("{}: nothing to search (its search space is empty or every key is fixed)", kind.name);
        }
        let Value::Object(base) = spec.params() else { unreachable!("parameters are a map") };
        if folds.is_empty() {
            bail!("no validation fold to score trials on");
        }
        Ok(Searcher { kind, base, search: Search::new(space, seed), folds, side, prune: true })
    }

    /// With `false`, every trial trains all its epochs (`tandem tune --no-prune`).
    pub(crate) fn pruning(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    /// The searched keys, for messages.
    pub(crate) fn keys(&self) -> String {
        self.search.space().iter().map(|d| d.key).collect::<Vec<_>>().join(", ")
    }

    /// Fits and validates one trial's parameters.
    fn trial(&self, trial: usize, history: &[Trial]) -> Trial {
        // The first trial is the defaults: what tuning must beat, on the same validation rows.
        let proposal: Map<String, Value> = match trial {
            0 => as_given(self.search.space(), &self.base),
            _ => self.search.propose(trial, history),
        };
        let mut params = self.base.clone();
        params.extend(proposal.clone());
        params.insert("kind".into(), self.kind.name.into());
        let t0 = Instant::now();
        let result = Spec::from_json(Value::Object(params))
            .map_err(anyhow::Error::msg)
            .and_then(|spec| spec.check().map(|_| spec).map_err(anyhow::Error::from))
            .and_then(|spec| self.fit_and_score(&spec, history));
        let (value, fitted, error) = match result {
            Ok((v, f)) => (Some(v), f, None),
            Err(e) => (None, Fitted::default(), Some(format!("{e:#}"))),
        };
        let metric = self.folds[0].1.metric.to_string();
        let Fitted { epochs, curve, pruned, values } = fitted;
        let folds = self.folds.len();
        let fold_values = if folds > 1 { values } else { Vec::new() };
        let seconds = t0.elapsed().as_secs_f64();
        Trial { trial, params: proposal, metric, value, error, seconds, epochs, curve, pruned, folds, fold_values }
    }

    /// The validation metric of `spec` fitted on each fold's training rows (their mean), and
    /// how its epochs went: models trained in epochs are validated after each, keep their best,
    /// and are pruned when they fall below the trials of `history` at the same epoch ([`prune`];
    /// runs of at least 10 epochs, after a third of them). With several folds such models train
    /// side by side ([`Self::fit_in_lockstep`]) and the curve is the folds' mean.
    fn fit_and_score(&self, spec: &Spec, history: &[Trial]) -> Result<(f64, Fitted)> {
        let planned = spec.params().get("epochs").and_then(Value::as_u64).unwrap_or(0) as usize;
        if planned > 0 && self.folds.len() > 1 {
            return self.fit_in_lockstep(spec, history, planned);
        }
        let mut fitted = Fitted::default();
        // Each fold's validation values by epoch, and the epochs' numbers (the folds count alike).
        let (mut curves, mut numbers): (Vec<Vec<f64>>, Vec<usize>) = (Vec::new(), Vec::new());
        for (train, validation) in &self.folds {
            let mut curve: Vec<f64> = Vec::new();
            let first = curves.is_empty();
            let model = spec.fit_validated(train, self.side, &NoProgress, &mut |report, model| {
                let v = validation.score(model, &train.user_items)?;
                curve.push(v);
                if first {
                    numbers.push(report.epoch);
                }
                if self.prune && prune(history, &curve, planned) {
                    fitted.pruned = Some(report.epoch);
                    report.stop();
                }
                Some(v)
            })?;
            fitted.values.push(validation.score(&*model, &train.user_items).context("the metric was not computed")?);
            curves.push(curve);
            if fitted.pruned.is_some() {
                break;
            }
        }
        let ran = curves.iter().map(Vec::len).min().unwrap_or(0);
        fitted.curve = (0..ran).map(|e| curves.iter().map(|c| c[e]).sum::<f64>() / curves.len() as f64).collect();
        Ok(fitted.settle(&numbers))
    }

    /// [`Self::fit_and_score`] for a model trained in epochs on several folds: each fold fits
    /// on its own thread and pool, and after every epoch waits for the others, so that every
    /// fold's trainer is handed the folds' mean. All of them then keep, stop early and are pruned
    /// at the same epoch, chosen on the mean curve. (Folds fitted one after another stopped each
    /// on its own curve, and the mean covered only the epochs the shortest ran: one fold peaking
    /// early cut a trial's epochs short. On ml-100k temporal, mf's best trial kept 7 of its 47
    /// epochs while its mean curve was still rising.)
    fn fit_in_lockstep(&self, spec: &Spec, history: &[Trial], planned: usize) -> Result<(f64, Fitted)> {
        let meeting = Meeting::new(self.folds.len());
        // Each fold's pool as wide as the one the trial runs on: MF deals its blocks by the
        // thread count, so a fold trains as the final refit will.
        let threads = rayon::current_num_threads();
        let prune_at = |curve: &[f64]| self.prune && prune(history, curve, planned);
        let values: Vec<Result<f64>> = std::thread::scope(|s| {
            let fits: Vec<_> = self
                .folds
                .iter()
                .enumerate()
                .map(|(k, (train, validation))| {
                    let (meeting, prune_at) = (&meeting, &prune_at);
                    s.spawn(move || {
                        let mut seat = meeting.seat(k);
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .context("starting a thread pool for a validation fold")?;
                        let model = pool.install(|| {
                            spec.fit_validated(train, self.side, &NoProgress, &mut |report, model| {
                                let v = validation.score(model, &train.user_items);
                                Some(meeting.meet(k, v, report, prune_at))
                            })
                        })?;
                        let value = pool
                            .install(|| validation.score(&*model, &train.user_items))
                            .context("the metric was not computed")?;
                        seat.done();
                        Ok(value)
                    })
                })
                .collect();
            fits.into_iter().map(|h| h.join().unwrap_or_else(|_| bail!("a validation fold's fit panicked"))).collect()
        });
        let values = values.into_iter().collect::<Result<Vec<f64>>>()?;
        let met = meeting.state.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fitted = Fitted { epochs: None, curve: met.mean, pruned: met.pruned, values };
        Ok(fitted.settle(&met.numbers))
    }

    /// Runs trials until `budget`, `parallel` at a time, after the `done` ones, appending each
    /// to `log` and printing a line per trial (`label` first). A batch's proposals all see the
    /// trials before the batch, so a resumed search (same seed and parallelism) proposes what
    /// an uninterrupted one would.
    pub(crate) fn run(
        &self,
        budget: usize,
        parallel: usize,
        mut done: Vec<Trial>,
        log: Option<&Path>,
        label: &str,
        deadline: Option<Instant>,
    ) -> Result<Vec<Trial>> {
        let parallel = parallel.max(1);
        let mut next = done.len();
        while next < budget {
            // At least one trial runs, so there is a best to refit.
            if next > 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                eprintln!("{label}time is up after {next} of {budget} trials");
                break;
            }
            let start = next - next % parallel;
            let end = (start + parallel).min(budget);
            let history = &done[..start];
            let batch: Vec<Trial> = (next..end).into_par_iter().map(|k| self.trial(k, history)).collect();
            for t in batch {
                if let Some(log) = log {
                    append_trial(log, &t).with_context(|| format!("writing {}", log.display()))?;
                }
                done.push(t);
                print_trial(label, budget, &done);
            }
            next = end;
        }
        Ok(done)
    }

    /// The settled trial's settings ([`steady_best`]: with folds, the best that beats the defaults on
    /// every fold) as parameters: `fixed`, the searched ones, and the epochs
    /// validation kept (for kinds with `epochs`). Errors when every trial failed.
    pub(crate) fn chosen(&self, done: &[Trial], fixed: Map<String, Value>) -> Result<(Trial, Map<String, Value>)> {
        let Some(top) = steady_best(done).cloned() else {
            let why = done.iter().find_map(|t| t.error.clone()).unwrap_or_default();
            bail!("{}: every trial failed (the first: {why})", self.kind.name);
        };
        let mut chosen = fixed;
        chosen.extend(top.params.clone());
        if let (Some(e), true) = (top.epochs, self.base.contains_key("epochs")) {
            chosen.insert("epochs".into(), e.into());
        }
        Ok((top, chosen))
    }
}

/// A pipeline's search: each retriever's own space first (half the budget, shared evenly; a
/// retriever alone on the same validation rows), then the ranker's on the tuned retrievers'
/// candidates, which are fitted once (every window's retrievers and examples) while each trial
/// fits only a ranker. With several `folds` the retrievers' trials are scored on each; the
/// ranker's on the first (each fold would need its own windows). Returns the ranker's trials (written to `log`; the retrievers' go to
/// [`retriever_log`]s beside it), the best, and the pipeline's chosen `retrievers` and `ranker`.
pub(crate) fn tune_pipeline(
    pipeline: &TwoStageSpec,
    (folds, side): (&[(&TrainSet, Validation<'_>)], Side<'_>),
    done: Vec<Trial>,
    log: &Path,
    opts: &Budget,
    how: &str,
) -> Result<(Vec<Trial>, Trial, Map<String, Value>)> {
    let mut pipeline = pipeline.clone();
    let (train, validation) = *folds.first().context("no validation fold")?;
    let n = pipeline.retrievers.len();
    // Only retrievers with something to search share their half of the budget.
    let searched =
        pipeline.retrievers.iter().filter(|r| registry::kind(r.kind()).is_some_and(|k| !k.space().is_empty())).count();
    let per_retriever = (opts.budget / 2 / searched.max(1)).max(1);
    let ranker_budget = opts.budget.saturating_sub(per_retriever * searched).max(1);
    eprintln!(
        "tune two_stage on {how} ({} validation users, {}): {per_retriever} trials per retriever, then {ranker_budget} for the ranker",
        validation.set.len(),
        validation.metric
    );
    let mut turn = 0;
    for k in 0..n {
        let spec = &pipeline.retrievers[k];
        let searcher = match Searcher::new(spec, &[], (opts.seed, opts.next_items), folds.to_vec(), side) {
            Ok(s) => s.pruning(opts.prune),
            Err(e) => {
                eprintln!("retrievers.{k} ({}): kept as given ({e})", spec.kind());
                continue;
            }
        };
        let rlog = retriever_log(log, k);
        let before =
            if opts.resume && rlog.exists() { read_trials(&rlog).map_err(anyhow::Error::msg)? } else { Vec::new() };
        if !opts.resume && rlog.exists() {
            bail!("{} exists: pass --resume to carry on with it, or choose another --out", rlog.display());
        }
        if let Some(t) = before.iter().find(|t| t.folds != folds.len()) {
            bail!(
                "{}: trial {} was scored on {} fold(s), not {} (--folds)",
                rlog.display(),
                t.trial,
                t.folds,
                folds.len()
            );
        }
        eprintln!("retrievers.{k} ({}): searching {}", spec.kind(), searcher.keys());
        let label = format!("retrievers.{k} ");
        // Each searched retriever in turn may start trials until its share of the retrievers'
        // half of the time.
        turn += 1;
        let deadline = opts.time.map(|(t0, t)| t0 + t.mul_f64(turn as f64 / (2.0 * searched.max(1) as f64)));
        let trials = searcher.run(per_retriever, opts.parallel, before, Some(&rlog), &label, deadline)?;
        let Value::Object(given) = spec.params() else { unreachable!("parameters are a map") };
        let (_, mut chosen) = searcher.chosen(&trials, given)?;
        chosen.insert("kind".into(), spec.kind().into());
        pipeline.retrievers[k] = Spec::from_json(Value::Object(chosen)).map_err(anyhow::Error::msg)?;
    }
    eprintln!("fitting the tuned retrievers and the ranker's windows once");
    let mut prepared = pipeline.prepare(train, side, &NoProgress).context("preparing the pipeline's windows")?;
    let Value::Object(base) = serde_json::to_value(&pipeline.ranker)? else { unreachable!("a ranker is a map") };
    let search = Search::new(pipeline.ranker.space(), opts.seed);
    let metric = validation.metric.to_string();
    let mut done = done;
    for trial in done.len()..ranker_budget {
        if trial > 0 && opts.time.is_some_and(|(t0, t)| t0.elapsed() >= t) {
            eprintln!("ranker: time is up after {trial} of {ranker_budget} trials");
            break;
        }
        let proposal: Map<String, Value> = match trial {
            // The ranker as given first: what tuning must beat.
            0 => as_given(search.space(), &base),
            _ => search.propose(trial, &done),
        };
        let t0 = Instant::now();
        let mut params = base.clone();
        params.extend(proposal.clone());
        let scored = serde_json::from_value::<tandem_rank::RankerSpec>(Value::Object(params))
            .map_err(anyhow::Error::from)
            .and_then(|spec| {
                let ranker = prepared.fit_ranker(&spec, &NoProgress)?;
                prepared
                    .with_ranker(&spec, ranker, |m| validation.score(m, &train.user_items))
                    .context("the metric was not computed")
            });
        let (value, error) = match scored {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        let t = Trial {
            trial,
            params: proposal,
            metric: metric.clone(),
            value,
            error,
            seconds: t0.elapsed().as_secs_f64(),
            epochs: None,
            curve: Vec::new(),
            pruned: None,
            folds: 1,
            fold_values: Vec::new(),
        };
        append_trial(log, &t).with_context(|| format!("writing {}", log.display()))?;
        done.push(t);
        print_trial("ranker ", ranker_budget, &done);
    }
    let Some(top) = best(&done).cloned() else {
        let why = done.iter().find_map(|t| t.error.clone()).unwrap_or_default();
        bail!("two_stage: every ranker trial failed (the first: {why})");
    };
    let mut ranker = base;
    ranker.extend(top.params.clone());
    let retrievers: Vec<Value> = pipeline
        .retrievers
        .iter()
        .map(|r| {
            let mut m: Map<String, Value> = match r.params() {
                Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), tidy(v))).collect(),
                _ => Map::new(),
            };
            m.insert("kind".into(), r.kind().into());
            Value::Object(m)
        })
        .collect();
    let chosen: Map<String, Value> =
        [("retrievers".to_string(), Value::Array(retrievers)), ("ranker".to_string(), Value::Object(ranker))]
            .into_iter()
            .collect();
    Ok((done, top, chosen))
}

/// How much a pipeline search runs: trials in all, at once, its seed, and whether it carries
/// on from its logs.
pub(crate) struct Budget {
    pub(crate) budget: usize,
    pub(crate) parallel: usize,
    pub(crate) seed: u64,
    pub(crate) resume: bool,
    pub(crate) prune: bool,
    /// Whether validation holds out users' next items (see [`Searcher::new`]).
    pub(crate) next_items: bool,
    /// The search's start and how long trials may start after it.
    pub(crate) time: Option<(Instant, std::time::Duration)>,
}

/// `90s`, `10m`, `1h` or plain seconds, as a duration.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len()));
    let scale = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("'{text}': expected a duration such as 90s, 10m or 1h")),
    };
    match number.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(std::time::Duration::from_secs_f64(v * scale)),
        _ => Err(format!("'{text}': expected a positive duration such as 90s, 10m or 1h")),
    }
}

/// The log of retriever `k`'s trials beside a pipeline's `log` (`trials.jsonl` ->
/// `trials.retrievers.K.jsonl`).
pub(crate) fn retriever_log(log: &Path, k: usize) -> std::path::PathBuf {
    let stem = log.file_stem().map_or("trials".into(), |s| s.to_string_lossy().into_owned());
    log.with_file_name(format!("{stem}.retrievers.{k}.jsonl"))
}

/// The searched keys' values in `base` (the settings as given: a search's first trial).
fn as_given(space: &[tandem_models::kind::Dim], base: &Map<String, Value>) -> Map<String, Value> {
    space.iter().filter_map(|d| Some((d.key.to_string(), tidy(base.get(d.key)?)))).collect()
}

/// The line of the latest of `done`, with the best so far (`label` first).
fn print_trial(label: &str, budget: usize, done: &[Trial]) {
    let Some(t) = done.last() else { return };
    let top = best(done);
    eprintln!(
        "{label}trial {:>3}/{budget}  {} {}  best {} (trial {})  {:>6.1} s  {}{}{}",
        t.trial + 1,
        t.metric,
        t.value.map_or("failed".to_string(), |v| format!("{v:.4}")),
        top.and_then(|b| b.value).map_or("-".to_string(), |v| format!("{v:.4}")),
        top.map_or(0, |b| b.trial + 1),
        t.seconds,
        describe(&t.params),
        t.pruned.map_or(String::new(), |e| format!("  pruned after epoch {e}")),
        t.error.as_ref().map_or(String::new(), |e| format!("  error: {e}")),
    );
}

/// A default as a person writes it: parameters held in f32 serialise as 0.10000000149011612;
/// seven significant digits give back 0.1.
fn tidy(v: &Value) -> Value {
    match v.as_f64() {
        Some(x) if v.is_f64() && x.is_finite() => format!("{x:.6e}").parse::<f64>().map_or(v.clone(), Value::from),
        _ => v.clone(),
    }
}

fn describe(params: &Map<String, Value>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_string)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Searches `model`'s space on validation data carved from `split_dir`'s train.tsv (fixed
/// `params` stay as given), writing every trial to OUT/trials.jsonl, then refits the best
/// and evaluates it on test.tsv into OUT (report.json, predictions.tsv, best.yaml, tune.json,
/// trials.svg).
pub fn tune(
    split_dir: &Path,
    model: &str,
    params: &[String],
    out: &Path,
    opts: &TuneOptions<'_>,
    progress: &dyn Progress,
) -> Result<()> {
    let started = Instant::now();
    let params = &share_windows(model, params, opts.holdout)?;
    let base = model_spec(model, params)?;
    let fixed = param_map(params)?;
    let fixed_keys: Vec<&str> = fixed.keys().map(String::as_str).collect();
    if opts.budget == 0 {
        bail!("--budget must be at least 1");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let log = out.join("trials.jsonl");
    let done = if opts.resume {
        read_trials(&log).map_err(anyhow::Error::msg)?
    } else if log.exists() {
        bail!("{} exists: pass --resume to carry on with it, or choose another --out", log.display());
    } else {
        Vec::new()
    };
    let metric_name = opts.metric.to_string();
    if let Some(t) = done.iter().find(|t| t.metric != metric_name) {
        bail!("{}: trial {} was scored on {}, not {metric_name}", log.display(), t.trial, t.metric);
    }
    // A pipeline's ranker trials score on the first fold only.
    let folds = if base.kind() == "two_stage" { 1 } else { opts.folds };
    if let Some(t) = done.iter().find(|t| t.folds != folds) {
        bail!("{}: trial {} was scored on {} fold(s), not {folds} (--folds)", log.display(), t.trial, t.folds);
    }
    let mut sd = SplitDir::load_without_test(split_dir, progress)
        .with_context(|| format!("loading split {} (train and valid only)", split_dir.display()))?;
    if let Some(items) = opts.items {
        sd.read_item_metadata(items, progress).with_context(|| format!("--items {}", items.display()))?;
    }
    let sizes = (sd.dataset.n_users(), sd.dataset.n_items());
    // valid.tsv (with its negatives) when the split has one and no holdout is asked for.
    let given = opts.holdout.is_none() && !sd.valid.is_empty();
    let (carvings, how, next_items) = if given {
        if opts.folds > 1 {
            bail!(
                "--folds {}: folds are carved from train.tsv, and this split validates on its valid.tsv; pass --holdout (last:N, share:S or days:D) to carve them instead",
                opts.folds
            );
        }
        let candidates = match sd.valid_negatives.as_deref() {
            Some(test) => Candidates::Given { test, valid: None },
            None => Candidates::Full { exclude_seen: true },
        };
        let fold = validation_setup(sd.train.clone(), &sd.valid, sizes, candidates, "valid.tsv")?;
        // A split's own valid part: assumed to follow time (leave-one-out, temporal).
        (vec![fold], "valid.tsv".to_string(), true)
    } else {
        let h = opts.holdout.unwrap_or(Holdout::Last(5));
        // A split ranked against given negatives is mirrored by as many drawn ones per user.
        let drawn = sd.valid_negatives.as_ref().and_then(|v| v.first()).map(|(_, n)| n.len());
        let candidates = match drawn {
            Some(n) => Candidates::Drawn { n, sampling: tandem_eval::NegativeSampling::Uniform, seed: opts.seed },
            None => Candidates::Full { exclude_seen: true },
        };
        let carvings = carved(&sd.train, sizes, &sd.dataset.items, (h, opts.folds), opts.seed, candidates)?;
        let against = drawn.map_or(String::new(), |n| format!(", against {n} drawn negatives"));
        let folds = if opts.folds > 1 { format!(", mean of {} folds", opts.folds) } else { String::new() };
        (carvings, format!("train.tsv, {h} per user{against}{folds}"), h.follows_time())
    };
    let folds: Vec<(&TrainSet, Validation<'_>)> = carvings
        .iter()
        .map(|(t, s)| (t, Validation { set: &s.test, protocol: &s.protocol, metric: opts.metric }))
        .collect();
    let (done, top, chosen) = match base.get::<TwoStageSpec>() {
        Some(pipeline) => {
            let budget = Budget {
                budget: opts.budget,
                parallel: opts.parallel,
                seed: opts.seed,
                resume: opts.resume,
                prune: opts.prune,
                next_items,
                time: opts.time.map(|t| (started, t)),
            };
            let data = (&folds[..], sd.dataset.side());
            let (done, top, chosen) = tune_pipeline(pipeline, data, done, &log, &budget, &how)?;
            let mut all = fixed;
            all.extend(chosen);
            (done, top, all)
        }
        None => {
            let searcher = Searcher::new(&base, &fixed_keys, (opts.seed, next_items), folds.clone(), sd.dataset.side())
                .map_err(|e| anyhow::anyhow!("--model {model}: {e}"))?
                .pruning(opts.prune);
            eprintln!(
                "tune {}: {} trials, {} at a time, on {how} ({} validation users, {metric_name}); {} already run; searching {}",
                base.kind(),
                opts.budget,
                opts.parallel.max(1),
                folds[0].1.set.len(),
                done.len(),
                searcher.keys()
            );
            let deadline = opts.time.map(|t| started + t);
            let done = searcher.run(opts.budget, opts.parallel, done, Some(&log), "", deadline)?;
            let (top, chosen) = searcher.chosen(&done, fixed)?;
            (done, top, chosen)
        }
    };
    std::fs::write(out.join("trials.svg"), tandem_eval::search::trials_svg(&metric_name, &done))
        .with_context(|| format!("writing {}", out.join("trials.svg").display()))?;
    std::fs::write(out.join("best.yaml"), yaml_snippet(base.kind(), &chosen))
        .with_context(|| format!("writing {}", out.join("best.yaml").display()))?;
    // With folds the trial settled on may not be the best mean: say which was passed over.
    let passed_over = best(&done).filter(|b| b.trial != top.trial).map_or(String::new(), |b| {
        format!(
            "; trial {}, the best mean at {:.4}, lost to the defaults on a fold",
            b.trial + 1,
            b.value.unwrap_or(f64::NAN)
        )
    });
    eprintln!(
        "best of {} trials: {metric_name} {:.4} on validation (trial {}{passed_over}); refitting on all of train{} and evaluating on test",
        done.len(),
        top.value.unwrap_or(f64::NAN),
        top.trial + 1,
        if given { " + valid" } else { "" }
    );
    // Values as JSON, which the YAML parser of `--param` reads back (nested lists and maps too).
    let final_params: Vec<String> = chosen.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let eval = SplitEval {
        ks: opts.ks,
        valid_metric: None,
        save: None,
        load: None,
        train_with_valid: given,
        items: opts.items,
        diagnostics: false,
        ratings: None,
        explicit_threshold: 2.0,
        print: true,
    };
    evaluate_split(split_dir, base.kind(), &final_params, out, &eval, progress)?;
    let summary = serde_json::json!({
        "split_dir": split_dir.display().to_string(),
        "kind": base.kind(),
        "metric": metric_name,
        "validation": how,
        "budget": opts.budget,
        "seed": opts.seed,
        "folds": opts.folds,
        "trials": done.len(),
        "failed": done.iter().filter(|t| t.value.is_none()).count(),
        "best": top,
        "params": chosen,
        "seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(out.join("tune.json"), serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", out.join("tune.json").display()))?;
    println!("{}", yaml_snippet(base.kind(), &chosen).trim_end());
    Ok(())
}

/// A two_stage pipeline tuned on a `share` holdout learns its ranker from windows of the same
/// kind, a random share of each user's rows (what the validation holds out), unless the
/// parameters choose its windows.
fn share_windows(model: &str, params: &[String], holdout: Option<Holdout>) -> Result<Vec<String>> {
    let mut params = params.to_vec();
    let Some(Holdout::Share(share)) = holdout else { return Ok(params) };
    let given = param_map(&params)?;
    let chosen = ["window", "window_days", "window_share"].iter().any(|k| given.contains_key(*k));
    if model.replace('-', "_") == "two_stage" && !chosen {
        eprintln!(
            "two_stage: the ranker's windows hold out a random {share} of each user's rows, as the validation does \
             (set window, window_days or window_share to choose otherwise)"
        );
        params.push(format!("window_share={share}"));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two folds: one peaks at epoch 2, one keeps rising. Each trainer is handed the mean at
    /// every epoch, and both stop at the epoch the mean curve is pruned at.
    #[test]
    fn folds_in_lockstep_see_the_mean_and_stop_together() {
        let curves = [[0.1, 0.3, 0.2, 0.2], [0.3, 0.1, 0.4, 0.4]];
        let meeting = Meeting::new(2);
        let prune_at = |mean: &[f64]| mean.len() == 3;
        let seen: Vec<Vec<(f64, bool)>> = std::thread::scope(|s| {
            let fits: Vec<_> = curves
                .iter()
                .enumerate()
                .map(|(k, curve)| {
                    let (meeting, prune_at) = (&meeting, &prune_at);
                    s.spawn(move || {
                        let mut seat = meeting.seat(k);
                        let mut seen = Vec::new();
                        for (e, &v) in curve.iter().enumerate() {
                            let report = EpochReport::at(e + 1);
                            seen.push((meeting.meet(k, Some(v), &report, prune_at), report.stopped()));
                            if report.stopped() {
                                break;
                            }
                        }
                        seat.done();
                        seen
                    })
                })
                .collect();
            fits.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let means: Vec<f64> = seen[0].iter().map(|x| (x.0 * 100.0).round() / 100.0).collect();
        assert_eq!(means, vec![0.2, 0.2, 0.3]);
        assert_eq!(seen[0], seen[1], "both folds see the same means and stop at the same epoch");
        assert_eq!(seen[0].iter().map(|x| x.1).collect::<Vec<_>>(), vec![false, false, true]);
        let met = meeting.state.into_inner().unwrap();
        assert_eq!((met.pruned, met.numbers), (Some(3), vec![1, 2, 3]));
    }

    /// A fold that fails (here: leaves before its first epoch) is not waited for: the other
    /// stops at once instead of hanging.
    #[test]
    fn a_failed_fold_stops_the_others() {
        let meeting = Meeting::new(2);
        drop(meeting.seat(1));
        let report = EpochReport::at(1);
        let _seat = meeting.seat(0);
        meeting.meet(0, Some(0.5), &report, &|_| false);
        assert!(report.stopped());
    }

    #[test]
    fn a_share_holdout_gives_two_stage_share_windows_unless_windows_are_chosen() {
        let share = Some(Holdout::Share(0.1));
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            share_windows("two_stage", &p(&["windows=3"]), share).unwrap(),
            p(&["windows=3", "window_share=0.1"])
        );
        assert_eq!(share_windows("two_stage", &p(&["window_days=7"]), share).unwrap(), p(&["window_days=7"]));
        assert_eq!(share_windows("two_stage", &p(&[]), Some(Holdout::Last(5))).unwrap(), p(&[]));
        assert_eq!(share_windows("als", &p(&[]), share).unwrap(), p(&[]));
    }

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(parse_duration("90s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(std::time::Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5h"), Ok(std::time::Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(std::time::Duration::from_secs(45)));
        for bad in ["", "0s", "10 minutes", "-3m", "m"] {
            assert!(parse_duration(bad).unwrap_err().contains("10m"), "{bad}");
        }
    }

    #[test]
    fn f32_defaults_read_as_written() {
        assert_eq!(tidy(&Value::from(0.1f32 as f64)), Value::from(0.1));
        assert_eq!(tidy(&Value::from(0.001f32 as f64)), Value::from(0.001));
        assert_eq!(tidy(&Value::from(64)), Value::from(64));
        assert_eq!(tidy(&Value::from("bm25")), Value::from("bm25"));
    }
}
