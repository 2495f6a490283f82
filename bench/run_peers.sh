#!/usr/bin/env bash
# Tandem beside implicit and LightFM on the canonical ml-100k splits and a synthetic power-law
# log of 1M interactions (last interaction per user held out); writes bench/results/peers.md.
# Installs the peers into bench/.venv on first use (pip; LightFM needs --no-build-isolation).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=bench/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q implicit numpy scipy setuptools wheel cython
  "$venv/bin/pip" install -q --no-build-isolation lightfm
fi
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/tandem -q generate --out "$work/synthetic.csv" --interactions 1000000 --seed 42
cat >"$work/synthetic.yaml" <<YAML
data: {format: delimited, log: {path: synthetic.csv, columns: {user: user, item: item, time: timestamp}}}
split: {kind: last_n, test: 1}
models: {pop: {kind: popularity}}
YAML
target/release/tandem -q split "$work/synthetic.yaml" --out "$work/synthetic"
out=bench/results/peers.md
{
  echo "# bench/run_peers.sh, $(date -u +%Y-%m-%d), $(nproc) cores; implicit $("$venv/bin/python" -c 'import implicit; print(implicit.__version__)'), LightFM $("$venv/bin/python" -c 'import lightfm; print(lightfm.__version__)')"
  for s in temporal ratio loo; do
    "$venv/bin/python" bench/peers.py "../shared/data/ml-100k/splits/$s" --repeat 5 | sed -n '/^split/,$p'
    echo
  done
  "$venv/bin/python" bench/peers.py "$work/synthetic" --repeat 3 --epochs 20 --lightfm-epochs 10 | sed -n '/^split/,$p' |
    sed "s|^split $work/synthetic:|split synthetic-1M (tandem generate --interactions 1000000 --seed 42, last interaction per user held out):|"
} >"$out"
cat "$out"
