#!/usr/bin/env bash
# Training cost per example of softmax / hsoftmax / tdm on synthetic catalogues of 10k, 30k and
# 100k items (crates/tandem-neural/benches/tree_cost.rs); writes bench/results/tree_cost.md.
# Run on a quiet machine: ~5 minutes on 2 cores, most of it the full softmax at 100k items.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/tree_cost.md
{
  echo "# Tree-structured training cost (\`bash bench/tree_cost.sh\`, $(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  cargo bench -q -p tandem-neural --bench tree_cost 2>/dev/null
} | tee "$out"
