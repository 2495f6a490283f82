//! `tandem run CONFIG`: the configured pipeline, end to end.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indexmap::IndexMap;
use serde_json::{Map, Value};
use tandem_data::{Dataset, Interactions, Progress, Split};
use tandem_eval::holdout::Holdout;
use tandem_eval::search::yaml_snippet;
use tandem_eval::{
    items_with_interactions, setup, write_lists, Candidates, ListWriter, Parts, Report, Setup, SubmissionFormat,
};
use tandem_models::{popular_items, recommend_each, Histories, Query, TrainSet};
use tandem_rank::Spec;

use crate::config::{Config, FilterOrder, FitOn, Ranking, SubmissionSpec, TuneSpec};
use crate::pipeline::{default_columns, fit_and_evaluate, write_report, EvalPlan, Validation};

/// Runs the pipeline of `config_path` and writes its outputs into `out`.
pub fn run(config_path: &Path, overrides: &[String], out: &Path, progress: &dyn Progress) -> Result<()> {
    let started = Instant::now();
    let cfg = Config::load(config_path, overrides)?;
    super::set_threads(cfg.threads)?;

    let mut data = cfg.data.load(progress).context("loading data")?;
    for r in &data.reports {
        eprintln!("{r}");
    }
    let stats = data.stats();
    // From here the split holds every row: the loaded log goes rather than stay a second copy
    // (at H&M size each copy is 640 MB).
    let log = std::mem::take(&mut data.interactions);
    let mut split = split_data(&cfg, log, &data)?;
    eprintln!("{}", split.report);

    let (n_users, n_items) = (data.n_users(), data.n_items());
    let train = TrainSet::new(std::mem::take(&mut split.train), n_users, n_items);
    let ev = &cfg.evaluation;
    let candidates = match ev.ranking {
        Ranking::Full => Candidates::Full { exclude_seen: ev.exclude_seen },
        Ranking::Sampled => Candidates::Drawn { n: ev.negatives, sampling: ev.sampling, seed: ev.seed },
    };
    let parts = Parts { fit: &train.log, train: &train.log, valid: &split.valid, test: &split.test, n_users, n_items };
    let Setup { history, test, protocol, valid: valid_set, valid_protocol, info, .. } =
        setup(&parts, candidates, split.report.method.clone(), &ev.ks)?;

    let mut models = IndexMap::new();
    let keep = cfg.output.predictions;
    for (name, spec) in &cfg.models {
        let validation = (!valid_set.is_empty()).then_some(Validation {
            set: &valid_set,
            protocol: &valid_protocol,
            metric: ev.validation_metric,
        });
        let tuned = match cfg.tuning.get(name) {
            Some(t) => Some(tune_entry(name, spec, t, &cfg, &train, &data, candidates, validation.as_ref(), out)?),
            None => None,
        };
        let spec = tuned.as_ref().unwrap_or(spec);
        let plan = EvalPlan { test: &test, history: &history, protocol: &protocol, ks: &ev.ks, keep, validation };
        let done = fit_and_evaluate(name, spec, &train, data.side(), &plan, progress)?;
        eprintln!(
            "{name}: fitted in {:.2}s, evaluated {} users in {:.2}s",
            done.report.fit_seconds, done.report.users, done.report.eval_seconds
        );
        if keep > 0 {
            let path = out.join("predictions").join(format!("{name}.tsv"));
            write_lists(&path, SubmissionFormat::Tsv, &data.users, &data.items, &done.evaluation.predictions, keep)?;
        }
        if cfg.output.save_models {
            let dir = out.join("models").join(name);
            let parts = tandem_rank::model_dir::DataParts {
                users: &data.users,
                items: &data.items,
                history: &train.user_items,
                item_info: &data.item_info,
            };
            tandem_rank::model_dir::save(&dir, name, &*done.model, &parts)?;
        }
        models.insert(name.clone(), done.report);
    }
    // What evaluation needed goes before a submission fits on everything.
    drop((history, test, protocol, valid_set, valid_protocol));

    let report = Report {
        tandem_version: env!("CARGO_PKG_VERSION").to_string(),
        data: serde_json::json!({ "stats": stats, "loading": data.reports, "split": split.report }),
        protocol: info,
        models,
    };
    write_report(out, &report, cfg.output.plot, cfg.output.plot)?;
    if let Some(sub) = &cfg.output.submission {
        let mut log = train.log;
        if sub.fit_on == FitOn::All {
            log.extend(&split.valid);
            log.extend(&split.test);
        }
        drop((train.user_items, split));
        write_submission(&cfg, sub, &data, log, out, progress)?;
    }
    let columns = if ev.table.is_empty() { default_columns(&ev.ks) } else { ev.table.clone() };
    println!("\n{}", report.table(&columns));
    println!("{}", report.protocol_line());
    println!("wrote {} in {:.1}s", out.join("report.json").display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Splits `log` (the rows of `data`) as `cfg` says, positives filtered where it says.
/// Tunes model `name` (a `tune:` entry) on the split's valid part when it has one, else on
/// validation rows carved from train as the split cut its test part; writes
/// `OUT/tuned/NAME.trials.jsonl` and `OUT/tuned/NAME.yaml` and returns the tuned spec.
#[allow(clippy::too_many_arguments)]
fn tune_entry(
    name: &str,
    spec: &Spec,
    t: &TuneSpec,
    cfg: &Config,
    train: &TrainSet,
    data: &Dataset,
    candidates: Candidates<'_>,
    valid: Option<&Validation<'_>>,
    out: &Path,
) -> Result<Spec> {
    let metric = t.metric.unwrap_or(cfg.evaluation.validation_metric);
    let holdout = match &t.holdout {
        Some(h) => Some(h.parse::<Holdout>().map_err(anyhow::Error::msg)?),
        None => None,
    };
    let sizes = (data.n_users(), data.n_items());
    // The valid part as it is, or rows carved from train.
    let carved_rows = match (holdout, valid) {
        (None, Some(_)) => None,
        (h, _) => {
            let h = h.or_else(|| Holdout::mirroring(&cfg.split)).with_context(|| {
                format!("models.{name}.tune.holdout: the split ({}) has no valid part to tune on and no per-user counterpart; say last:N, share:S or days:D", cfg.split.describe())
            })?;
            Some((h, super::tune::carved(&train.log, sizes, &data.items, (h, t.folds), t.seed, candidates)?))
        }
    };
    // Recency is searched when the validation rows follow time: a carved holdout that does,
    // or the valid part of a split that does.
    let next_items = carved_rows.as_ref().map_or(cfg.split.follows_time(), |(h, _)| h.follows_time());
    let (folds, how) = match &carved_rows {
        Some((h, carvings)) => {
            let folds: Vec<(&TrainSet, Validation<'_>)> = carvings
                .iter()
                .map(|(fit, s)| (fit, Validation { set: &s.test, protocol: &s.protocol, metric }))
                .collect();
            let mean = if t.folds > 1 { format!(", mean of {} folds", t.folds) } else { String::new() };
            (folds, format!("rows carved from train, {h}{mean}"))
        }
        None => {
            if t.folds > 1 {
                bail!(
                    "models.{name}.tune.folds: folds are carved from train, and this split has a valid part to tune on; set tune.holdout to carve them instead"
                );
            }
            let v = valid.expect("matched above");
            (vec![(train, Validation { set: v.set, protocol: v.protocol, metric })], "the valid part".to_string())
        }
    };
    let dir = out.join("tuned");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.join(format!("{name}.trials.jsonl"));
    // A new run searches anew.
    let _ = std::fs::remove_file(&log);
    let (done, top, chosen) = match spec.get::<tandem_rank::TwoStageSpec>() {
        Some(pipeline) => {
            for k in 0..pipeline.retrievers.len() {
                let _ = std::fs::remove_file(super::tune::retriever_log(&log, k));
            }
            let budget = super::tune::Budget {
                budget: t.budget,
                parallel: 1,
                seed: t.seed,
                resume: false,
                prune: true,
                next_items,
                time: None,
            };
            let data = (&folds[..], data.side());
            super::tune::tune_pipeline(pipeline, data, Vec::new(), &log, &budget, &how)
                .with_context(|| format!("models.{name}.tune"))?
        }
        None => {
            let searcher = super::tune::Searcher::new(spec, &[], (t.seed, next_items), folds, data.side())
                .map_err(|e| anyhow::anyhow!("models.{name}.tune: {e}"))?;
            eprintln!("{name}: tuning {} trials on {how} ({metric}); searching {}", t.budget, searcher.keys());
            let done = searcher.run(t.budget, 1, Vec::new(), Some(&log), &format!("{name}: "), None)?;
            let (top, chosen) = searcher.chosen(&done, Map::new())?;
            (done, top, chosen)
        }
    };
    std::fs::write(dir.join(format!("{name}.yaml")), yaml_snippet(spec.kind(), &chosen))
        .with_context(|| format!("writing {}", dir.join(format!("{name}.yaml")).display()))?;
    eprintln!(
        "{name}: best of {} trials {metric} {:.4} (trial {}): {}",
        done.len(),
        top.value.unwrap_or(f64::NAN),
        top.trial + 1,
        yaml_snippet(spec.kind(), &chosen).lines().skip(1).collect::<Vec<_>>().join(", ")
    );
    let Value::Object(mut params) = spec.params() else { unreachable!("parameters are a map") };
    params.extend(chosen);
    params.insert("kind".into(), spec.kind().into());
    Spec::from_json(Value::Object(params)).map_err(|e| anyhow::anyhow!("models.{name}: tuned parameters: {e}"))
}

pub(crate) fn split_data(cfg: &Config, mut log: Interactions, data: &Dataset) -> Result<Split> {
    let positives = cfg.positives.as_ref();
    let keep_positives = |log: &mut Interactions| {
        if let Some(p) = positives {
            log.retain(|r| r.weight >= p.min_weight);
            if p.binary {
                log.weight.iter_mut().for_each(|w| *w = 1.0);
            }
        }
    };
    let apply = positives.map(|p| p.apply);
    if apply == Some(FilterOrder::BeforeSplit) {
        keep_positives(&mut log);
    }
    let mut split = cfg.split.split(&log, data.n_users(), &data.items).context("splitting")?;
    if apply == Some(FilterOrder::AfterSplit) {
        for part in [&mut split.train, &mut split.valid, &mut split.test] {
            keep_positives(part);
        }
        split.report.train_rows = split.train.len();
        split.report.valid_rows = split.valid.len();
        split.report.test_rows = split.test.len();
        split.report.test_users = split.test.count_users();
    }
    if let Some(p) = positives {
        split.report.method += &format!(
            "; positives: weight >= {} {}{}",
            p.min_weight,
            if p.apply == FilterOrder::BeforeSplit { "before the split" } else { "after the split" },
            if p.binary { ", binarised" } else { "" }
        );
    }
    if split.test.is_empty() {
        anyhow::bail!("the split left no test interactions ({})", split.report);
    }
    Ok(split)
}

/// Fits the submission model on `log` (what `fit_on` says) and writes every user's list.
fn write_submission(
    cfg: &Config,
    sub: &SubmissionSpec,
    data: &Dataset,
    log: Interactions,
    out: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let fit = TrainSet::new(log, data.n_users(), data.n_items());
    let spec = &cfg.models[&sub.model];
    let mut model =
        spec.fit(&fit, data.side(), progress).with_context(|| format!("fitting '{}' for the submission", sub.model))?;
    if let Some(kind) = sub.index {
        let share = sub.probe_share.unwrap_or(0.1);
        anyhow::ensure!(share > 0.0 && share <= 1.0, "output.submission.probe_share must be in (0, 1] (got {share})");
        let started = std::time::Instant::now();
        model = match tandem_models::index::Indexed::new(model, kind, share) {
            Ok(indexed) => Box::new(indexed),
            Err(_) => anyhow::bail!("output.submission.index: model '{}' has no item vectors to index", sub.model),
        };
        eprintln!("built the {kind:?} index over '{}' in {:.1}s", sub.model, started.elapsed().as_secs_f64());
    }
    let catalogue = items_with_interactions(&fit.user_items);
    let k = sub.k.unwrap_or(sub.format.default_k());
    // Users known only from metadata (e.g. H&M customers without purchases) have no history:
    // they get the popular items, as the service's unknown users do.
    let popular = popular_items(&fit.user_items);
    let histories = Histories::fitted(&fit.user_items);
    let users: Vec<u32> = (0..data.n_users() as u32).collect();
    let step = progress.step("writing submission", users.len() as u64);
    let keep =
        |q: &Query<'_>, i: u32| catalogue[i as usize] && !(sub.exclude_seen && q.items.binary_search(&i).is_ok());
    let path = out.join(&sub.path);
    let mut file = ListWriter::create(&path, sub.format, &data.users, &data.items, k)?;
    let mut cold = 0;
    let started = std::time::Instant::now();
    recommend_each(&*model, &popular, histories, &users, k, &keep, |u, list, fallback| {
        cold += usize::from(fallback);
        step.inc(1);
        file.write(u, &list)
    })?;
    file.finish()?;
    drop(step);
    eprintln!(
        "wrote {} ({} users, {k} items each, model '{}'; {cold} users without history got popularity) in {:.1}s",
        path.display(),
        users.len(),
        sub.model,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
