#!/usr/bin/env bash
# NeuMF side by side: RecBole 1.2.1 (PyTorch CPU, its NeuMF defaults, early stopping on
# valid.tsv) and Tandem (`--model neumf` in RecBole's default shape -- 64 GMF factors, 64-wide
# MLP embeddings, MLP 128-64, the setting chosen on valid.tsv -- best epoch by HR@10 on
# valid.tsv, patience 5) on the same ml-100k loo split, both scored on the split's own test_negatives.tsv (HR@10 / NDCG@10, 100
# negatives), 2 threads each, runs alternating. Writes bench/results/recbole_neumf.md.
# Installs RecBole into bench/.venv on first use. REPS=N repeats each side (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=bench/.venv
split=${SPLIT:-../shared/data/ml-100k/splits/loo}
reps=${REPS:-1}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import recbole' 2>/dev/null || "$venv/bin/pip" install -q recbole==1.2.1
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=bench/results/recbole_neumf.md
{
  echo "# bench/recbole_neumf.sh, $(date -u +%Y-%m-%d), $(nproc) cores, split $(basename "$split")"
  echo
  echo "| library | rep | fit s | epochs | HR@10 | NDCG@10 |"
  echo "|---|---|---|---|---|---|"
  for r in $(seq "$reps"); do
    OMP_NUM_THREADS=2 "$venv/bin/python" bench/recbole_neumf.py "$split" --threads 2 2>/dev/null | tail -1 |
      "$venv/bin/python" -c "import json,sys; j=json.load(sys.stdin); print(f\"| RecBole 1.2.1 NeuMF | $r | {j['fit_seconds']} | {j['epochs_run']} | {j['HR@10']:.4f} | {j['NDCG@10']:.4f} |\")"
    RAYON_NUM_THREADS=2 target/release/tandem -q evaluate-split "$split" --model neumf --valid-metric HR@10 \
      --param gmf_factors=64 --param embedding=64 --param 'layers=[128,64]' --param patience=5 --param epochs=40 \
      --out "$work/t" >/dev/null 2>&1
    python3 -c "
import json; m = next(iter(json.load(open('$work/t/report.json'))['models'].values()))
print(f\"| Tandem neumf | $r | {m['fit_seconds']:.1f} | {len(m['training'])} | {m['metrics']['HR@10']:.4f} | {m['metrics']['NDCG@10']:.4f} |\")"
  done
} | tee "$out"
python3 - "$out" <<'PY' | tee -a "$out"
import statistics, sys
rows = [l.split("|") for l in open(sys.argv[1]) if l.startswith("| RecBole") or l.startswith("| Tandem")]
fit = lambda lib: statistics.median(float(r[3]) for r in rows if r[1].strip().startswith(lib))
print(f"\nmedian fit: RecBole {fit('RecBole'):.1f} s, Tandem {fit('Tandem'):.1f} s -> Tandem takes "
      f"1/{fit('RecBole') / fit('Tandem'):.1f} of RecBole's time")
PY
