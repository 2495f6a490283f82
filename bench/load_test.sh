#!/usr/bin/env bash
# Load test of `tandem serve` over loopback with a real HTTP load generator (wrk; oha is used
# when wrk is missing). Serves an ALS model and a two-stage pipeline (ALS + item kNN -> late
# fusion) trained on ml-100k temporal, and drives GET /v1/recommend for random known users and
# POST /v1/recommend for random anonymous sessions. Writes bench/results/load_test.md.
#
# Usage: bash bench/load_test.sh [SECONDS] [CONNECTIONS]   (default 20 s, 32 connections)
# Needs ../shared/data (MovieLens 100K) and wrk (apt-get install wrk) or oha (cargo install oha).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20} conns=${2:-32}
data=../shared/data/ml-100k
if ! command -v wrk >/dev/null && ! command -v oha >/dev/null; then
  echo "needs wrk (apt-get install wrk) or oha (cargo install oha)" >&2
  exit 1
fi
cargo build --release -q
tandem=target/release/tandem
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
$tandem -q evaluate-split "$data/splits/temporal" --items "$data/ml-100k.item" --model als --save "$work/als" --out "$work/o1" >/dev/null
$tandem -q evaluate-split "$data/splits/temporal" --items "$data/ml-100k.item" --model two_stage \
  --param 'retrievers=[{kind: als}, {kind: item_knn}]' --save "$work/two_stage" --out "$work/o2" >/dev/null

cat >"$work/users.lua" <<'LUA'
math.randomseed(7)
request = function()
  return wrk.format("GET", "/v1/recommend?user=" .. math.random(1, 943) .. "&k=10")
end
LUA
cat >"$work/session.lua" <<'LUA'
math.randomseed(11)
request = function()
  local items = {}
  for n = 1, 5 do items[n] = '"' .. math.random(1, 1682) .. '"' end
  local body = '{"items": [' .. table.concat(items, ",") .. '], "k": 10}'
  return wrk.format("POST", "/v1/recommend", { ["Content-Type"] = "application/json" }, body)
end
LUA

run() { # NAME MODEL_DIR INDEX SCRIPT
  local port=$((20000 + RANDOM % 20000))
  $tandem serve --model "$2" --addr "127.0.0.1:$port" --index "$3" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
  local out
  if command -v wrk >/dev/null; then
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/$4.lua" "http://127.0.0.1:$port")
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "| $1 | $3 | $4 | $rps | $p50 | $p99 | ${errors:-0} |"
  else
    echo "| $1 | $3 | $4 | (oha) see below | | | |"
    oha -z "${secs}s" -c "$conns" --no-tui "http://127.0.0.1:$port/v1/recommend?user=1&k=10" >&2
  fi
  kill "${pids[-1]}"
  wait "${pids[-1]}" 2>/dev/null || true
}

{
  echo "# bash bench/load_test.sh $secs $conns, $(date -u +%Y-%m-%d), $(nproc) cores; wrk -t2 -c$conns -d${secs}s, loopback"
  echo "# the server and the load generator share the machine's cores"
  echo
  echo "| model | index | requests | requests/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|---|"
  run "ALS" "$work/als" exact users
  run "ALS" "$work/als" ivf users
  run "ALS" "$work/als" exact session
  run "two-stage (ALS + item kNN -> late fusion)" "$work/two_stage" exact users
  run "two-stage (ALS + item kNN -> late fusion)" "$work/two_stage" ivf users
  run "two-stage (ALS + item kNN -> late fusion)" "$work/two_stage" exact session
} | tee bench/results/load_test.md
