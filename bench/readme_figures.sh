#!/usr/bin/env bash
# Re-measures every model figure README.md quotes, with the settings README gives, and writes
# bench/results/readme_figures.md (one row per figure: the command's model and parameters, then
# the metrics an evaluation reports). Run after anything that touches evaluation.
#
#   bash bench/readme_figures.sh [REGEX]     # only rows whose "label split" matches REGEX
#
# Needs ../shared/data (MovieLens 100K splits). About 20 minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy, so that rebuilding while this runs changes nothing.
cp target/release/tandem "$work/tandem"
tandem=$work/tandem
data=${TANDEM_DATA:-../shared/data}/ml-100k
splits=$data/splits
filter=${1:-}
out=${OUT:-bench/results/readme_figures.md}

# row LABEL SPLIT ARGS...: evaluate-split on SPLIT with ARGS, print the README's columns.
row() {
  local label=$1 split=$2
  shift 2
  [[ -n $filter && ! "$label $split" =~ $filter ]] && return 0
  local start=$SECONDS
  "$tandem" -q evaluate-split "$splits/$split" "$@" --out "$work/o" >"$work/log" 2>&1 || {
    echo "| $label | $split | failed: $(tail -1 "$work/log") |"
    return 0
  }
  python3 - "$work/o/report.json" "$label" "$split" "$((SECONDS - start))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = next(iter(r["models"].values()))
x = m["metrics"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {x['NDCG@10']:.4f} | {x['HR@10']:.4f} | {x['Recall@100']:.4f} | "
      f"{m['fit_seconds']:.1f} | {sys.argv[4]} |")
PY
}

{
  echo "# bench/readme_figures.sh, $(date -u +%Y-%m-%d), $(nproc) cores, commit $(git rev-parse --short HEAD)"
  echo
  echo "| figure | split | NDCG@10 | HR@10 | Recall@100 | fit s | wall s |"
  echo "|---|---|---|---|---|---|---|"
  row "popularity" temporal --model popularity
  row "item_knn (BM25)" temporal --model item_knn
  row "als" temporal --model als
  row "als recency_half_life=3 alpha=10 regularization=20" temporal --model als \
    --param recency_half_life=3 --param alpha=10 --param regularization=20
  row "ease" temporal --model ease
  row "mf (BPR) threads=1" temporal --model mf --param threads=1
  row "two_tower ID only temperature=0.1 epochs=60" temporal --model two_tower --param temperature=0.1 --param epochs=60
  row "two_tower history=8 temperature=0.2 epochs=20" temporal --model two_tower \
    --param history=8 --param temperature=0.2 --param epochs=20
  row "history loss=bce epochs=5" temporal --model history --param epochs=5
  row "history sampled_softmax 300 epochs=5" temporal --model history --param loss=sampled_softmax --param epochs=5
  row "history sampled_softmax 1000 epochs=5" temporal --model history --param loss=sampled_softmax \
    --param candidates=1000 --param epochs=5
  row "softmax" temporal --model softmax
  row "hsoftmax" temporal --model hsoftmax
  row "tdm" temporal --model tdm
  row "two_stage ALS(recency) + history -> late fusion, 3 windows" temporal --items "$data/ml-100k.item" \
    --model two_stage --param 'retrievers=[{kind: als, alpha: 10, regularization: 20, recency_half_life: 3}, {kind: history, loss: sampled_softmax, epochs: 5}]' \
    --param windows=3
  row "two_stage as above, DIN ranker" temporal --items "$data/ml-100k.item" \
    --model two_stage --param 'retrievers=[{kind: als, alpha: 10, regularization: 20, recency_half_life: 3}, {kind: history, loss: sampled_softmax, epochs: 5}]' \
    --param windows=3 --param 'ranker={kind: din}'
  row "als alpha=2 regularization=25" ratio --model als --param alpha=2 --param regularization=25
  row "ease" ratio --model ease
  row "popularity (sampled, 100 negatives)" loo --model popularity
  row "ease (sampled)" loo --model ease
  row "als factors=128 --train-with-valid (sampled)" loo --model als --param factors=128 --train-with-valid
  row "neumf RecBole shape (sampled)" loo --model neumf --valid-metric HR@10 --param gmf_factors=64 \
    --param embedding=64 --param 'layers=[128,64]' --param patience=5 --param epochs=40
  row "two_tower learning_rate=0.002 temperature=0.05 (sampled)" loo --model two_tower --valid-metric HR@10 \
    --param learning_rate=0.002 --param temperature=0.05 --param patience=6
  row "two_tower history=8 temperature=0.2 epochs=20 (sampled)" loo --model two_tower \
    --param history=8 --param temperature=0.2 --param epochs=20
  row "tdm beam=1 (sampled)" loo --model tdm --param beam=1
} | tee "$out"
