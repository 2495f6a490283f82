#!/usr/bin/env bash
# The MF course assignment: ./configs/assignment/run.sh -o OUT_DIR|FILE.csv [-bce] [-i train.csv]
# Trains BPR (default) or BCE on the course-format train.csv, prints validation mAP@50 per
# epoch, and writes OUT_DIR/submission.csv or FILE.csv (every user's 50 best unseen items).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="" loss=bpr input=train.csv
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    -bce) loss=bce; shift ;;
    -i) input=$2; shift 2 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (usage: run.sh -o OUT_DIR [-bce] [-i train.csv])" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "usage: run.sh -o OUT_DIR [-bce] [-i train.csv]" >&2; exit 2; }
cargo build --release -q --manifest-path "$root/Cargo.toml"
exec "$root/target/release/tandem" assignment --input "$input" --data "$here/data.yaml" \
  --train "$here/train_$loss.yaml" --loss "$loss" --out "$out"
