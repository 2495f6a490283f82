#!/usr/bin/env bash
# Issue 17's table: for each split and kind, the untuned defaults against `tandem tune --budget B`
# on test, with the validation figures and the search's wall time.
#
# Usage: bench/tune_table.sh [KIND...]   (default: als ease item_knn mf)
#   SPLITS="temporal ratio loo" BUDGET=40 FOLDS=3 RATIO_SHARE=0.1 override the splits under
#   ../shared/data/ml-100k/splits, the budget, the validation folds and ratio's holdout share.
#   ratio validates on `--holdout share:RATIO_SHARE` (its test part is 10% of each user's
#   positives), FOLDS carvings drawn with successive seeds; temporal on the last 5 training rows
#   per user, FOLDS rolling back; loo on valid.tsv (one fold; the tuned refit then fits train +
#   valid). Test metric: NDCG@10, HR@10 for loo.
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(als ease item_knn mf)
splits=${SPLITS:-temporal ratio loo}
budget=${BUDGET:-40}
folds=${FOLDS:-3}
share=${RATIO_SHARE:-0.1}
cargo build --release -q
tandem=target/release/tandem
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
metric_of() { python3 -c "import json; r=json.load(open('$1/report.json')); print('%.4f' % next(iter(r['models'].values()))['metrics']['$2'])"; }
echo "| split | kind | search wall | validation: defaults → best | test default | test tuned |"
echo "|---|---|---|---|---|---|"
for split in $splits; do
  dir=../shared/data/ml-100k/splits/$split
  metric=NDCG@10 hold=(--folds "$folds")
  [ "$split" = loo ] && metric=HR@10 hold=()
  [ "$split" = ratio ] && hold=(--holdout "share:$share" --folds "$folds")
  for kind in "${kinds[@]}"; do
    "$tandem" -q evaluate-split "$dir" --model "$kind" --out "$work/default" >/dev/null 2>&1
    start=$(date +%s.%N)
    "$tandem" tune "$dir" --model "$kind" "${hold[@]}" --budget "$budget" --out "$work/tuned" >/dev/null 2>"$work/tune.log"
    wall=$(python3 -c "print('%.1f s' % ($(date +%s.%N) - $start))")
    valid=$(python3 -c "
import json
t=[json.loads(l) for l in open('$work/tuned/trials.jsonl') if l.strip()]
v=[x['value'] for x in t if x.get('value') is not None]
print('%.4f → %.4f' % (t[0]['value'] or float('nan'), max(v)))")
    echo "| $split | $kind | $wall | $valid | $metric $(metric_of "$work/default" "$metric") | $(metric_of "$work/tuned" "$metric") |"
    rm -rf "$work/tuned" "$work/default"
  done
done
