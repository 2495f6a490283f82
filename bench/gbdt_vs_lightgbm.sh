#!/usr/bin/env bash
# Tandem's GBDT ranker beside LightGBM (PyPI) on the same rows: a two-stage fit with the
# `gbdt` ranker exports its training windows and its validation window (the latest one) as
# matrices (TANDEM_GBDT_EXPORT); then Tandem's engine (benches/gbdt_train.rs) and LightGBM's
# lambdarank train on the training rows with the same parameters, trees and threads, three
# times interleaved (median seconds), and one scorer computes both models' NDCG@10 and MAP@12
# on the validation lists. Writes bench/results/gbdt_vs_lightgbm.md.
#
# usage: bash bench/gbdt_vs_lightgbm.sh [TREES]
# Data: the bundled Online Retail log (configs/quickstart.yaml), ml-100k splits/temporal
# (../shared/data) and a 1M-row H&M-layout log (configs/hm.yaml), each with its own candidates.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TREES=${1:-100}
CACHE=${TANDEM_BENCH_CACHE:-$HOME/.cache/tandem-bench}
WORK=$CACHE/gbdt
RESULTS=$ROOT/bench/results/gbdt_vs_lightgbm.md
export THREADS=2 RAYON_NUM_THREADS=2
mkdir -p "$WORK"

cargo build --release -q
cargo bench -p tandem-rank --bench gbdt_train --no-run -q 2>/dev/null
TRAIN_BIN=$(ls -t target/release/deps/gbdt_train-* | grep -v '\.d$' | head -1)
BIN=$ROOT/target/release/tandem
if [ ! -x "$CACHE/venv-gbdt/bin/python" ]; then
  python3 -m venv "$CACHE/venv-gbdt"
  "$CACHE/venv-gbdt/bin/pip" install -q lightgbm numpy
fi
PY=$CACHE/venv-gbdt/bin/python
LGB_VERSION=$("$PY" -c "import lightgbm; print(lightgbm.__version__)")
# The ranker's parameters for both engines: a fixed number of trees (no early stopping), the
# model trained without the validation window.
PARAMS="{\"trees\": $TREES, \"early_stopping_rounds\": 0, \"refit\": false}"
RANKER="{kind: gbdt, trees: $TREES, early_stopping_rounds: 0, refit: false}"

# export NAME CMD...: runs a fit that writes its matrices to $WORK/NAME.
export_rows() {
  local name=$1
  shift
  rm -rf "${WORK:?}/$name"
  TANDEM_GBDT_EXPORT=$WORK/$name "$@" >"$WORK/$name.log" 2>&1 || { tail -20 "$WORK/$name.log" >&2; exit 1; }
}

echo "== exporting: Online Retail" >&2
cat >"$WORK/retail.yaml" <<YAML
data:
  format: delimited
  log:
    path: $ROOT/data/online-retail/online_retail.csv.gz
    columns: {user: CustomerID, item: StockCode, time: InvoiceDate}
    time_format: "%Y-%m-%d %H:%M:%S"
    filters:
      - { column: InvoiceNo, not_starts_with: "C" }
      - { column: Quantity, min: 1 }
      - { column: CustomerID, non_empty: true }
split: {kind: time_window, days: 14}
evaluation: {ks: [12], exclude_seen: false}
models:
  two-stage:
    kind: two_stage
    exclude_seen: false
    window_days: 14
    windows: 2
    retrievers: [{kind: ease}, {kind: item_knn}]
    ranker: $RANKER
YAML
export_rows retail "$BIN" run "$WORK/retail.yaml" --out "$WORK/retail-out"

echo "== exporting: ml-100k temporal" >&2
export_rows ml100k "$BIN" evaluate-split ../shared/data/ml-100k/splits/temporal --model two_stage \
  --items ../shared/data/ml-100k/ml-100k.item \
  --param 'retrievers=[{kind: als, alpha: 10, regularization: 20, recency_half_life: 3}, {kind: item_knn}]' \
  --param windows=3 --param "ranker=$RANKER" --out "$WORK/ml100k-out"

echo "== exporting: H&M layout, 1M rows" >&2
HM=$CACHE/hm-1m
if [ ! -f "$HM/.done" ]; then
  "$BIN" generate --layout hm --out "$HM" --users 43160 --items 105542 --interactions 1000000 --days 730
  touch "$HM/.done"
fi
export_rows hm1m "$BIN" run configs/hm.yaml --set "data.path=$HM" --set "models.two-stage.ranker=$RANKER" \
  --set output.submission.model=popularity-age --out "$WORK/hm1m-out"

median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }
# stats FILE...: "mean ± sd" of each scorer output's NDCG@10 and MAP@12.
stats() {
  python3 - "$@" <<'PY'
import json, statistics, sys
runs = [json.loads(open(f).read()) for f in sys.argv[1:]]
def ms(key):
    v = [r[key] for r in runs]
    return f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" if len(v) > 1 else f"{v[0]:.4f}"
print(ms("ndcg@10"), ms("map@12"), sep="\t")
PY
}
SAMPLED="\"feature_fraction\": 0.8, \"bagging_fraction\": 0.8"
TABLE="| data | training rows (lists) | validation lists | features | Tandem s | LightGBM s | LightGBM / Tandem | Tandem NDCG@10 | LightGBM NDCG@10 | Tandem MAP@12 | LightGBM MAP@12 |\n|---|---|---|---|---|---|---|---|---|---|---|"
SEEDS_TABLE="| data | Tandem s | LightGBM s | LightGBM / Tandem | Tandem NDCG@10 | LightGBM NDCG@10 | Tandem MAP@12 | LightGBM MAP@12 |\n|---|---|---|---|---|---|---|---|"
for name in retail ml100k hm1m; do
  dir=$WORK/$name
  t=() l=()
  for run in 1 2 3; do
    echo "== $name: run $run" >&2
    t+=("$("$TRAIN_BIN" "$dir" "$TREES" "$PARAMS")")
    l+=("$("$PY" bench/gbdt_lightgbm.py train "$dir" "$TREES" "$PARAMS")")
  done
  ts=$(median "${t[@]}") ls=$(median "${l[@]}")
  tq=$("$PY" bench/gbdt_lightgbm.py score "$dir" "$dir/tandem.pred.f32")
  lq=$("$PY" bench/gbdt_lightgbm.py score "$dir" "$dir/lightgbm.pred.f32")
  row=$(python3 - "$dir" "$ts" "$ls" "$tq" "$lq" <<'PY'
import json, os, sys
d, ts, ls, tq, lq = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4]), json.loads(sys.argv[5])
rows = os.path.getsize(os.path.join(d, "train.labels.f32")) // 4
lists = os.path.getsize(os.path.join(d, "train.groups.u32")) // 4
width = sum(1 for _ in open(os.path.join(d, "features.txt")))
print(f"| {rows:,} ({lists:,}) | {tq['lists']:,} | {width} | {ts:.2f} | {ls:.2f} | {ls / ts:.2f}x | "
      f"{tq['ndcg@10']:.4f} | {lq['ndcg@10']:.4f} | {tq['map@12']:.4f} | {lq['map@12']:.4f} |")
PY
)
  TABLE="$TABLE\n| $name $row"
  # Five seeds with row and feature sampling: the spread one seed's luck gives each engine.
  t=() l=()
  for seed in 1 2 3 4 5; do
    echo "== $name: seed $seed" >&2
    p="{\"trees\": $TREES, \"early_stopping_rounds\": 0, \"refit\": false, $SAMPLED, \"seed\": $seed}"
    t+=("$("$TRAIN_BIN" "$dir" "$TREES" "$p")")
    "$PY" bench/gbdt_lightgbm.py score "$dir" "$dir/tandem.pred.f32" >"$dir/tandem.seed$seed.json"
    l+=("$("$PY" bench/gbdt_lightgbm.py train "$dir" "$TREES" "$p")")
    "$PY" bench/gbdt_lightgbm.py score "$dir" "$dir/lightgbm.pred.f32" >"$dir/lightgbm.seed$seed.json"
  done
  ts=$(median "${t[@]}") ls=$(median "${l[@]}")
  IFS=$'\t' read -r tn tm < <(stats "$dir"/tandem.seed*.json)
  IFS=$'\t' read -r ln lm < <(stats "$dir"/lightgbm.seed*.json)
  ratio=$(python3 -c "print(f'{$ls / $ts:.2f}x')")
  SEEDS_TABLE="$SEEDS_TABLE\n| $name | $ts | $ls | $ratio | $tn | $ln | $tm | $lm |"
done

cat >"$RESULTS" <<MD
# GBDT ranker beside LightGBM $LGB_VERSION ($(date -u +%Y-%m-%dT%H:%MZ))

\`bash bench/gbdt_vs_lightgbm.sh $TREES\` on $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), 2 threads each.
Both train LambdaRank (NDCG pairs) for $TREES trees on the same exported rows — every training
window of a two-stage fit but the latest — with the same parameters (31 leaves grown
best-first, learning rate 0.1, L2 1, 255 bins, min hessian 1e-3 per leaf; LightGBM's
min_data_in_leaf 1, as the Rust engine has no row-count minimum), and are scored by one scorer
(SPEC §6) on the latest window's lists that hold a positive. Seconds: median of three
interleaved runs, from the start of binning to the last tree.

$(printf "%b" "$TABLE")

The same, with \`feature_fraction: 0.8, bagging_fraction: 0.8\` (LightGBM: \`bagging_freq 1\`) and
seeds 1-5 for both: mean ± standard deviation over the seeds, median seconds. One deterministic
run above differs from another engine's by about this spread.

$(printf "%b" "$SEEDS_TABLE")

Data: retail = configs/quickstart.yaml's two-stage (EASE + item kNN, 14-day windows, two of
them); ml100k = splits/temporal, ALS + item kNN, three 5-row windows, MovieLens item metadata;
hm1m = configs/hm.yaml on a 1M-row H&M-layout log (four sources, two weekly windows).
MD
echo "wrote $RESULTS" >&2
cat "$RESULTS"
