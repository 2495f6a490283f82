#!/usr/bin/env bash
# Interactions acknowledged per second over loopback: `tandem serve --wal` (ALS on ml-100k
# temporal) under wrk posting one interaction per request (POST /v1/interactions, random known
# user and item) from CONNECTIONS connections for SECONDS; every 201 follows the fsync of its
# record (group commit shares the fsyncs). Then the server is stopped with SIGKILL and the log
# replayed: it must hold at least as many records as wrk counted 201s. Appends a row to
# bench/results/interactions.md.
#
# usage: bash bench/interactions.sh [SECONDS] [CONNECTIONS]   (default 20 s, 128)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20} CONNS=${2:-128}
DATA=${TANDEM_SHARED_DATA:-../shared/data}/ml-100k
RESULTS=bench/results/interactions.md
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q
tandem=$PWD/target/release/tandem
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill -9 "$server" 2>/dev/null; rm -rf "$work"' EXIT
$tandem -q evaluate-split "$DATA/splits/temporal" --model als --save "$work/als" --out "$work/o" >/dev/null
port=$((20000 + RANDOM % 20000))
$tandem serve --model "$work/als" --addr "127.0.0.1:$port" --wal "$work/live.wal" 2>"$work/server.log" &
server=$!
for _ in $(seq 200); do curl -sf "127.0.0.1:$port/ready" >/dev/null && break; sleep 0.05; done
cat >"$work/post.lua" <<'LUA'
math.randomseed(3)
local users, items = {}, {}
for l in io.lines(os.getenv("WORK") .. "/als/users.txt") do users[#users + 1] = l end
for l in io.lines(os.getenv("WORK") .. "/als/items.txt") do items[#items + 1] = l end
request = function()
  local body = '{"user": "' .. users[math.random(#users)] .. '", "item": "' .. items[math.random(#items)] .. '"}'
  return wrk.format("POST", "/v1/interactions", { ["Content-Type"] = "application/json" }, body)
end
LUA
out=$(WORK=$work wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port")
echo "$out" >&2
kill -9 "$server"
wait "$server" 2>/dev/null || true
server=""
rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
total=$(awk '/requests in/ {print $1}' <<<"$out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
acked=$((total - ${non2xx:-0}))
logged=$(grep -c . "$work/live.wal" || true)
[ "$logged" -ge "$acked" ] && verdict="all there" || verdict="MISSING $((acked - logged))"
if [ ! -f "$RESULTS" ]; then
  cat >"$RESULTS" <<'MD'
# Interactions acknowledged per second (group commit)

`bash bench/interactions.sh [SECONDS] [CONNECTIONS]`: wrk (2 threads) posting one interaction per
request to `tandem serve --wal` on loopback, the same 2 cores running both; every 201 after the
fsync of its record. Then `kill -9` and a look at the log.

| date | seconds | connections | acknowledged/s | p50 | p99 | non-2xx | acknowledged | records in the log after kill -9 |
|---|---|---|---|---|---|---|---|---|
MD
fi
echo "| $(date -u +%Y-%m-%dT%H:%MZ) | $SECS | $CONNS | $rps | $p50 | $p99 | ${non2xx:-0} | $acked | $logged ($verdict) |" >>"$RESULTS"
tail -3 "$RESULTS"
