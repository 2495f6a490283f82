//! `tandem`: a two-stage recommender system. `main` parses the command line; each subcommand
//! is one library-backed function in [`commands`].

#![forbid(unsafe_code)]

use tandem_cli::{commands, progress};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tandem learns from interaction logs, retrieves and ranks candidates, evaluates them under
/// the protocols papers and competitions use, and writes submissions.
#[derive(Debug, Parser)]
#[command(
    name = "tandem",
    version,
    arg_required_else_help = true,
    after_help = "Start with: tandem run configs/quickstart.yaml\nConfig reference: docs/config.md; example configs: configs/."
)]
struct Cli {
    /// Hide progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Where the neural models' dense products run: cpu, or cuda / cuda:N (an NVIDIA GPU; needs
    /// a build with `--features cuda` and the CUDA driver and cuBLAS libraries at run time).
    #[arg(long, global = true, default_value = "cpu")]
    device: tandem_neural::device::Device,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipeline a YAML config describes: load, split, fit every model, evaluate, and
    /// write DIR/report.json, DIR/predictions/<model>.tsv, DIR/metrics_at_k.svg and any
    /// configured submission.
    Run {
        /// The YAML config (see docs/config.md).
        config: PathBuf,
        /// Override a config key, e.g. `--set models.knn.neighbours=100` (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
        /// Output directory.
        #[arg(long, short, default_value = "out")]
        out: PathBuf,
    },
    /// Fit one model on SPLIT_DIR/train.tsv and evaluate it on test.tsv: full ranking over the
    /// items of train.tsv with each user's train items excluded, or, when test_negatives.tsv
    /// exists, sampled ranking against those negatives. Writes DIR/report.json,
    /// DIR/predictions.tsv and, for models trained in epochs, DIR/training_curves.svg.
    EvaluateSplit {
        /// A directory with train.tsv and test.tsv (header `user item timestamp`), optionally
        /// test_negatives.tsv (`user<TAB>item,item,...`).
        split_dir: PathBuf,
        /// The model kind: popularity, item_knn, user_knn, als, ease, mf, ncf, neumf, two_tower, ...
        /// (dashes work too; an unknown kind lists them all).
        #[arg(long, default_value = "popularity")]
        model: String,
        /// A model parameter, e.g. `--param neighbours=50` (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Output directory.
        #[arg(long, short)]
        out: PathBuf,
        /// Cut-offs, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,5,10,20,50,100")]
        ks: Vec<usize>,
        /// Metric on valid.tsv (when present) that picks the best epoch of epoch-trained models;
        /// `none` trains every epoch without validating.
        #[arg(long, default_value = "NDCG@10", value_parser = valid_metric)]
        valid_metric: ValidMetric,
        /// Save the fitted model to this directory.
        #[arg(long)]
        save: Option<PathBuf>,
        /// Evaluate a saved model (from `--save`) instead of fitting one; it must have been
        /// trained on this split's train.tsv. `--model` and `--param` are then ignored.
        #[arg(long, conflicts_with = "save")]
        load: Option<PathBuf>,
        /// Fit on train.tsv plus valid.tsv: the usual last step before the test evaluation,
        /// once settings (epochs included) were chosen on valid.tsv. Turns per-epoch
        /// validation off.
        #[arg(long, conflicts_with = "load")]
        train_with_valid: bool,
        /// Item metadata for rankers' features (years, genres): a MovieLens item file — RecBole
        /// `*.item`, `u.item`, `movies.dat` or `movies.csv` — matched to the split's item ids
        #[arg(long, value_name = "FILE")]
        items: Option<PathBuf>,
        /// For two_stage models: the ranker's AUROC on test against hard, random and explicit
        /// negatives, feature sensitivity (one feature group shuffled), and a cold-item
        /// evaluation (10% of items removed from training, ranked with their IDs unknown, against
        /// popularity); printed and written to report.json
        #[arg(long, conflicts_with = "load")]
        diagnostics: bool,
        /// With --diagnostics: a MovieLens ratings file (u.data, ratings.dat, ratings.csv or a
        /// RecBole .inter) whose low ratings of the split's users are the explicit negatives
        #[arg(long, value_name = "FILE", requires = "diagnostics")]
        ratings: Option<PathBuf>,
        /// Ratings at most this are explicit negatives
        #[arg(long, value_name = "RATING", default_value_t = 2.0, requires = "ratings")]
        explicit_threshold: f32,
    },
    /// Search a model's hyper-parameters on validation data carved from SPLIT_DIR/train.tsv
    /// (the test part is not opened while searching): the defaults, seeded random trials, then TPE-style
    /// proposals, every third a step from the best so far; every trial goes to DIR/trials.jsonl as it ends (--resume carries on from
    /// it). The best settings are then refitted on all of train.tsv (plus valid.tsv when the
    /// split has one and it validated) and evaluated on test.tsv once: DIR/report.json,
    /// DIR/predictions.tsv, DIR/best.yaml (the settings as a config snippet), DIR/tune.json,
    /// DIR/trials.svg. A two_stage pipeline tunes each retriever alone first (half the budget,
    /// DIR/trials.retrievers.K.jsonl), then its ranker on the tuned retrievers' candidates,
    /// fitted once (the other half, DIR/trials.jsonl).
    Tune {
        /// A directory with train.tsv and test.tsv (and optionally valid.tsv, negatives).
        split_dir: PathBuf,
        /// The model kind whose search space is explored (its parameters' ranges are declared
        /// with the kind).
        #[arg(long)]
        model: String,
        /// A parameter held fixed instead of searched, e.g. `--param factors=64` (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Trials to run.
        #[arg(long, default_value_t = 40)]
        budget: usize,
        /// Stop starting trials after this long (`90s`, `10m`, `1h`); the best so far is then
        /// refitted and evaluated. A pipeline gives its retrievers half of it, shared evenly.
        #[arg(long, value_name = "DURATION", value_parser = commands::parse_duration)]
        time: Option<std::time::Duration>,
        /// The validation metric maximised.
        #[arg(long, default_value = "NDCG@10")]
        metric: tandem_eval::MetricAt,
        /// Validation rows taken from train.tsv as its test part was cut: `last:N` (each user's
        /// latest N; temporal and leave-one-out splits), `share:S` (a random share of each
        /// user's rows; ratio splits) or `days:D` (the last D days; time windows); ranked as
        /// the split ranks (against as many drawn negatives as valid_negatives.tsv gives per
        /// user, when it exists). Default: valid.tsv when the split has one, else last:5.
        #[arg(long, value_name = "last:N|share:S|days:D")]
        holdout: Option<tandem_eval::holdout::Holdout>,
        /// Seed of the proposals and of a share holdout.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Validation sets carved from train.tsv; a trial's value is their mean, which cuts the
        /// chance that the best trial is only the luckiest (each trial fits once per fold). A
        /// share draws each fold anew (seeds seed, seed + 1, ...); last:N and days:D roll back:
        /// fold 2 holds out the N rows (D days) before fold 1's, from the rows fold 1 fits on.
        /// The trial refitted is then the best of those that beat the defaults (trial 1) on
        /// every fold, or the defaults. A two_stage pipeline scores its retrievers' trials on
        /// every fold and its ranker's on the first. Needs --holdout on a split with a valid.tsv.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=20))]
        folds: u64,
        /// Carry on from DIR/trials.jsonl (the same seed and --parallel propose the same next
        /// trials).
        #[arg(long)]
        resume: bool,
        /// Trials run at once (0: one per core). Each fit already spreads over the cores, so
        /// more than one pays only for models with serial parts (ml-100k ratio, 40 trials on 2
        /// cores: ALS 2.7 s at 1, 2.9 s at 2; MF 41 s at 1, 45 s at 2).
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        /// Train every trial's epochs to the end. By default a model trained in epochs stops
        /// once at least 5 earlier trials validated as many epochs and its best so far is below
        /// their median there (the median rule; such a trial cannot be the best); runs of fewer
        /// than 10 epochs are not pruned, longer ones not before a third of their epochs.
        #[arg(long)]
        no_prune: bool,
        /// Item metadata (a MovieLens item file), as for evaluate-split.
        #[arg(long, value_name = "FILE")]
        items: Option<PathBuf>,
        /// Cut-offs of the final test evaluation, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,5,10,20,50,100")]
        ks: Vec<usize>,
        /// Output directory.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Write a synthetic interaction log (CSV `user,item,timestamp`) with power-law item and
    /// user activity and latent communities, for benchmarks at any scale.
    Generate {
        /// Output file (`.gz` is not added; pipe through gzip if wanted); with `--layout hm`, a
        /// directory.
        #[arg(long, short)]
        out: PathBuf,
        /// `log`: one `user,item,timestamp` CSV. `hm`: the H&M Kaggle layout
        /// (transactions_train.csv, articles.csv, customers.csv) with fading articles,
        /// baskets, repurchases, product groups and age bands; read it with `format: hm`.
        #[arg(long, default_value = "log", value_parser = ["log", "hm"])]
        layout: String,
        /// Number of users.
        #[arg(long, default_value_t = 10_000)]
        users: u32,
        /// Number of items.
        #[arg(long, default_value_t = 5_000)]
        items: u32,
        /// Number of rows.
        #[arg(long, default_value_t = 1_000_000)]
        interactions: u64,
        /// Zipf exponent of item popularity.
        #[arg(long, default_value_t = 1.0)]
        item_exponent: f64,
        /// Zipf exponent of user activity.
        #[arg(long, default_value_t = 0.8)]
        user_exponent: f64,
        /// Latent communities of users and items.
        #[arg(long, default_value_t = 20)]
        communities: u32,
        /// Share of a user's rows drawn from their community's items, in [0, 1].
        #[arg(long, default_value_t = 0.7)]
        affinity: f64,
        /// Days the timestamps span (ending 2024-01-01).
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// The matrix-factorisation course assignment: read a course-format train.csv
    /// (`UserId,ItemId` with space-separated items), hold out validation as data.yaml says,
    /// train MF as the train config says (printing validation mAP@top_k every epoch, keeping the
    /// best), and write the submission with every user's top_k unseen items: `-o FILE.csv`
    /// writes that file (report.json beside it), `-o DIR` writes DIR/submission.csv.
    Assignment {
        /// The course's train.csv.
        #[arg(long, short, default_value = "train.csv")]
        input: PathBuf,
        /// The data config (split_mode, val_n, val_ratio, neg_mode, neg_sample_num, seed).
        #[arg(long, default_value = "configs/assignment/data.yaml")]
        data: PathBuf,
        /// The training config (train_bpr.yaml or train_bce.yaml).
        #[arg(long)]
        train: PathBuf,
        /// The loss: bpr or bce.
        #[arg(long, default_value = "bpr", value_parser = ["bpr", "bce"])]
        loss: String,
        /// The submission file (`.csv`) or a directory to write submission.csv into.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Recommend from a saved model directory (written by `run` with `output.save_models`).
    Recommend {
        /// The model directory.
        #[arg(long)]
        model: PathBuf,
        /// A known user's raw id (their training history is used).
        #[arg(long)]
        user: Option<String>,
        /// Raw item ids of an anonymous (or extended) history, comma-separated.
        #[arg(long, value_delimiter = ',')]
        items: Vec<String>,
        /// How many items.
        #[arg(long, short, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        k: u32,
        /// Keep items of the history in the list.
        #[arg(long)]
        include_seen: bool,
    },
    /// Serve a saved model directory over HTTP/JSON: recommendations for users and anonymous
    /// sessions, similar items, live interactions (logged and fsynced before the answer,
    /// replayed on start), /health, /ready, /metrics, POST /admin/reload, /openapi.json and a
    /// demo page at /. Stop with Ctrl-C.
    Serve {
        /// The model directory (written by `run` with `output.save_models` or
        /// `evaluate-split --save`).
        #[arg(long)]
        model: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Interaction log: live interactions are appended here and replayed on start
        /// (without one they last until the process ends).
        #[arg(long, value_name = "FILE")]
        wal: Option<PathBuf>,
        /// Start even when the interaction log is damaged in the middle: the bad record and
        /// everything after it move to FILE.quarantine-<unix seconds> (a torn last record, from
        /// a crash mid-write, is always cut off without this).
        #[arg(long, requires = "wal")]
        wal_recover: bool,
        /// Records after which the log is folded into FILE.snapshot (each user's latest
        /// --max-items events), so a restart replays a bounded amount (0: never).
        #[arg(long, default_value_t = 1_000_000, value_name = "RECORDS")]
        wal_snapshot_every: u64,
        /// Directory under which `POST /admin/reload` may name model directories (default: the
        /// directory holding --model); with --admin-token set, any directory may be named.
        #[arg(long, value_name = "DIR")]
        models_root: Option<PathBuf>,
        /// Candidate index for models with item vectors: exact (every item scored) or ivf
        /// (k-means lists; the best-matching --ivf-probe share of them scanned).
        #[arg(long, default_value = "exact", value_parser = ["exact", "ivf"])]
        index: String,
        /// Share of the IVF lists a query scans (0 < share <= 1).
        #[arg(long, default_value_t = tandem_serve::index::IVF_PROBE_SHARE)]
        ivf_probe: f64,
        /// Largest k a request may ask for.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        max_k: u32,
        /// Most items one request may carry.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_items: u32,
        /// Largest request body, in bytes (the default holds 1000 ids of 256 characters).
        #[arg(long, default_value_t = 1_048_576, value_parser = clap::value_parser!(u32).range(256..))]
        max_body: u32,
        /// Require `Authorization: Bearer TOKEN` on POST /admin/reload (read from the
        /// TANDEM_ADMIN_TOKEN environment variable when not given); without one, anyone who
        /// reaches the address can reload, so bind it to loopback.
        #[arg(long, env = "TANDEM_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
    /// Write the split a config describes as DIR/train.tsv, test.tsv (and valid.tsv): raw ids,
    /// header `user item timestamp`, so other libraries (and evaluate-split) use identical data.
    Split {
        /// The YAML config (its data, positives and split sections are used).
        config: PathBuf,
        /// Override a config key (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
        /// Output directory.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Load the data a config names and print its statistics and the configured split.
    Inspect {
        /// The YAML config.
        config: PathBuf,
        /// Override a config key (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
    },
}

/// A closed standard output (`tandem ... | head`) ends the output, quietly, as in other Unix
/// tools: `println!` panics on the broken pipe, and this hook turns that one panic into exit 0.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload.downcast_ref::<String>().map(String::as_str).or(payload.downcast_ref::<&str>().copied());
        if message.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(0);
        }
        default(info)
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let bars = progress::Bars::new(cli.quiet);
    if let Err(e) = tandem_neural::device::select(cli.device) {
        eprintln!("error: --device {}: {e}", cli.device);
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Run { config, set, out } => commands::run(&config, &set, &out, &bars),
        Command::EvaluateSplit {
            split_dir,
            model,
            params,
            out,
            ks,
            valid_metric,
            save,
            load,
            train_with_valid,
            items,
            diagnostics,
            ratings,
            explicit_threshold,
        } => {
            let opts = commands::SplitEval {
                ks: &ks,
                valid_metric: valid_metric.0,
                save: save.as_deref(),
                load: load.as_deref(),
                train_with_valid,
                items: items.as_deref(),
                diagnostics,
                ratings: ratings.as_deref(),
                explicit_threshold,
                print: true,
            };
            commands::evaluate_split(&split_dir, &model, &params, &out, &opts, &bars)
        }
        Command::Tune {
            split_dir,
            model,
            params,
            budget,
            time,
            metric,
            holdout,
            seed,
            folds,
            resume,
            parallel,
            no_prune,
            items,
            ks,
            out,
        } => {
            let parallel = if parallel == 0 { rayon::current_num_threads() } else { parallel };
            let items = items.as_deref();
            let prune = !no_prune;
            let folds = folds as usize;
            let opts = commands::TuneOptions {
                budget,
                time,
                metric,
                holdout,
                seed,
                folds,
                resume,
                parallel,
                prune,
                items,
                ks: &ks,
            };
            commands::tune(&split_dir, &model, &params, &out, &opts, &bars)
        }
        Command::Serve {
            model,
            addr,
            wal,
            wal_recover,
            wal_snapshot_every,
            models_root,
            index,
            ivf_probe,
            max_k,
            max_items,
            max_body,
            admin_token,
        } => {
            let mut o = tandem_serve::Options::new(model);
            (o.wal, o.wal_recover, o.wal_snapshot_every, o.models_root) =
                (wal, wal_recover, wal_snapshot_every, models_root);
            o.index = if index == "ivf" { tandem_serve::IndexKind::Ivf } else { tandem_serve::IndexKind::Exact };
            o.ivf_probe = ivf_probe;
            o.admin_token = admin_token;
            (o.max_k, o.max_items, o.max_body) = (max_k as usize, max_items as usize, max_body as usize);
            commands::serve(o, addr)
        }
        Command::Inspect { config, set } => commands::inspect(&config, &set, &bars),
        Command::Split { config, set, out } => commands::split(&config, &set, &out, &bars),
        Command::Recommend { model, user, items, k, include_seen } => {
            commands::recommend(&model, user.as_deref(), &items, k as usize, include_seen)
        }
        Command::Assignment { input, data, train, loss, out } => {
            let loss = if loss == "bce" { tandem_models::Loss::Bce } else { tandem_models::Loss::Bpr };
            commands::assignment(&input, &data, &train, loss, &out, &bars)
        }
        Command::Generate {
            out,
            layout,
            users,
            items,
            interactions,
            item_exponent,
            user_exponent,
            communities,
            affinity,
            days,
            seed,
        } => {
            let spec = tandem_data::synthetic::SyntheticSpec {
                users,
                items,
                interactions,
                item_exponent,
                user_exponent,
                communities,
                affinity,
                days,
                seed,
            };
            commands::generate(&spec, &out, layout == "hm", &bars)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `--valid-metric`: `NAME@K`, or `none`.
#[derive(Debug, Clone, Copy)]
struct ValidMetric(Option<tandem_eval::MetricAt>);

fn valid_metric(s: &str) -> Result<ValidMetric, String> {
    if s == "none" {
        Ok(ValidMetric(None))
    } else {
        s.parse().map(|m| ValidMetric(Some(m)))
    }
}
