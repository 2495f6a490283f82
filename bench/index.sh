#!/usr/bin/env bash
# Candidate indexes side by side on ALS item vectors (64 factors) of synthetic power-law logs:
# recall@100 of IVF against the exact scan, build time, and single-query latency (median, p99)
# over 1,000 user vectors, one thread. Writes bench/results/index.md.
#
# Usage: bash bench/index.sh [ITEMS ...]   (default: 20000 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/index.md
{
  echo "# bash bench/index.sh, $(date -u +%Y-%m-%d), $(nproc) cores"
  echo "# synthetic logs (tandem generate: 20,000 users, 30 interactions per item), ALS 64 factors"
  echo
  RAYON_NUM_THREADS=1 cargo bench -q -p tandem-serve --bench index -- "$@"
} | tee "$out"
