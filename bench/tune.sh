#!/usr/bin/env bash
# Grid-search one model on a validation split carved from a split directory's train.tsv
# (never test), then evaluate the chosen setting once on the real test split.
#
# Usage: bench/tune.sh SPLIT_DIR MODEL METRIC GRID...
#   GRID items are whitespace-free parameter sets joined by commas, e.g. factors=64,alpha=2
# Example: bench/tune.sh ../shared/data/ml-100k/splits/temporal als NDCG@10 factors=64,regularization=1 factors=128,regularization=5
# For a split with valid.tsv (and valid_negatives.tsv), the validation split is that file;
# for a directory named `ratio` (or with TUNE_RATIO=F), a random 10% (F) of each user's train rows;
# otherwise the last 5 train rows per user (bench/validation_split.py). With valid.tsv, the
# chosen setting is refit on train.tsv + valid.tsv for the test evaluation (--train-with-valid);
# TUNE_REFIT=0 fits on train.tsv alone.
set -euo pipefail
cd "$(dirname "$0")/.."
split=$1 model=$2 metric=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q
tandem=target/release/tandem
if [ -f "$split/valid.tsv" ]; then
  mkdir -p "$work/val"
  cp "$split/train.tsv" "$work/val/train.tsv"
  cp "$split/valid.tsv" "$work/val/test.tsv"
  [ -f "$split/valid_negatives.tsv" ] && cp "$split/valid_negatives.tsv" "$work/val/test_negatives.tsv"
elif [ "$(basename "$split")" = ratio ] || [ -n "${TUNE_RATIO:-}" ]; then
  python3 bench/validation_split.py "$split" "$work/val" --ratio "${TUNE_RATIO:-0.1}"
else
  python3 bench/validation_split.py "$split" "$work/val"
fi
score() {
  local dir=$1 params=$2 args=("${@:3}")
  IFS=, read -ra kv <<<"$params"
  for p in "${kv[@]}"; do args+=(--param "$p"); done
  "$tandem" -q evaluate-split "$dir" --model "$model" "${args[@]}" --out "$work/o" >/dev/null
  python3 -c "import json,sys; r=json.load(open('$work/o/report.json')); print(next(iter(r['models'].values()))['metrics']['$metric'])"
}
best="" best_score=-1
for params in "$@"; do
  s=$(score "$work/val" "$params")
  printf '%-60s valid %s %.4f\n' "$params" "$metric" "$s"
  if python3 -c "import sys; sys.exit(0 if $s > $best_score else 1)"; then best=$params best_score=$s; fi
done
echo "chosen on validation: $best ($metric $best_score)"
final=()
if [ -f "$split/valid.tsv" ] && [ "${TUNE_REFIT:-1}" = 1 ]; then final=(--train-with-valid); fi
printf 'test %s: %.4f %s\n' "$metric" "$(score "$split" "$best" "${final[@]}")" "${final[*]}"
