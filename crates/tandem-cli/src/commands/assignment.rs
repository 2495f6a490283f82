//! `tandem assignment`: the matrix-factorisation course assignment end to end — read the
//! course's `train.csv`, hold out a validation part, train MF (BPR or BCE) printing validation
//! mAP@K every epoch, keep the best epoch, and write every user's K best unseen items.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use tandem_data::read::CourseSource;
use tandem_data::{Progress, Source, SplitSpec};
use tandem_eval::{evaluate, items_with_interactions, write_lists, Protocol, SubmissionFormat, TestSet};
use tandem_models::{
    popular_items, recommend_each, Histories, Loss, MfParams, NegativeMode, OptimizerKind, Query, TrainSet,
};

use crate::config::typed;

/// How validation is held out.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SplitMode {
    /// `val_n` random items per user.
    Fixed,
    /// A random `val_ratio` of each user's items.
    Ratio,
}

/// Negative modes of the data config (used unless the train config asks for hard negatives).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum NegMode {
    /// `neg_sample_num` uniform negatives per positive, resampled every epoch.
    Uniform,
    /// `neg_sample_num` negatives per user (BCE) or per positive (BPR).
    Fixed,
    /// One negative per positive.
    Even,
}

/// `data.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataConfig {
    /// `fixed` or `ratio`.
    split_mode: SplitMode,
    /// Validation items per user with `split_mode: fixed`.
    #[serde(default = "five")]
    val_n: usize,
    /// Validation fraction per user with `split_mode: ratio`.
    #[serde(default = "tenth")]
    val_ratio: f64,
    /// Negatives: `fixed` or `even` (static), or `uniform` (resampled every epoch).
    neg_mode: NegMode,
    /// Negatives per user (BCE) or positive (BPR) with `neg_mode: fixed`.
    #[serde(default = "four")]
    neg_sample_num: usize,
    /// Seed of the split and the samplers.
    #[serde(default = "seed")]
    seed: u64,
}

/// `train_bpr.yaml` / `train_bce.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainConfig {
    /// `cpu` (Tandem trains MF on the CPU).
    #[serde(default = "cpu")]
    device: String,
    latent_factors: usize,
    epochs: usize,
    lr: f32,
    batch_size: usize,
    #[serde(default)]
    weight_decay: f32,
    /// K of the validation mAP@K and of the submission.
    #[serde(default = "fifty")]
    top_k: usize,
    /// BPR margin.
    #[serde(default)]
    margin: f32,
    /// Dynamic hard negatives (BPR): N random candidates scored by the model...
    #[serde(default)]
    num_candidate_neg_samples: usize,
    /// ...of which the M best are kept...
    #[serde(default)]
    num_hard_neg_samples: usize,
    /// ...plus K random others. With M = 0 the data config's static negatives are used.
    #[serde(default)]
    num_random_neg_samples: usize,
    /// `adagrad` (default), `adam` or `sgd`.
    #[serde(default)]
    optimizer: OptimizerKind,
    /// Stop after this many epochs without validation improvement (0: run every epoch); the
    /// best epoch is kept either way.
    #[serde(default)]
    patience: usize,
}

fn five() -> usize {
    5
}
fn tenth() -> f64 {
    0.1
}
fn four() -> usize {
    4
}
fn seed() -> u64 {
    42
}
fn cpu() -> String {
    "cpu".into()
}
fn fifty() -> usize {
    50
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value =
        serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: invalid YAML: {e}", path.display()))?;
    typed(value, &path.display().to_string())
}

/// Runs the assignment.
pub fn assignment(
    input: &Path,
    data_config: &Path,
    train_config: &Path,
    loss: Loss,
    out: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let dc: DataConfig = read_yaml(data_config)?;
    let tc: TrainConfig = read_yaml(train_config)?;
    if tc.device != "cpu" {
        bail!(
            "{}: device '{}' is not available: Tandem trains MF on the CPU (use device: cpu)",
            train_config.display(),
            tc.device
        );
    }
    if tc.top_k == 0 {
        bail!("{}: top_k must be at least 1", train_config.display());
    }
    let data =
        Source::Course(CourseSource { path: PathBuf::from(input) }).load(progress).context("loading train.csv")?;
    let split = match dc.split_mode {
        SplitMode::Fixed => SplitSpec::Fixed { test: dc.val_n, valid: 0, min_train: 1, seed: dc.seed },
        SplitMode::Ratio => SplitSpec::Ratio { test: dc.val_ratio, valid: 0.0, seed: dc.seed },
    }
    .split(&data.interactions, data.n_users(), &data.items)
    .with_context(|| format!("{}: split", data_config.display()))?;
    eprintln!("{} (validation = the held-out part)", split.report);

    let hard = loss == Loss::Bpr && tc.num_hard_neg_samples > 0;
    let negative_mode = match (hard, dc.neg_mode) {
        (true, _) => NegativeMode::Hard,
        (false, NegMode::Fixed) => NegativeMode::Fixed,
        (false, NegMode::Even) => NegativeMode::Even,
        (false, NegMode::Uniform) => NegativeMode::Uniform,
    };
    let params = MfParams {
        factors: tc.latent_factors,
        loss,
        margin: tc.margin,
        negative_mode,
        negatives: dc.neg_sample_num,
        hard_candidates: tc.num_candidate_neg_samples.max(tc.num_hard_neg_samples),
        hard_keep: tc.num_hard_neg_samples,
        hard_random: tc.num_random_neg_samples,
        optimizer: tc.optimizer,
        learning_rate: tc.lr,
        weight_decay: tc.weight_decay,
        epochs: tc.epochs,
        batch_size: tc.batch_size,
        seed: dc.seed,
        patience: tc.patience,
        ..MfParams::default()
    };
    let train = TrainSet::new(split.train.clone(), data.n_users(), data.n_items());
    let valid = TestSet::from_log(&split.test);
    let catalogue = items_with_interactions(&train.user_items);
    let protocol = Protocol::Full { catalogue, exclude_seen: true };
    let k = tc.top_k;
    let metric = format!("MAP@{k}");
    let mut history = Vec::new();
    let model = params
        .fit_with(&train, progress, &mut |r, m| {
            let e =
                evaluate(m, Histories::fitted(&train.user_items), &valid, &protocol, &[k], 0, &tandem_data::NoProgress);
            let v = e.metrics[&metric];
            println!("epoch {:>3}  loss {:.5}  val mAP@{k} {v:.4}", r.epoch, r.loss);
            history.push(serde_json::json!({"epoch": r.epoch, "loss": r.loss, "val_map": v}));
            Some(v)
        })
        .with_context(|| format!("training with {}", train_config.display()))?;
    let final_eval = evaluate(&model, Histories::fitted(&train.user_items), &valid, &protocol, &[k], 0, progress);
    let val_map = final_eval.metrics[&metric];
    println!("best epoch: validation mAP@{k} = {val_map:.4} ({} users)", final_eval.users);

    // Every user's K best items they have not interacted with anywhere in train.csv.
    let all = TrainSet::new(data.interactions.clone(), data.n_users(), data.n_items());
    let histories = Histories { fitted: &train.user_items, known: &all.user_items };
    let users: Vec<u32> = (0..data.n_users() as u32).collect();
    let mut lists = Vec::with_capacity(users.len());
    let unseen = |q: &Query<'_>, i: u32| q.items.binary_search(&i).is_err();
    recommend_each(&model, &popular_items(&train.user_items), histories, &users, k, &unseen, |u, list, _| {
        lists.push((u, list));
        Ok::<_, std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {});
    // `-o path/submission.csv` names the file (the course's usage); `-o DIR` writes DIR/submission.csv.
    let (dir, sub) = match out.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        true => (out.parent().unwrap_or(Path::new("")).to_path_buf(), out.to_path_buf()),
        false => (out.to_path_buf(), out.join("submission.csv")),
    };
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_lists(&sub, SubmissionFormat::Course, &data.users, &data.items, &lists, k)?;
    let report = serde_json::json!({
        "loss": format!("{loss:?}").to_lowercase(),
        "negative_mode": format!("{negative_mode:?}").to_lowercase(),
        "split": split.report,
        "validation": {"metric": metric, "value": val_map, "users": final_eval.users},
        "epochs": history,
        "params": params,
    });
    let report_path = dir.join("report.json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    println!("wrote {} ({} users, {k} unseen items each)", sub.display(), lists.len());
    Ok(())
}
