#!/usr/bin/env bash
# Tune item-item kNN on a validation split carved from ml-100k temporal train (never test),
# then report the chosen setting on the real test split.
# Usage: bench/tune_knn.sh [SPLIT_DIR]   (default ../shared/data/ml-100k/splits/temporal)
set -euo pipefail
cd "$(dirname "$0")/.."
split=${1:-../shared/data/ml-100k/splits/temporal}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q
tandem=target/release/tandem
python3 bench/validation_split.py "$split" "$work/val"
ndcg() { "$tandem" -q evaluate-split "$@" --ks 10 --out "$work/o" | awk '/^item_knn/ {print $2}'; }
best="" best_score=0
for w in bm25 tfidf cosine; do
  for k1 in 0.5 1.2 3; do
    for b in 0.5 0.75 0.9; do
      [ "$w" != bm25 ] && { [ "$k1" != 1.2 ] || [ "$b" != 0.75 ]; } && continue
      for n in 20 50 100 200 400; do
        params="--param weighting=$w --param bm25_k1=$k1 --param bm25_b=$b --param neighbours=$n"
        s=$(ndcg "$work/val" --model item_knn $params)
        printf '%-70s valid NDCG@10 %s\n' "$params" "$s"
        if awk -v a="$s" -v b="$best_score" 'BEGIN {exit !(a > b)}'; then best="$params" best_score=$s; fi
      done
    done
  done
done
echo "chosen on validation: $best (valid NDCG@10 $best_score)"
echo "test NDCG@10: $(ndcg "$split" --model item_knn $best)"
