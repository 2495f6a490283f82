#!/usr/bin/env bash
# Two-tower training throughput, Tandem beside the same model in PyTorch (bench/two_tower_torch.py):
# same split (ml-100k temporal train.tsv unless SPLIT is set), model, batch (1024) and threads
# (THREADS, default 2), runs interleaved, REPS of each (default 3), EPOCHS epochs per run
# (default 3); the first epoch of a run is warm-up and left out. Writes
# bench/results/two_tower_throughput.md. Installs torch into bench/.venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
split=${SPLIT:-../shared/data/ml-100k/splits/temporal} threads=${THREADS:-2} reps=${REPS:-3} epochs=${EPOCHS:-3}
venv=bench/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install -q torch numpy
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in $(seq "$reps"); do
  RAYON_NUM_THREADS=$threads target/release/tandem -q evaluate-split "$split" --model two_tower \
    --param epochs="$epochs" --valid-metric none --out "$work/t$r" >/dev/null
  python3 -c "
import json; r = json.load(open('$work/t$r/report.json'))
for e in r['models']['two_tower']['training'][1:]: print(e['examples'] / e['seconds'])" >>"$work/tandem.txt"
  "$venv/bin/python" bench/two_tower_torch.py "$split" --epochs "$epochs" --threads "$threads" |
    python3 -c "
import json, sys
for line in list(sys.stdin)[1:]: print(json.loads(line)['examples_per_s'])" >>"$work/torch.txt"
done
out=bench/results/two_tower_throughput.md
python3 - "$work" "$split" "$threads" "$reps" "$epochs" "$("$venv/bin/python" -c 'import torch; print(torch.__version__)')" >"$out" <<'PY'
import statistics, sys, datetime, os
work, split, threads, reps, epochs, torch_version = sys.argv[1:]
t = [float(x) for x in open(f"{work}/tandem.txt")]
p = [float(x) for x in open(f"{work}/torch.txt")]
mt, mp = statistics.median(t), statistics.median(p)
print(f"# Two-tower training throughput (`bash bench/two_tower_throughput.sh`, {datetime.date.today()}, {os.cpu_count()} cores)\n")
print(f"Split {split}, train.tsv; ID embedding 256, MLP 256-256-192-128, dropout 0.1, InfoNCE (temperature 0.1,")
print(f"masking, logQ), batch 1024, AdamW + warm-up; lazy row-wise Adam on embeddings (PyTorch: SparseAdam);")
print(f"{threads} threads each; {reps} interleaved runs of {epochs} epochs, first epoch of each left out.\n")
print("| implementation | median examples/s | epochs measured |")
print("|---|---:|---:|")
print(f"| Tandem | {mt:,.0f} | {len(t)} |")
print(f"| PyTorch {torch_version} CPU | {mp:,.0f} | {len(p)} |")
print(f"\nTandem / PyTorch: **{mt / mp:.2f}x**")
PY
cat "$out"
