#!/usr/bin/env bash
# Rankers side by side on ml-100k splits/temporal (issue 15): the README's two-stage pipeline
# (ALS with recency-weighted confidence + the history model, three held-out windows, MovieLens
# item metadata) re-ranked by the late-fusion MLP and by GBDT settings. Every ranker is scored
# on a validation split of train (each user's last 5 training rows, bench/validation_split.py:
# test.tsv is not read), the GBDT setting best there is chosen, and then every ranker is
# evaluated once on the real test part. Writes bench/results/gbdt_ml100k.md.
#
# usage: bash bench/gbdt_ml100k.sh   (about 12 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
SPLIT=../shared/data/ml-100k/splits/temporal
ITEMS=../shared/data/ml-100k/ml-100k.item
RESULTS=bench/results/gbdt_ml100k.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q
tandem=target/release/tandem
python3 bench/validation_split.py "$SPLIT" "$work/val" --last 5

RETRIEVERS='retrievers=[{kind: als, alpha: 10, regularization: 20, recency_half_life: 3}, {kind: history, loss: sampled_softmax, epochs: 5}]'
GBDT='kind: gbdt, metric: ndcg, metric_k: 10'
SAMPLED="$GBDT, feature_fraction: 0.8, bagging_fraction: 0.8"
names=(mlp gbdt gbdt-bags5 gbdt-bags10 gbdt-bags5-leaves15 gbdt-bags5-leaves8)
rankers=(
  "{kind: late_fusion}"
  "{$GBDT}"
  "{$SAMPLED, bags: 5}"
  "{$SAMPLED, bags: 10}"
  "{$SAMPLED, bags: 5, leaves: 15}"
  "{$SAMPLED, bags: 5, leaves: 8, lambda_l2: 50, learning_rate: 0.2}"
)

# run DIR NAME RANKER: prints "NDCG@10 HR@10 MAP@10 Recall@100 fit_seconds".
run() {
  "$tandem" -q evaluate-split "$1" --model two_stage --items "$ITEMS" --param "$RETRIEVERS" \
    --param windows=3 --param "ranker=$3" --out "$work/$2" >/dev/null
  python3 - "$work/$2/report.json" <<'EOF'
import json, sys
m = next(iter(json.load(open(sys.argv[1]))["models"].values()))
v = m["metrics"]
print(f'{v["NDCG@10"]:.4f} {v["HR@10"]:.4f} {v["MAP@10"]:.4f} {v["Recall@100"]:.4f} {m["fit_seconds"]:.1f}')
EOF
}

declare -A val test
for i in "${!names[@]}"; do
  val[${names[$i]}]=$(run "$work/val" "val-${names[$i]}" "${rankers[$i]}")
  echo "validation ${names[$i]}: ${val[${names[$i]}]}" >&2
done
best="" best_score=-1
for i in "${!names[@]}"; do
  n=${names[$i]}
  [ "$n" = mlp ] && continue
  s=$(cut -d' ' -f1 <<<"${val[$n]}")
  if python3 -c "import sys; sys.exit(0 if $s > $best_score else 1)"; then best=$n best_score=$s; fi
done
for i in "${!names[@]}"; do
  test[${names[$i]}]=$(run "$SPLIT" "test-${names[$i]}" "${rankers[$i]}")
  echo "test ${names[$i]}: ${test[${names[$i]}]}" >&2
done

{
  echo "# Rankers on ml-100k splits/temporal ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "\`bash bench/gbdt_ml100k.sh\` on $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores."
  echo "Pipeline: \`--model two_stage --items ml-100k.item --param '$RETRIEVERS' --param windows=3\`"
  echo "with each ranker below. Validation: each user's last 5 rows of train.tsv (bench/validation_split.py);"
  echo "the GBDT setting with the best validation NDCG@10 is chosen (**$best**); test: the split's test.tsv."
  echo "Fit seconds include the retrievers' fits (four of each: all of train and the three windows)."
  echo
  echo "| ranker | settings | validation NDCG@10 | test NDCG@10 | test HR@10 | test MAP@10 | test Recall@100 | fit (s, test) |"
  echo "|---|---|---|---|---|---|---|---|"
  for i in "${!names[@]}"; do
    n=${names[$i]}
    read -r vn _ <<<"${val[$n]}"
    read -r tn th tm tr tf <<<"${test[$n]}"
    mark=""
    [ "$n" = "$best" ] && mark=" (chosen)"
    echo "| $n$mark | \`${rankers[$i]}\` | $vn | $tn | $th | $tm | $tr | $tf |"
  done
} >"$RESULTS"
cat "$RESULTS"
