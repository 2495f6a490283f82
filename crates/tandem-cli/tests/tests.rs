//! End-to-end tests of the `tandem` binary. One test binary (as ripgrep does): each module is
//! one command's behaviour.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn tandem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem")).arg("--quiet").args(args).output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// ../shared/data, or None when TANDEM_SKIP_SHARED_DATA is set; a missing directory otherwise
/// fails (tests must not pass silently).
fn shared() -> Option<PathBuf> {
    let p = repo().join("../shared/data");
    if p.join("ml-100k").exists() {
        Some(p)
    } else if std::env::var_os("TANDEM_SKIP_SHARED_DATA").is_some() {
        None
    } else {
        panic!("{} not found: put the shared data beside the repository or set TANDEM_SKIP_SHARED_DATA=1", p.display())
    }
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn metric(r: &Value, model: &str, name: &str) -> f64 {
    r["models"][model]["metrics"][name].as_f64().unwrap_or_else(|| panic!("{model} {name} in {r}"))
}

/// A small log and a config around it.
fn fixture(dir: &Path, config: &str) -> PathBuf {
    let mut log = String::from("user,item,rating,time\n");
    for u in 0..30 {
        for i in 0..12 {
            if (u + i) % 3 != 0 {
                log += &format!("u{u},i{i},{},{}\n", 1 + (u * i) % 5, 1000 + u * 100 + i);
            }
        }
    }
    std::fs::write(dir.join("log.csv"), log).unwrap();
    let p = dir.join("config.yaml");
    std::fs::write(&p, config).unwrap();
    p
}

const CONFIG: &str = "
data:
  format: delimited
  log:
    path: log.csv
    columns: {user: user, item: item, time: time, weight: rating}
split: {kind: last_n, test: 2}
evaluation: {ks: [1, 5]}
models:
  pop: {kind: popularity}
  knn: {kind: item_knn, neighbours: 5}
  users: {kind: user_knn}
output:
  submission: {model: knn, format: course, path: sub.csv, k: 3}
";

/// `tandem ... | head`: a reader that goes away ends the output without a panic.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let model = repo().join("crates/tandem-rank/tests/fixtures/format-1/models/item_knn");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["recommend", "--model", model.to_str().unwrap(), "--user", "u3", "-k", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("panicked"), "{:?} {err}", out.status);
}

/// Without a terminal on stderr (a pipeline, CI) long steps log done/total, rate and ETA
/// lines instead of drawing bars.
#[test]
fn progress_without_a_terminal_is_logged_in_lines() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        // 3M rows take 0.3 s where the generator writes 10M rows/s: many 0.01 s ticks.
        .args(["generate", "--out", d.path().join("g.csv").to_str().unwrap(), "--interactions", "3000000"])
        .env("TANDEM_PROGRESS_SECONDS", "0.01")
        .output()
        .unwrap();
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('[') && l.contains("generating: ")).collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(lines.iter().any(|l| l.contains("/3000000 (") && l.contains("/s, ETA")), "{err}");
    assert!(
        lines.last().unwrap().contains("3000000/3000000 (100%)") && lines.last().unwrap().ends_with("done"),
        "{err}"
    );
}

mod config_errors {
    use super::*;

    fn run_err(config: &str, extra: &[&str]) -> String {
        let d = tempfile::tempdir().unwrap();
        let cfg = fixture(d.path(), config);
        let out = d.path().join("out");
        let mut args = vec!["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = tandem(&args);
        assert_eq!(o.status.code(), Some(2), "fails with status 2");
        stderr(&o)
    }

    #[test]
    fn misspelt_model_key_names_its_path() {
        let e = run_err(&CONFIG.replace("neighbours: 5", "neighbourz: 5"), &[]);
        assert!(
            e.contains("config.yaml") && e.contains("models.knn") && e.contains("unknown field `neighbourz`"),
            "{e}"
        );
    }

    #[test]
    fn misspelt_top_level_and_nested_keys() {
        let e = run_err(&CONFIG.replace("split: {kind: last_n, test: 2}", "split: {kind: last_n, tset: 2}"), &[]);
        assert!(e.contains("split") && e.contains("unknown field `tset`"), "{e}");
        let e = run_err(&CONFIG.replace("evaluation:", "evalution:"), &[]);
        assert!(e.contains("unknown field `evalution`"), "{e}");
        let e = run_err(&CONFIG.replace("weight: rating}", "weight: rating, wieght: x}"), &[]);
        assert!(e.contains("data: log.columns.wieght: unknown field `wieght`"), "{e}");
        let e = run_err(&CONFIG.replace("format: delimited", "format: parquet"), &[]);
        assert!(e.contains("data: unknown format `parquet`"), "{e}");
    }

    #[test]
    fn set_overrides_are_validated_too() {
        let e = run_err(CONFIG, &["--set", "models.knn.neighbours=0"]);
        assert!(e.contains("neighbours") && e.contains("1 <= neighbours"), "{e}");
        let e = run_err(CONFIG, &["--set", "models.pop.mode=weekly"]);
        assert!(e.contains("models.pop") && e.contains("weekly"), "{e}");
        let e = run_err(CONFIG, &["--set", "evaluation.table=[NDCG@10, AUC@10]"]);
        assert!(e.contains("evaluation.table") && e.contains("'AUC@10' is not a metric"), "{e}");
        let e = run_err(CONFIG, &["--set", "evaluation.validation_metric=NDCG@0"]);
        assert!(e.contains("evaluation.validation_metric") && e.contains("NDCG@0"), "{e}");
        let e = run_err(CONFIG, &["--set", "output.submission.model=nope"]);
        assert!(e.contains("output.submission.model") && e.contains("nope"), "{e}");
    }

    /// A bad value in the last model fails when the config loads, before any model is
    /// fitted, naming its key path (nested ones too).
    #[test]
    fn parameters_are_checked_before_anything_runs() {
        let config = CONFIG.replace(
            "  users: {kind: user_knn}\n",
            "  users: {kind: user_knn}\n  slow: {kind: mf, epochs: 500}\n  last: {kind: two_tower, learning_rate: -1}\n",
        );
        let e = run_err(&config, &[]);
        assert!(e.contains("models.last.learning_rate") && e.contains("-1"), "{e}");
        assert!(!e.contains("fitted") && !e.contains("loaded"), "nothing ran: {e}");
        let nested = CONFIG.replace(
            "  users: {kind: user_knn}\n",
            "  users: {kind: user_knn}\n  ts: {kind: two_stage, retrievers: [{kind: popularity}, {kind: als, factors: 0}]}\n",
        );
        let e = run_err(&nested, &[]);
        assert!(e.contains("models.ts.retrievers.1.factors"), "{e}");
        let e = run_err(
            &CONFIG.replace(
                "  users: {kind: user_knn}\n",
                "  ts: {kind: two_stage, retrievers: [{kind: popularity}], ranker: {kind: din, dropout: 2}}\n",
            ),
            &[],
        );
        assert!(e.contains("models.ts.ranker.dropout"), "{e}");
    }

    #[test]
    fn unknown_model_kind_lists_the_kinds() {
        let e = run_err(&CONFIG.replace("kind: popularity", "kind: populrity"), &[]);
        assert!(e.contains("models.pop") && e.contains("populrity") && e.contains("item_knn"), "{e}");
    }

    #[test]
    fn bad_data_errors_name_file_line_and_column() {
        let d = tempfile::tempdir().unwrap();
        let cfg = fixture(d.path(), CONFIG);
        std::fs::write(d.path().join("log.csv"), "user,item,rating,time\nu1,i1,5,10\nu1,i2,high,11\n").unwrap();
        let o = tandem(&["run", cfg.to_str().unwrap(), "--out", d.path().join("o").to_str().unwrap()]);
        let e = stderr(&o);
        assert!(e.contains("log.csv, line 3, column 3 (rating)") && e.contains("'high'"), "{e}");
        std::fs::write(d.path().join("log.csv"), "").unwrap();
        let e = stderr(&tandem(&["run", cfg.to_str().unwrap(), "--out", d.path().join("o").to_str().unwrap()]));
        assert!(e.contains("log.csv: the file is empty"), "{e}");
    }

    #[test]
    fn missing_config_and_bad_yaml() {
        let e = stderr(&tandem(&["run", "/nonexistent/config.yaml"]));
        assert!(e.contains("cannot read config /nonexistent/config.yaml"), "{e}");
        let e = run_err("data: [unclosed", &[]);
        assert!(e.contains("invalid YAML"), "{e}");
    }
}

mod run {
    use super::*;

    /// `tune:` on an entry searches it on rows carved from train (the split is last_n: the
    /// last 2 of each user's training rows), writes the trials and the snippet, and the report
    /// holds the tuned parameters.
    #[test]
    fn a_tune_entry_is_searched_before_it_is_fitted() {
        let d = tempfile::tempdir().unwrap();
        let cfg = fixture(d.path(), CONFIG);
        let out = d.path().join("out");
        let o = tandem(&[
            "run",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--set",
            "models.knn.tune.budget=4",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("knn: tuning 4 trials on rows carved from train, last:2"), "{e}");
        // Two folds: the second holds out the 2 rows before the first's.
        let two = d.path().join("two");
        let o = tandem(&[
            "run",
            cfg.to_str().unwrap(),
            "--out",
            two.to_str().unwrap(),
            "--set",
            "models.knn.tune={budget: 2, folds: 2}",
        ]);
        assert!(o.status.success() && stderr(&o).contains("last:2, mean of 2 folds"), "{}", stderr(&o));
        let trials = std::fs::read_to_string(out.join("tuned/knn.trials.jsonl")).unwrap();
        assert_eq!(trials.lines().count(), 4);
        let snippet = std::fs::read_to_string(out.join("tuned/knn.yaml")).unwrap();
        assert!(snippet.starts_with("kind: item_knn\n") && snippet.contains("neighbours: "), "{snippet}");
        let neighbours: u64 =
            snippet.lines().find_map(|l| l.strip_prefix("neighbours: ")).unwrap().trim().parse().unwrap();
        assert_eq!(report(&out)["models"]["knn"]["params"]["neighbours"], neighbours, "the tuned model was evaluated");
        // A pipeline entry: its retrievers first, then its ranker, each logged.
        let stage = "models.stage={kind: two_stage, window: 1, retrievers: [{kind: item_knn}, {kind: popularity}], ranker: {kind: gbdt, trees: 5}, tune: {budget: 4}}";
        let o = tandem(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", stage]);
        assert!(o.status.success(), "{}", stderr(&o));
        let lines = |f: &str| std::fs::read_to_string(out.join("tuned").join(f)).unwrap().lines().count();
        assert_eq!(
            (lines("stage.trials.retrievers.0.jsonl"), lines("stage.trials.jsonl")),
            (2, 2),
            "kNN has popularity's share"
        );
        assert!(!out.join("tuned/stage.trials.retrievers.1.jsonl").exists(), "popularity has nothing to search");
        let r = report(&out);
        assert!(
            r["models"]["stage"]["params"]["spec"]["ranker"]["learning_rate"].is_number(),
            "{}",
            r["models"]["stage"]
        );
        for (set, says) in [
            ("models.knn.tune.budget=0", "models.knn.tune.budget"),
            ("models.knn.tune.folds=0", "models.knn.tune.folds: 0 (expected 1 to 20)"),
            ("models.knn.tune.trials=3", "unknown field `trials`"),
            ("models.knn.tune.holdout=first:3", "last:N"),
            ("models.pop.tune.budget=3", "nothing to search"),
        ] {
            let o = tandem(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", set]);
            assert!(!o.status.success(), "{set}");
            assert!(stderr(&o).contains(says), "{set}: {}", stderr(&o));
        }
    }

    #[test]
    fn writes_report_predictions_plot_and_submission() {
        let d = tempfile::tempdir().unwrap();
        let cfg = fixture(d.path(), CONFIG);
        let out = d.path().join("out");
        let o =
            tandem(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "evaluation.ks=[1,5,10]"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let r = report(&out);
        assert_eq!(r["protocol"]["ks"], serde_json::json!([1, 5, 10]), "--set took effect");
        assert_eq!(r["protocol"]["exclude_seen"], true);
        assert_eq!(r["models"].as_object().unwrap().keys().collect::<Vec<_>>(), vec!["pop", "knn", "users"]);
        assert_eq!(r["models"]["pop"]["users"], 30);
        for m in ["pop", "knn", "users"] {
            let hr = metric(&r, m, "HR@5");
            assert!((0.0..=1.0).contains(&hr));
            let preds = std::fs::read_to_string(out.join(format!("predictions/{m}.tsv"))).unwrap();
            assert!(preds.starts_with("user\titem\trank\tscore\n"));
        }
        assert!(std::fs::read_to_string(out.join("metrics_at_k.svg")).unwrap().starts_with("<svg"));
        let sub = std::fs::read_to_string(out.join("sub.csv")).unwrap();
        let mut lines = sub.lines();
        assert_eq!(lines.next(), Some("UserId,ItemId"));
        assert_eq!(lines.clone().count(), 30, "every user");
        for l in lines {
            let (_, items) = l.split_once(',').unwrap();
            assert_eq!(items.split(' ').count(), 3);
        }
        let table = String::from_utf8_lossy(&o.stdout);
        assert!(table.contains("NDCG@10") && table.contains("knn"), "{table}");
    }

    /// The README's main command on the bundled data.
    #[test]
    fn quickstart_on_bundled_online_retail() {
        let d = tempfile::tempdir().unwrap();
        let cfg = repo().join("configs/quickstart.yaml");
        let o = tandem(&["run", cfg.to_str().unwrap(), "--out", d.path().to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let r = report(d.path());
        assert_eq!(r["data"]["stats"]["interactions"], 397_924);
        assert_eq!(r["data"]["stats"]["users"], 4_339);
        assert_eq!(r["data"]["stats"]["items"], 3_665);
        assert_eq!(r["models"].as_object().unwrap().len(), 10);
        // 76 of the 868 test customers first bought in the test weeks: new users to every model.
        assert_eq!(r["models"]["als"]["new_users"], 76);
        assert_eq!(r["models"]["als"]["users"], 868);
        // Quality floors: personalised models beat global popularity on MAP@12.
        let pop = metric(&r, "popularity", "MAP@12");
        assert!(metric(&r, "item-knn", "MAP@12") > 2.0 * pop, "{r}");
        assert!(metric(&r, "user-knn", "MAP@12") > pop);
        for m in ["als", "ease", "mf-bpr"] {
            assert!(metric(&r, m, "MAP@12") > 2.0 * pop, "{m}: {r}");
        }
        // The issues' bars: the two-stage pipeline beats every single model on MAP@12, and its
        // tree ranker reaches 0.2070 (the late-fusion MLP's 0.1971 + 5%; measured 0.2264
        // against EASE's 0.1596).
        let two_stage = metric(&r, "two-stage", "MAP@12");
        for (name, _) in r["models"].as_object().unwrap().iter().filter(|(n, _)| *n != "two-stage") {
            assert!(two_stage > metric(&r, name, "MAP@12"), "two-stage {two_stage} vs {name}");
        }
        assert!(two_stage >= 0.2070, "two-stage MAP@12 {two_stage}");
        let importance = r["models"]["two-stage"]["feature_importance"].as_object().expect("trees rank features");
        assert!(importance.len() >= 20 && importance.values().all(|v| v.as_f64().unwrap() >= 0.0), "{importance:?}");
        assert!(r["models"]["two-stage"]["stage_seconds"]["ranking"].as_f64().unwrap() > 0.0);
        let stdout = String::from_utf8_lossy(&o.stdout);
        for col in ["MAP@12", "NDCG@10", "HR@10", "Recall@100"] {
            assert!(stdout.contains(col), "prints {col}: {stdout}");
        }
        let sub = std::fs::read_to_string(d.path().join("submission.csv")).unwrap();
        let rows: Vec<&str> = sub.lines().collect();
        assert_eq!(rows[0], "customer_id,prediction");
        assert_eq!(rows.len(), 1 + 4_339);
        for row in &rows[1..] {
            let (_, items) = row.split_once(',').unwrap();
            let mut ids: Vec<&str> = items.split(' ').collect();
            assert_eq!(ids.len(), 12, "{row}");
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 12, "distinct: {row}");
        }
    }
}

mod generate_and_positives {
    use super::*;

    #[test]
    fn generated_logs_run_through_the_pipeline() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("syn.csv");
        let o = tandem(&[
            "generate",
            "--out",
            log.to_str().unwrap(),
            "--users",
            "200",
            "--items",
            "100",
            "--interactions",
            "5000",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let cfg = d.path().join("c.yaml");
        std::fs::write(
            &cfg,
            "data: {format: delimited, log: {path: syn.csv, columns: {user: user, item: item, time: timestamp}}}\n\
             split: {kind: global_fraction}\nmodels: {knn: {kind: item_knn}, pop: {kind: popularity}}\n",
        )
        .unwrap();
        let out = d.path().join("out");
        let o = tandem(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let r = report(&out);
        assert_eq!(r["data"]["stats"]["interactions"], 5000);
        // The communities give collaborative filtering something to find.
        assert!(metric(&r, "knn", "NDCG@10") > metric(&r, "pop", "NDCG@10"), "{r}");
        let e = stderr(&tandem(&["generate", "--out", log.to_str().unwrap(), "--affinity", "2"]));
        assert!(e.contains("affinity"), "{e}");
    }

    #[test]
    fn split_writes_files_evaluate_split_reads() {
        let d = tempfile::tempdir().unwrap();
        let cfg = fixture(d.path(), CONFIG);
        let dir = d.path().join("split");
        let o = tandem(&["split", cfg.to_str().unwrap(), "--out", dir.to_str().unwrap(), "--set", "split.valid=1"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let count = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap().lines().count() - 1;
        assert_eq!(count("test.tsv"), 2 * 30, "2 test rows per user");
        assert_eq!(count("valid.tsv"), 30);
        assert_eq!(count("train.tsv") + 90, 30 * 8, "every row once");
        assert!(std::fs::read_to_string(dir.join("train.tsv")).unwrap().starts_with("user\titem\ttimestamp\nu0\t"));
        let out = d.path().join("out");
        let o = tandem(&[
            "evaluate-split",
            dir.to_str().unwrap(),
            "--model",
            "mf",
            "--param",
            "epochs=2",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("valid NDCG@10"), "valid.tsv drives per-epoch validation: {}", stderr(&o));
        // Every epoch is in the report and on the training-curve plot.
        let epochs = report(&out)["models"]["mf"]["training"].as_array().unwrap().clone();
        assert_eq!(epochs.len(), 2);
        assert_eq!(epochs[1]["epoch"], 2);
        assert_eq!(epochs[1]["valid_metric"], "NDCG@10");
        assert!(epochs.iter().all(|e| e["loss"].as_f64().unwrap().is_finite() && e["valid"].is_number()));
        assert!(std::fs::read_to_string(out.join("training_curves.svg")).unwrap().contains("validation NDCG@10"));
        // Refit on train + valid once settings are chosen: no validation, and the report says so.
        let mut args = vec!["evaluate-split", dir.to_str().unwrap(), "--model", "item_knn", "--out"];
        args.extend([out.to_str().unwrap(), "--train-with-valid"]);
        let o = tandem(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(report(&out)["protocol"]["split"].as_str().unwrap().ends_with("(fit on train.tsv + valid.tsv)"));
        std::fs::remove_file(dir.join("valid.tsv")).unwrap();
        let e = stderr(&tandem(&args));
        assert!(e.contains("--train-with-valid") && e.contains("has no valid.tsv"), "{e}");
    }

    #[test]
    fn positives_filter_before_or_after_the_split() {
        let d = tempfile::tempdir().unwrap();
        let cfg = fixture(d.path(), CONFIG);
        let run = |apply: &str| {
            let out = d.path().join(apply);
            let set = format!("positives={{min_weight: 4, apply: {apply}}}");
            let o = tandem(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", &set]);
            assert!(o.status.success(), "{}", stderr(&o));
            report(&out)["data"]["split"].clone()
        };
        let before = run("before_split");
        let after = run("after_split");
        assert!(before["method"].as_str().unwrap().contains("before the split, binarised"));
        assert!(after["method"].as_str().unwrap().contains("after the split"));
        // Splitting positives keeps 2 test rows per qualifying user; filtering after the split
        // drops the non-positive ones from the held-out rows.
        assert_ne!(before["test_rows"], after["test_rows"]);
        assert!(before["test_rows"].as_u64().unwrap() % 2 == 0);
    }

    #[test]
    fn submissions_cover_users_without_history() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("hm")).unwrap();
        std::fs::write(
            d.path().join("hm/transactions_train.csv"),
            "t_dat,customer_id,article_id,price,sales_channel_id\n2020-09-01,a,0001,0.1,1\n2020-09-02,a,0002,0.1,1\n\
             2020-09-03,b,0001,0.1,1\n2020-09-20,b,0003,0.1,2\n2020-09-21,c,0001,0.1,2\n2020-09-22,a,0003,0.1,2\n",
        )
        .unwrap();
        std::fs::write(d.path().join("hm/customers.csv"), "customer_id,age\na,20\nb,30\nc,40\nnew,50\n").unwrap();
        let cfg = d.path().join("c.yaml");
        std::fs::write(
            &cfg,
            "data: {format: hm, path: hm}\nsplit: {kind: time_window, days: 7}\nevaluation: {exclude_seen: false}\n\
             models: {knn: {kind: item_knn}}\noutput: {submission: {model: knn, format: hm, path: sub.csv, k: 2}}\n",
        )
        .unwrap();
        let out = d.path().join("out");
        let o = tandem(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let sub = std::fs::read_to_string(out.join("sub.csv")).unwrap();
        assert!(sub.starts_with("customer_id,prediction\n"), "{sub}");
        // The customer without purchases gets the two most popular articles, ids as written.
        assert!(sub.lines().any(|l| l == "new,0001 0003"), "{sub}");
        assert_eq!(sub.lines().count(), 5);
        // c bought only in the test week: a new user to the model, counted as such.
        let r = report(&out);
        assert_eq!(
            (r["models"]["knn"]["users"].as_u64(), r["models"]["knn"]["new_users"].as_u64()),
            (Some(3), Some(1))
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("3 test users (1 without training rows"));
    }

    /// A pipeline's candidates follow `evaluation.exclude_seen` unless the pipeline says.
    #[test]
    fn two_stage_exclude_seen_follows_the_evaluation() {
        let d = tempfile::tempdir().unwrap();
        let config = CONFIG
            .replace("evaluation: {ks: [1, 5]}", "evaluation: {ks: [1, 5], exclude_seen: false}")
            .replace(
            "  users: {kind: user_knn}\n",
            "  users: {kind: user_knn}\n  ts: {kind: two_stage, training: train, retrievers: [{kind: item_knn}]}\n  \
             ts-own: {kind: two_stage, training: train, exclude_seen: true, retrievers: [{kind: item_knn}]}\n",
        );
        let cfg = fixture(d.path(), &config);
        let out = d.path().join("out");
        let o = tandem(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let r = report(&out);
        assert_eq!(r["protocol"]["exclude_seen"], false);
        assert_eq!(r["models"]["ts"]["params"]["spec"]["exclude_seen"], false);
        assert_eq!(r["models"]["ts-own"]["params"]["spec"]["exclude_seen"], true);
    }
}

mod evaluate_split {
    use super::*;

    fn eval(split: &str, model: &str, params: &[&str]) -> Value {
        let data = shared().expect("checked by the caller");
        let d = tempfile::tempdir().unwrap();
        let dir = data.join("ml-100k/splits").join(split);
        let mut args =
            vec!["evaluate-split", dir.to_str().unwrap(), "--model", model, "--out", d.path().to_str().unwrap()];
        for p in params {
            args.extend(["--param", p]);
        }
        let o = tandem(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let preds = std::fs::read_to_string(d.path().join("predictions.tsv")).unwrap();
        assert!(preds.lines().count() > 1);
        report(d.path())
    }

    /// The figures an independent scorer computes for train-count popularity on these splits.
    #[test]
    fn popularity_matches_the_independent_scorer() {
        if shared().is_none() {
            return;
        }
        let r = eval("temporal", "popularity", &[]);
        assert_eq!(r["protocol"]["ranking"], "full");
        assert_eq!(r["protocol"]["exclude_seen"], true);
        let (ndcg, hr) = (metric(&r, "popularity", "NDCG@10"), metric(&r, "popularity", "HR@10"));
        assert!((ndcg - 0.0528).abs() <= 0.002, "NDCG@10 {ndcg}");
        assert!((hr - 0.256).abs() <= 0.005, "HR@10 {hr}");
        let r = eval("loo", "popularity", &[]);
        assert_eq!(r["protocol"]["ranking"], "sampled");
        let hr = metric(&r, "popularity", "HR@10");
        assert!((hr - 0.314).abs() <= 0.01, "loo HR@10 {hr}");
    }

    /// A user's valid.tsv items are history at test time: never recommended back (with
    /// exclusion), and counted as known in the protocol.
    #[test]
    fn valid_rows_are_history_at_test_time() {
        let Some(data) = shared() else { return };
        let d = tempfile::tempdir().unwrap();
        let split = d.path().join("loo-full");
        std::fs::create_dir_all(&split).unwrap();
        for f in ["train.tsv", "valid.tsv", "test.tsv"] {
            std::fs::copy(data.join("ml-100k/splits/loo").join(f), split.join(f)).unwrap();
        }
        let out = d.path().join("out");
        let o = tandem(&[
            "evaluate-split",
            split.to_str().unwrap(),
            "--model",
            "popularity",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let valid: std::collections::HashSet<(String, String)> = std::fs::read_to_string(split.join("valid.tsv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_string(), f[1].to_string())
            })
            .collect();
        let preds = std::fs::read_to_string(out.join("predictions.tsv")).unwrap();
        let mut rows = 0;
        for l in preds.lines().skip(1) {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(!valid.contains(&(f[0].to_string(), f[1].to_string())), "valid item recommended: {l}");
            rows += 1;
        }
        assert_eq!(rows, 943 * 100);
        let r = report(&out);
        assert!(r["protocol"]["candidates"].as_str().unwrap().contains("known items (train + valid)"), "{r}");
    }

    /// `implicit`'s BM25 item kNN scores 0.0985, its cosine kNN 0.0914.
    #[test]
    fn item_knn_quality_floor_on_temporal() {
        if shared().is_none() {
            return;
        }
        let r = eval("temporal", "item-knn", &[]);
        let ndcg = metric(&r, "item_knn", "NDCG@10");
        assert!(ndcg >= 0.098, "item kNN NDCG@10 {ndcg}");
        let r = eval("temporal", "item_knn", &["weighting=cosine", "neighbours=400"]);
        assert!(metric(&r, "item_knn", "NDCG@10") >= 0.088);
    }

    /// The issue's ALS bars (`implicit` tuned the same way: 0.106 temporal, 0.242 ratio) with the
    /// settings chosen on validation splits of train (measured 0.1223 and 0.2473).
    #[test]
    fn als_clears_the_implicit_bars_on_temporal_and_ratio() {
        if shared().is_none() {
            return;
        }
        let temporal = eval("temporal", "als", &["alpha=10", "regularization=20", "recency_half_life=3"]);
        let ndcg = metric(&temporal, "als", "NDCG@10");
        assert!(ndcg >= 0.106, "temporal ALS NDCG@10 {ndcg}");
        let ratio = eval("ratio", "als", &["alpha=2", "regularization=25"]);
        let ndcg = metric(&ratio, "als", "NDCG@10");
        assert!(ndcg >= 0.242, "ratio ALS NDCG@10 {ndcg}");
    }

    /// The tree-structured approximations keep >= 80% of the full softmax's Recall@100, and the
    /// softmax itself clears a floor (measured 0.54).
    #[test]
    fn tree_models_keep_most_of_the_full_softmax_recall_on_temporal() {
        if shared().is_none() {
            return;
        }
        let recall = |model: &str| metric(&eval("temporal", model, &[]), model, "Recall@100");
        let full = recall("softmax");
        assert!(full >= 0.5, "softmax Recall@100 {full}");
        for model in ["hsoftmax", "tdm"] {
            let r = recall(model);
            assert!(r >= 0.8 * full, "{model} Recall@100 {r} vs softmax {full}");
        }
    }

    /// The issue's bar for the two-tower retriever on temporal (NDCG@10 >= 0.106), with the
    /// settings chosen on a validation split of train (measured 0.127; ID-only tops out at 0.100).
    #[test]
    fn two_tower_with_history_clears_the_temporal_bar() {
        if shared().is_none() {
            return;
        }
        let r = eval("temporal", "two_tower", &["history=8", "temperature=0.2", "epochs=20"]);
        let ndcg = metric(&r, "two_tower", "NDCG@10");
        assert!(ndcg >= 0.106, "two-tower NDCG@10 {ndcg}");
    }

    /// A two-stage pipeline (recency-weighted ALS + the history model -> late-fusion ranker
    /// trained on three held-out windows) against its retrievers alone on temporal; with its
    /// diagnostics (measured: AUROC 0.72 hard / 0.88 random; cold items HR@10 0.29 against
    /// popularity's 0.18).
    #[test]
    fn two_stage_beats_its_retriever_on_temporal() {
        let Some(data) = shared() else { return };
        let items = data.join("ml-100k/ml-100k.item");
        let ratings = data.join("ml-100k/ml-100k.inter");
        let d = tempfile::tempdir().unwrap();
        let dir = data.join("ml-100k/splits/temporal");
        let o = tandem(&[
            "evaluate-split",
            dir.to_str().unwrap(),
            "--items",
            items.to_str().unwrap(),
            "--model",
            "two_stage",
            "--param",
            "retrievers=[{kind: als, alpha: 10, regularization: 20, recency_half_life: 3}, {kind: history, loss: sampled_softmax, epochs: 5}]",
            "--param",
            "windows=3",
            "--diagnostics",
            "--ratings",
            ratings.to_str().unwrap(),
            "--out",
            d.path().to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let r = report(d.path());
        let ndcg = metric(&r, "two_stage", "NDCG@10");
        // Its retrievers alone: ALS 0.1223 (x 1.1 = 0.1345), the history model 0.1246-0.1276
        // (the best single model of the earlier issues); measured 0.1415, the floor leaves room
        // for drift.
        assert!(ndcg >= 0.138, "two-stage NDCG@10 {ndcg}");
        let stages = &r["models"]["two_stage"]["stage_seconds"];
        assert!(stages["retrieval"].as_f64().unwrap() > 0.0 && stages["ranking"].as_f64().unwrap() > 0.0, "{stages}");
        let diag = &r["models"]["two_stage"]["diagnostics"];
        let auroc = |k: &str| diag["test"][k].as_f64().unwrap_or_else(|| panic!("{k} in {diag}"));
        // Low ratings (<= 2) of the test users from the raw file: watched, then disliked.
        assert!(auroc("auroc_hard") > 0.6 && auroc("auroc_random") > 0.6 && auroc("auroc_explicit") > 0.6, "{diag}");
        let groups = diag["test"]["sensitivity"].as_array().unwrap();
        let leans = |g: &Value| g["feature"] == "retriever 1 score" && g["drop"].as_f64().unwrap() > 0.01;
        assert!(groups.iter().any(leans), "{diag}");
        let cold = &diag["cold_items"];
        let hr = |k: &str| cold[k].as_f64().unwrap();
        assert!(cold["users"].as_u64().unwrap() > 100, "{cold}");
        assert!(hr("ranker_hr10") > hr("popularity_hr10"), "cold items: {cold}");
        let args = ["evaluate-split", dir.to_str().unwrap(), "--model", "als", "--diagnostics", "--out"];
        let e = stderr(&tandem(&[&args[..], &[d.path().to_str().unwrap()]].concat()));
        assert!(e.contains("only two_stage models"), "{e}");
    }

    /// NeuMF in RecBole's shape on loo (sampled, 100 negatives): the issue's bar is 0.57 (RecBole
    /// 1.2.1: 0.5726); measured 0.5769, the floor leaves room for floating-point drift.
    #[test]
    fn neumf_quality_floor_on_loo() {
        if shared().is_none() {
            return;
        }
        let params = ["gmf_factors=64", "embedding=64", "layers=[128,64]", "patience=5", "epochs=40"];
        let r = eval("loo", "neumf", &params);
        let hr = metric(&r, "neumf", "HR@10");
        assert!(hr >= 0.565, "NeuMF HR@10 {hr}");
    }

    /// A CPU-only build asked for the GPU says how to get one; an unknown device is named.
    #[cfg(not(feature = "cuda"))]
    #[test]
    fn devices_are_checked_before_any_work() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("log.csv");
        let o = tandem(&["--device", "cuda", "generate", "--out", out.to_str().unwrap(), "--interactions", "10"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("--features cuda"), "{}", stderr(&o));
        assert!(!out.exists(), "nothing ran");
        let e = stderr(&tandem(&["--device", "tpu", "generate", "--out", out.to_str().unwrap()]));
        assert!(e.contains("unknown device `tpu`"), "{e}");
    }

    #[test]
    fn bad_model_and_parameter_names() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("train.tsv"), "user\titem\ttimestamp\n1\t2\t3\n").unwrap();
        std::fs::write(d.path().join("test.tsv"), "user\titem\ttimestamp\n1\t4\t5\n").unwrap();
        let dir = d.path().to_str().unwrap();
        let out = d.path().join("o");
        let e = stderr(&tandem(&["evaluate-split", dir, "--model", "svdpp", "--out", out.to_str().unwrap()]));
        assert!(e.contains("unknown model") && e.contains("popularity"), "{e}");
        let e = stderr(&tandem(&[
            "evaluate-split",
            dir,
            "--model",
            "item_knn",
            "--param",
            "neighbors=3",
            "--out",
            out.to_str().unwrap(),
        ]));
        assert!(e.contains("unknown field `neighbors`") && e.contains("neighbours"), "{e}");
        let e = stderr(&tandem(&[
            "evaluate-split",
            dir,
            "--model",
            "popularity",
            "--ks",
            "0",
            "--out",
            out.to_str().unwrap(),
        ]));
        assert!(e.contains("--ks") && e.contains("from 1 to 100000"), "{e}");
        let o = tandem(&["evaluate-split", dir, "--model", "popularity", "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

mod tune {
    use super::*;

    fn trials(dir: &Path) -> Vec<Value> {
        std::fs::read_to_string(dir.join("trials.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The search runs on a split whose test part is not there: it needs test.tsv only for the
    /// final evaluation. Once test.tsv appears, `--resume` runs no trial again and evaluates.
    #[test]
    fn the_search_never_opens_the_test_part_and_resumes_where_it_stopped() {
        let Some(data) = shared() else { return };
        let split = tempfile::tempdir().unwrap();
        let temporal = data.join("ml-100k/splits/temporal");
        std::fs::copy(temporal.join("train.tsv"), split.path().join("train.tsv")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let (s, o) = (split.path().to_str().unwrap(), out.path().to_str().unwrap());
        let run = |budget: &str, resume: bool| {
            let mut args = vec!["tune", s, "--model", "als", "--budget", budget, "--out", o, "--ks", "10"];
            if resume {
                args.push("--resume");
            }
            tandem(&args)
        };
        let first = run("3", false);
        assert!(!first.status.success());
        let e = stderr(&first);
        assert!(e.contains("test.tsv"), "fails at the final evaluation, naming the missing file: {e}");
        let done = trials(out.path());
        assert_eq!(done.len(), 3, "all three trials ran without test.tsv");
        assert!(done.iter().all(|t| t["value"].as_f64().unwrap() > 0.02 && t["metric"] == "NDCG@10"), "{done:?}");
        // Without --resume an existing log is not overwritten.
        let again = run("3", false);
        assert!(!again.status.success() && stderr(&again).contains("--resume"), "{}", stderr(&again));
        std::fs::copy(temporal.join("test.tsv"), split.path().join("test.tsv")).unwrap();
        let resumed = run("5", true);
        assert!(resumed.status.success(), "{}", stderr(&resumed));
        let all = trials(out.path());
        assert_eq!(all.len(), 5);
        assert_eq!(all[..3], done[..], "the first trials are kept as they were");
        // Seeded: an uninterrupted search proposes the same five trials.
        let fresh = tempfile::tempdir().unwrap();
        let f = fresh.path().to_str().unwrap();
        let o = tandem(&["tune", s, "--model", "als", "--budget", "5", "--out", f, "--ks", "10"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let params = |ts: &[Value]| ts.iter().map(|t| t["params"].clone()).collect::<Vec<_>>();
        assert_eq!(params(&trials(fresh.path())), params(&all));
        let r = report(out.path());
        assert!(metric(&r, "als", "NDCG@10") > 0.05, "{r}");
        let best = std::fs::read_to_string(out.path().join("best.yaml")).unwrap();
        assert!(best.starts_with("kind: als\n") && best.contains("factors: "), "{best}");
        assert!(std::fs::read_to_string(out.path().join("trials.svg")).unwrap().contains("<polyline"));
    }

    /// Trials trained in epochs stop once they validate below the median of at least five
    /// earlier trials at the same epoch (runs of 10 epochs or more, after a third of them): no
    /// pruned trial is the best, and `--no-prune` trains the same trial to its end.
    #[test]
    fn trials_below_their_peers_stop_early_unless_told_not_to() {
        let Some(data) = shared() else { return };
        let split = data.join("ml-100k/splits/temporal");
        let s = split.to_str().unwrap();
        let search = |extra: &[&str]| {
            let out = tempfile::tempdir().unwrap();
            // One thread: MF's fits, and so the proposals after the random ones, repeat exactly.
            let mut args = vec!["tune", s, "--model", "mf", "--budget", "14", "--param", "factors=16"];
            args.extend_from_slice(&["--param", "threads=1", "--ks", "10", "--out", out.path().to_str().unwrap()]);
            args.extend_from_slice(extra);
            let o = tandem(&args);
            assert!(o.status.success(), "{}", stderr(&o));
            (trials(out.path()), stderr(&o))
        };
        let (pruned, log) = search(&[]);
        let (full, _) = search(&["--no-prune"]);
        assert!(full.iter().all(|t| t.get("pruned").is_none()));
        let first = pruned.iter().position(|t| t.get("pruned").is_some()).unwrap_or_else(|| panic!("{log}"));
        assert!(first >= 5 && log.contains("pruned after epoch"), "five trials before any is pruned: {log}");
        let params = |ts: &[Value]| ts.iter().map(|t| t["params"].clone()).collect::<Vec<_>>();
        assert_eq!(params(&pruned[..=first]), params(&full[..=first]), "the same trials until the first pruned one");
        let curve = |t: &Value| t["curve"].as_array().unwrap().len();
        let planned = full[first]["params"]["epochs"].as_u64().unwrap() as usize;
        assert!(planned >= 10 && curve(&full[first]) > curve(&pruned[first]), "{} / {}", full[first], pruned[first]);
        let value = |t: &Value| t["value"].as_f64().unwrap();
        let top = pruned.iter().map(value).fold(f64::MIN, f64::max);
        for t in pruned.iter().filter(|t| t.get("pruned").is_some()) {
            let e = t["pruned"].as_u64().unwrap() as usize;
            let planned = t["params"]["epochs"].as_u64().unwrap() as usize;
            assert!(
                curve(t) == e && e >= planned.div_ceil(3),
                "stopped right after epoch {e}, not before a third: {t}"
            );
            assert!(value(t) < top, "a pruned trial is not the best: {t}");
        }
    }

    /// A pipeline tunes each retriever alone, then its ranker on the tuned retrievers'
    /// candidates: the retrievers' trials and the ranker's are logged apart, the first of each
    /// is the settings as given, and the chosen pipeline is refitted and evaluated on test.
    #[test]
    fn a_pipeline_tunes_its_retrievers_then_its_ranker() {
        let Some(data) = shared() else { return };
        let split = data.join("ml-100k/splits/temporal");
        let out = tempfile::tempdir().unwrap();
        let (s, o) = (split.to_str().unwrap(), out.path().to_str().unwrap());
        let args = [
            "tune",
            s,
            "--model",
            "two_stage",
            "--param",
            "retrievers=[{kind: als, factors: 32}, {kind: item_knn}]",
            "--param",
            "ranker={kind: gbdt, trees: 30}",
            "--param",
            "candidates=30",
            "--budget",
            "8",
            "--out",
            o,
        ];
        let run = tandem(&args);
        assert!(run.status.success(), "{}", stderr(&run));
        let log = |name: &str| -> Vec<Value> {
            let text = std::fs::read_to_string(out.path().join(name)).unwrap();
            text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
        };
        let (als, knn, ranker) =
            (log("trials.retrievers.0.jsonl"), log("trials.retrievers.1.jsonl"), trials(out.path()));
        assert_eq!((als.len(), knn.len(), ranker.len()), (2, 2, 4), "half the budget to the retrievers");
        assert_eq!(als[0]["params"]["factors"], 32, "the retriever as given first");
        assert_eq!(ranker[0]["params"]["learning_rate"], 0.1, "the ranker as given first");
        assert!(ranker.iter().all(|t| t["value"].as_f64().is_some_and(|v| v > 0.02)), "{ranker:?}");
        let r = report(out.path());
        assert!(metric(&r, "two_stage", "NDCG@10") > 0.05, "{r}");
        let best = std::fs::read_to_string(out.path().join("best.yaml")).unwrap();
        assert!(best.contains("retrievers:") && best.contains("ranker:") && best.contains("\"trees\":30"), "{best}");
    }

    /// `--time` stops starting trials once it is up (here at once, after the first), and the
    /// best so far is still refitted and evaluated.
    #[test]
    fn the_time_limit_ends_the_search_early() {
        let Some(data) = shared() else { return };
        let split = data.join("ml-100k/splits/temporal");
        let out = tempfile::tempdir().unwrap();
        let (s, o) = (split.to_str().unwrap(), out.path().to_str().unwrap());
        let run =
            tandem(&["tune", s, "--model", "als", "--budget", "1000", "--time", "0.001s", "--out", o, "--ks", "10"]);
        assert!(run.status.success(), "{}", stderr(&run));
        assert!(stderr(&run).contains("time is up after 1 of 1000 trials"), "{}", stderr(&run));
        assert_eq!(trials(out.path()).len(), 1);
        assert!(metric(&report(out.path()), "als", "NDCG@10") > 0.05);
        let bad = tandem(&["tune", s, "--model", "als", "--time", "10 minutes", "--out", o]);
        assert!(!bad.status.success() && stderr(&bad).contains("such as 90s, 10m or 1h"), "{}", stderr(&bad));
    }

    /// With `--folds 2` on a share holdout a trial scores the mean of two carvings, the second
    /// drawn with the next seed: the defaults' value is the mean of what one fold gives with
    /// seeds 42 and 43. A split that validates on its valid.tsv has no folds to carve.
    #[test]
    fn folds_average_carvings_drawn_with_successive_seeds() {
        let Some(data) = shared() else { return };
        let split = data.join("ml-100k/splits/ratio");
        let s = split.to_str().unwrap();
        let first = |folds: &str, seed: &str| {
            let out = tempfile::tempdir().unwrap();
            let o = out.path().to_str().unwrap();
            let args = ["tune", s, "--model", "als", "--holdout", "share:0.1", "--budget", "1", "--ks", "10"];
            let run = tandem(&[&args[..], &["--folds", folds, "--seed", seed, "--out", o]].concat());
            assert!(run.status.success(), "{}", stderr(&run));
            let tune: Value =
                serde_json::from_str(&std::fs::read_to_string(out.path().join("tune.json")).unwrap()).unwrap();
            assert_eq!(tune["folds"], folds.parse::<u64>().unwrap());
            (trials(out.path())[0]["value"].as_f64().unwrap(), stderr(&run))
        };
        let ((a, _), (b, _), (mean, log)) = (first("1", "42"), first("1", "43"), first("2", "42"));
        assert!(a != b, "two carvings: {a} {b}");
        assert!((mean - (a + b) / 2.0).abs() < 1e-12, "{mean} against {a} and {b}");
        assert!(log.contains("mean of 2 folds"), "{log}");
        // A search resumed with other folds would mix means of different carvings.
        let out = tempfile::tempdir().unwrap();
        let o = out.path().to_str().unwrap();
        let args = ["tune", s, "--model", "als", "--holdout", "share:0.1", "--ks", "10", "--out", o];
        assert!(tandem(&[&args[..], &["--folds", "2", "--budget", "1"]].concat()).status.success());
        let resumed = tandem(&[&args[..], &["--resume", "--budget", "2"]].concat());
        let e = stderr(&resumed);
        assert!(!resumed.status.success() && e.contains("2 fold(s), not 1 (--folds)"), "{e}");
        let loo = data.join("ml-100k/splits/loo");
        let out = tempfile::tempdir().unwrap();
        let e = stderr(&tandem(&[
            "tune",
            loo.to_str().unwrap(),
            "--model",
            "als",
            "--folds",
            "2",
            "--out",
            out.path().to_str().unwrap(),
        ]));
        assert!(e.contains("--folds 2") && e.contains("valid.tsv") && e.contains("--holdout"), "{e}");
    }

    /// Recency weighting is searched where validation holds out each user's latest rows, not
    /// where it holds out a random share of them (which cannot reward it).
    #[test]
    fn recency_is_searched_only_when_validation_follows_time() {
        let Some(data) = shared() else { return };
        let split = data.join("ml-100k/splits/ratio");
        let searched = |holdout: &str| {
            let out = tempfile::tempdir().unwrap();
            let (s, o) = (split.to_str().unwrap(), out.path().to_str().unwrap());
            let args =
                ["tune", s, "--model", "item_knn", "--holdout", holdout, "--budget", "2", "--ks", "10", "--out", o];
            let run = tandem(&args);
            assert!(run.status.success(), "{}", stderr(&run));
            let keys =
                trials(out.path()).iter().map(|t| t["params"].get("recency_half_life").is_some()).collect::<Vec<_>>();
            (keys, stderr(&run))
        };
        let (share, log) = searched("share:0.1");
        assert_eq!(share, [false, false], "{log}");
        assert!(log.contains("searching weighting, neighbours, shrink\n"), "{log}");
        let (last, log) = searched("last:5");
        assert_eq!(last, [true, true], "{log}");
        assert!(log.contains("shrink, recency_half_life"), "{log}");
    }

    #[test]
    fn bad_requests_are_named() {
        let Some(data) = shared() else { return };
        let split = data.join("ml-100k/splits/temporal");
        let out = tempfile::tempdir().unwrap();
        let (s, o) = (split.to_str().unwrap(), out.path().to_str().unwrap());
        let e = stderr(&tandem(&["tune", s, "--model", "popularity", "--out", o]));
        assert!(e.contains("nothing to search"), "{e}");
        let e = stderr(&tandem(&["tune", s, "--model", "als", "--holdout", "first:3", "--out", o]));
        assert!(e.contains("last:N") && e.contains("share:S"), "{e}");
        let e = stderr(&tandem(&["tune", s, "--model", "svd", "--out", o]));
        assert!(e.contains("unknown model") && e.contains("als"), "{e}");
    }
}

mod artifacts {
    use super::*;

    #[test]
    fn save_load_recommend_and_refuse_other_data_or_versions() {
        let Some(data) = shared() else { return };
        let d = tempfile::tempdir().unwrap();
        let (temporal, ratio) = (data.join("ml-100k/splits/temporal"), data.join("ml-100k/splits/ratio"));
        let model = d.path().join("model");
        let run = |args: &[&str]| {
            let o = tandem(args);
            assert!(o.status.success(), "{}", stderr(&o));
            o
        };
        let (o1, o2) = (d.path().join("o1"), d.path().join("o2"));
        let args = ["evaluate-split", temporal.to_str().unwrap(), "--model", "item_knn", "--out", o1.to_str().unwrap()];
        run(&[&args[..], &["--save", model.to_str().unwrap()]].concat());
        run(&[
            "evaluate-split",
            temporal.to_str().unwrap(),
            "--load",
            model.to_str().unwrap(),
            "--out",
            o2.to_str().unwrap(),
        ]);
        assert_eq!(report(&o1)["models"]["item_knn"]["metrics"], report(&o2)["models"]["item_knn"]["metrics"]);
        for f in ["manifest.json", "tensors.safetensors", "history.safetensors", "users.txt", "items.txt"] {
            assert!(model.join(f).exists(), "{f}");
        }
        // Trained on other data.
        let e = stderr(&tandem(&[
            "evaluate-split",
            ratio.to_str().unwrap(),
            "--load",
            model.to_str().unwrap(),
            "--out",
            o2.to_str().unwrap(),
        ]));
        assert!(e.contains("trained on other data") && e.contains("fingerprint"), "{e}");
        // Recommend for a known user and for an anonymous history.
        let o = run(&["recommend", "--model", model.to_str().unwrap(), "--user", "1", "-k", "5"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(out.lines().count(), 6, "{out}");
        let o = run(&["recommend", "--model", model.to_str().unwrap(), "--items", "50,181", "-k", "3"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(!out.lines().skip(1).any(|l| l.split('\t').nth(1) == Some("50")), "history items excluded: {out}");
        let e = stderr(&tandem(&["recommend", "--model", model.to_str().unwrap(), "--user", "nobody"]));
        assert!(e.contains("unknown user 'nobody'"), "{e}");
        // Another format version.
        let manifest = std::fs::read_to_string(model.join("manifest.json")).unwrap();
        std::fs::write(
            model.join("manifest.json"),
            manifest.replace("\"format_version\": 1", "\"format_version\": 99"),
        )
        .unwrap();
        let e = stderr(&tandem(&["recommend", "--model", model.to_str().unwrap(), "--user", "1"]));
        assert!(e.contains("model format version 99") && e.contains("retrain"), "{e}");
        // A corrupt tensor file: its checksum names it; without checksums (a directory saved
        // before them) the reader does.
        std::fs::write(model.join("manifest.json"), &manifest).unwrap();
        std::fs::write(model.join("tensors.safetensors"), b"not safetensors").unwrap();
        let e = stderr(&tandem(&["recommend", "--model", model.to_str().unwrap(), "--user", "1"]));
        assert!(e.contains("tensors.safetensors is damaged or was changed after saving"), "{e}");
        let mut unchecked: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        unchecked.as_object_mut().unwrap().remove("checksums");
        std::fs::write(model.join("manifest.json"), unchecked.to_string()).unwrap();
        let e = stderr(&tandem(&["recommend", "--model", model.to_str().unwrap(), "--user", "1"]));
        assert!(e.contains("cannot load") && e.contains("tensors.safetensors"), "{e}");
    }

    #[test]
    fn run_saves_every_model_when_asked() {
        let d = tempfile::tempdir().unwrap();
        let cfg = fixture(d.path(), CONFIG);
        let out = d.path().join("out");
        let o =
            tandem(&["run", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "output.save_models=true"]);
        assert!(o.status.success(), "{}", stderr(&o));
        for m in ["pop", "knn", "users"] {
            let o = tandem(&[
                "recommend",
                "--model",
                out.join("models").join(m).to_str().unwrap(),
                "--user",
                "u1",
                "-k",
                "2",
            ]);
            assert!(o.status.success(), "{m}: {}", stderr(&o));
        }
    }
}

mod assignment {
    use super::*;

    /// The course format made from ml-100k: `UserId,ItemId` with the user's items in time order.
    fn course_file(data: &Path, out: &Path) {
        let text = std::fs::read_to_string(data.join("ml-100k/ml-100k.inter")).unwrap();
        let mut rows: std::collections::BTreeMap<u32, Vec<(u64, String)>> = Default::default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            rows.entry(f[0].parse().unwrap()).or_default().push((f[3].parse().unwrap(), f[1].to_string()));
        }
        let mut csv = String::from("UserId,ItemId\n");
        for (u, mut items) in rows {
            items.sort();
            csv += &format!("{u},{}\n", items.into_iter().map(|i| i.1).collect::<Vec<_>>().join(" "));
        }
        std::fs::write(out, csv).unwrap();
    }

    #[test]
    fn writes_a_valid_submission_and_prints_the_evaluators_map() {
        let Some(data) = shared() else { return };
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("train.csv");
        course_file(&data, &input);
        let conf = repo().join("configs/assignment");
        let train_cfg = d.path().join("train_bpr.yaml");
        let text = std::fs::read_to_string(conf.join("train_bpr.yaml")).unwrap();
        std::fs::write(&train_cfg, text.replace("epochs: 40", "epochs: 4")).unwrap();
        // The course's usage: -o names the submission file (report.json goes beside it).
        let out = d.path().join("out");
        let o = tandem(&[
            "assignment",
            "--input",
            input.to_str().unwrap(),
            "--data",
            conf.join("data.yaml").to_str().unwrap(),
            "--train",
            train_cfg.to_str().unwrap(),
            "-o",
            out.join("my_submission.csv").to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let stdout = String::from_utf8_lossy(&o.stdout);
        let epochs: Vec<f64> = stdout
            .lines()
            .filter(|l| l.starts_with("epoch"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(epochs.len(), 4, "{stdout}");
        let best: f64 = stdout
            .lines()
            .find(|l| l.starts_with("best epoch"))
            .unwrap()
            .split("= ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let max = epochs.iter().copied().fold(0.0, f64::max);
        assert!((best - max).abs() < 1e-4, "printed best {best} vs epochs {epochs:?}");
        let r: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
        assert!((r["validation"]["value"].as_f64().unwrap() - best).abs() < 1e-4);
        assert!(best > 0.05, "hard-negative BPR learns: {best}");
        // Every user, 50 distinct items they never had.
        let train = std::fs::read_to_string(&input).unwrap();
        let seen: std::collections::HashMap<&str, std::collections::HashSet<&str>> = train
            .lines()
            .skip(1)
            .map(|l| {
                let (u, items) = l.split_once(',').unwrap();
                (u, items.split(' ').collect())
            })
            .collect();
        let sub = std::fs::read_to_string(out.join("my_submission.csv")).unwrap();
        assert!(!out.join("submission.csv").exists());
        let mut lines = sub.lines();
        assert_eq!(lines.next(), Some("UserId,ItemId"));
        let mut users = 0;
        for l in lines {
            let (u, items) = l.split_once(',').unwrap();
            let items: Vec<&str> = items.split(' ').collect();
            let distinct: std::collections::HashSet<&str> = items.iter().copied().collect();
            assert_eq!((items.len(), distinct.len()), (50, 50), "{u}");
            assert!(items.iter().all(|i| !seen[u].contains(i)), "{u}: unseen only");
            users += 1;
        }
        assert_eq!(users, 943);
    }

    /// `-o DIR` writes DIR/submission.csv and DIR/report.json.
    #[test]
    fn a_directory_gets_submission_csv() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("train.csv");
        let mut csv = String::from("UserId,ItemId\n");
        for u in 0..20 {
            csv += &format!("{u},{}\n", (0..8).map(|i| ((u + i * 3) % 15).to_string()).collect::<Vec<_>>().join(" "));
        }
        std::fs::write(&input, csv).unwrap();
        let train = d.path().join("t.yaml");
        std::fs::write(&train, "latent_factors: 4\nepochs: 1\nlr: 0.05\nbatch_size: 16\ntop_k: 3\n").unwrap();
        let out = d.path().join("results");
        let data = repo().join("configs/assignment/data.yaml");
        let p = |x: &Path| x.to_str().unwrap().to_string();
        let o = tandem(&["assignment", "-i", &p(&input), "--data", &p(&data), "--train", &p(&train), "-o", &p(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let sub = std::fs::read_to_string(out.join("submission.csv")).unwrap();
        assert_eq!(sub.lines().count(), 21);
        assert!(out.join("report.json").exists());
    }

    #[test]
    fn config_errors_are_named() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("train.csv");
        std::fs::write(&input, "UserId,ItemId\n1,1 2 3\n").unwrap();
        let run = |data: &Path, train: &Path| {
            let p = |x: &Path| x.to_str().unwrap().to_string();
            stderr(&tandem(&[
                "assignment",
                "-i",
                &p(&input),
                "--data",
                &p(data),
                "--train",
                &p(train),
                "-o",
                &p(d.path()),
            ]))
        };
        let data = d.path().join("data.yaml");
        std::fs::write(&data, "split_mode: ratio\nneg_mode: fixd\n").unwrap();
        let e = run(&data, &repo().join("configs/assignment/train_bpr.yaml"));
        assert!(e.contains("data.yaml") && e.contains("neg_mode") && e.contains("fixd"), "{e}");
        std::fs::write(&data, "split_mode: ratio\nneg_mode: fixed\n").unwrap();
        let train = d.path().join("t.yaml");
        std::fs::write(&train, "device: cuda\nlatent_factors: 8\nepochs: 1\nlr: 0.1\nbatch_size: 8\n").unwrap();
        let e = run(&data, &train);
        assert!(e.contains("device 'cuda'"), "{e}");
    }
}

mod serve {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::{Child, Stdio};
    use std::time::{Duration, Instant};

    /// A `tandem serve` process, killed on drop.
    struct Server {
        child: Child,
        addr: String,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// One raw HTTP/1.1 exchange: (status, body).
    fn http(addr: &str, raw: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, out.split_once("\r\n\r\n").map_or(String::new(), |x| x.1.to_string()))
    }

    fn get(addr: &str, path: &str) -> (u16, String) {
        http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    }

    fn start(model: &Path, wal: &Path) -> Server {
        start_with(model, wal, &[])
    }

    fn start_with(model: &Path, wal: &Path, extra: &[&str]) -> Server {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["serve", "--model", model.to_str().unwrap(), "--addr", &addr, "--wal", wal.to_str().unwrap()])
            .args(extra)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child, addr };
        let start = Instant::now();
        while TcpStream::connect(&server.addr).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// A model with ml-100k's titles and genres, saved by evaluate-split.
    fn model(dir: &Path) -> Option<PathBuf> {
        let data = shared()?;
        let m = dir.join("model");
        let o = tandem(&[
            "evaluate-split",
            data.join("ml-100k/splits/temporal").to_str().unwrap(),
            "--items",
            data.join("ml-100k/ml-100k.item").to_str().unwrap(),
            "--model",
            "als",
            "--save",
            m.to_str().unwrap(),
            "--out",
            dir.join("eval").to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        Some(m)
    }

    /// The real binary on a real socket: hostile bytes do not bring it down, interactions
    /// survive a restart (the log is replayed), and bad starts are refused with a reason.
    #[test]
    fn serves_survives_garbage_and_replays_its_log() {
        let d = tempfile::tempdir().unwrap();
        let Some(model) = model(d.path()) else { return };
        let wal = d.path().join("live.wal");
        let server = start(&model, &wal);
        let a = server.addr.clone();
        for junk in [
            "\u{0}\u{1}garbage\r\n\r\n",
            "GET /v1/recommend?user=1&k=99999999999999999999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ] {
            let _ = http(&a, junk);
        }
        let body = r#"{"user": "1", "items": ["50", "181"]}"#;
        let (st, _) = http(
            &a,
            &format!("POST /v1/interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
        );
        assert_eq!(st, 201);
        let (st, before) = get(&a, "/v1/recommend?user=1&k=5&include_history=true");
        assert_eq!(st, 200, "{before}");
        assert!(before.contains("\"Star Wars\"") || before.contains("\"50\""), "{before}");
        drop(server);
        let server = start(&model, &wal);
        let (_, after) = get(&server.addr, "/v1/recommend?user=1&k=5&include_history=true");
        let items = |s: &str| serde_json::from_str::<Value>(s).unwrap()["items"].clone();
        assert_eq!(items(&after), items(&before), "replayed from the log");
        assert_eq!(get(&server.addr, "/health").0, 200);
        let (st, metrics) = get(&server.addr, "/metrics");
        assert!(st == 200 && metrics.contains("tandem_live_interactions 2"), "{metrics}");
        drop(server);
        let o = tandem(&["serve", "--model", d.path().to_str().unwrap()]);
        assert!(!o.status.success() && stderr(&o).contains("not a Tandem model directory"), "{}", stderr(&o));
    }

    fn post_interaction(addr: &str, user: &str, item: &str) -> Option<u16> {
        let body = format!(r#"{{"user": "{user}", "item": "{item}"}}"#);
        let raw = format!(
            "POST /v1/interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
        s.write_all(raw.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.split(' ').nth(1)?.parse().ok()
    }

    /// The issue's crash case at the process level: `kill -9` while four clients post, a torn
    /// record appended (a crash mid-write), a restart, more posts, a second kill and tear, a
    /// restart: it starts, and every acknowledged interaction is in the user's history. Then
    /// damage in the middle of the log: the server refuses to start and names it;
    /// `--wal-recover` starts.
    #[test]
    fn kill_9_mid_write_twice_loses_no_acknowledged_interaction() {
        let d = tempfile::tempdir().unwrap();
        let Some(model) = model(d.path()) else { return };
        let wal = d.path().join("live.wal");
        let acked = std::sync::Mutex::new(Vec::new());
        for round in 0..2 {
            let mut server = Some(start(&model, &wal));
            let addr = server.as_ref().unwrap().addr.clone();
            let stop = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|s| {
                for t in 0..4 {
                    let (addr, stop, acked) = (&addr, &stop, &acked);
                    s.spawn(move || {
                        for n in 0.. {
                            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                break;
                            }
                            let (user, item) =
                                (format!("crash-{round}-{t}-{n}"), format!("{}", 1 + (n * 7 + t) % 1682));
                            match post_interaction(addr, &user, &item) {
                                Some(201) => acked.lock().unwrap().push((user, item)),
                                Some(_) => {}
                                None => break,
                            }
                        }
                    });
                }
                std::thread::sleep(Duration::from_millis(700));
                drop(server.take()); // SIGKILL, with requests in flight
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            // The record a crash mid-write leaves: no newline.
            let mut f = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
            f.write_all(b"0badc0de 999999 {\"user\": \"torn\", \"it").unwrap();
        }
        let acked = acked.into_inner().unwrap();
        assert!(acked.len() >= 20, "only {} posts acknowledged", acked.len());
        let server = start(&model, &wal);
        for (user, item) in &acked {
            let (st, r) = get(&server.addr, &format!("/v1/recommend?user={user}&k=1&include_history=true"));
            let history = serde_json::from_str::<Value>(&r).unwrap()["history"].clone();
            assert!(st == 200 && history == serde_json::json!([item]), "{user}: {r}");
        }
        drop(server);
        // Damage in the middle: the first record's checksum no longer matches.
        let mut bytes = std::fs::read(&wal).unwrap();
        bytes[0] = if bytes[0] == b'0' { b'1' } else { b'0' };
        std::fs::write(&wal, &bytes).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args([
                "serve",
                "--model",
                model.to_str().unwrap(),
                "--addr",
                "127.0.0.1:1",
                "--wal",
                wal.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let e = stderr(&o);
        assert!(!o.status.success() && e.contains("line 1 (byte 0)") && e.contains("--wal-recover"), "{e}");
        let server = start_with(&model, &wal, &["--wal-recover"]);
        assert_eq!(get(&server.addr, "/health").0, 200);
        let quarantined = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("live.wal.quarantine-"));
        assert!(quarantined, "the damaged part is kept aside");
    }

    /// The demo page in headless Chromium: it loads the model's users, recommends for a user
    /// with titles, genres and timings, and clicking a search result starts a session.
    /// Chromium (`chromium-headless-shell` or `chromium`) is installed by .ci/run, where
    /// TANDEM_REQUIRE_BROWSER=1 makes its absence a failure; elsewhere the test says it skipped.
    #[test]
    fn demo_page_in_headless_chromium() {
        let browser = ["chromium-headless-shell", "chromium", "chromium-browser"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()));
        let Some(browser) = browser else {
            assert!(std::env::var_os("TANDEM_REQUIRE_BROWSER").is_none(), "no headless Chromium found");
            eprintln!("skipped: no headless Chromium (apt-get install chromium-headless-shell)");
            return;
        };
        let d = tempfile::tempdir().unwrap();
        let Some(model) = model(d.path()) else { return };
        let server = start(&model, &d.path().join("live.wal"));
        let dom = |query: &str| {
            let o = Command::new(browser)
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000", "--dump-dom"])
                .arg(format!("http://{}/{query}", server.addr))
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        let page = dom("?user=1");
        assert!(page.contains("942 users"), "the model line: {page}");
        assert!(page.contains("<option value=\"1\">"), "users to pick from");
        let recs = page.split("id=\"recs\"").nth(1).unwrap().split("</ol>").next().unwrap();
        assert_eq!(recs.matches("<li data-item=").count(), 10, "{recs}");
        assert!(recs.contains("class=\"genres\""), "titles and genres: {recs}");
        assert!(page.contains("For user 1") && page.contains("<td>total</td>"), "timings: {page}");
        let page = dom("?search=star%20wars&click=0");
        let session = page.split("id=\"session\"").nth(1).unwrap().split("</ol>").next().unwrap();
        assert!(session.contains("Star Wars"), "the clicked item joins the session: {session}");
        assert!(page.contains("For this session") && page.contains("Return of the Jedi"), "{page}");
    }
}
