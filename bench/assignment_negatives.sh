#!/usr/bin/env bash
# BPR with dynamic hard negatives (N=10 candidates, M=3 hardest kept, K=3 random) vs uniform
# negatives, at equal factors and epochs, on a course-format file (default: made from ml-100k).
# Two regimes: the assignment's (plain SGD, lr 0.01, no weight decay, 1 uniform negative per
# positive) and Tandem's tuned one (Adagrad, lr 0.1, weight decay 0.01, 6 uniform negatives,
# as many as hard mode draws). Prints validation mAP@50 (best epoch).
# Usage: bench/assignment_negatives.sh [train.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=${1:-}
if [ -z "$input" ]; then
  input=$work/train.csv
  python3 bench/make_course_file.py ../shared/data/ml-100k/ml-100k.inter "$input"
fi
cargo build --release -q
run() { # factors hard optimizer lr weight_decay uniform_negatives epochs
  sed "s/^neg_mode: .*/neg_mode: uniform/; s/^neg_sample_num: .*/neg_sample_num: $6/" configs/assignment/data.yaml >"$work/data.yaml"
  sed "s/^latent_factors: .*/latent_factors: $1/; s/^num_hard_neg_samples: .*/num_hard_neg_samples: $2/; s/^patience: .*/patience: 0/; \
       s/^epochs: .*/epochs: $7/; s/^optimizer: .*/optimizer: $3/; s/^lr: .*/lr: $4/; s/^weight_decay: .*/weight_decay: $5/" \
    configs/assignment/train_bpr.yaml >"$work/train.yaml"
  target/release/tandem -q assignment --input "$input" --data "$work/data.yaml" --train "$work/train.yaml" --out "$work/o" 2>/dev/null |
    awk -F'= ' '/^best epoch/ {split($2, a, " "); print a[1]}'
}
for regime in assignment tuned; do
  if [ $regime = assignment ]; then opt="sgd 0.01 0" neg=1 epochs=20; else opt="adagrad 0.1 0.01" neg=6 epochs=30; fi
  echo
  echo "regime: $regime (optimizer, lr, weight decay: $opt; $epochs epochs)"
  printf '| factors | uniform (%s per positive) | hard (N=10, M=3, K=3) |\n|---|---|---|\n' "$neg"
  for f in 16 32 64 128; do
    # shellcheck disable=SC2086
    echo "| $f | $(run $f 0 $opt $neg $epochs) | $(run $f 3 $opt $neg $epochs) |"
  done
done
