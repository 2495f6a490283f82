#!/usr/bin/env bash
# Soak test of `tandem serve` on loopback: an ALS model trained on ml-100k temporal served with
# an interaction log; for MINUTES minutes, wrk drives GET /v1/recommend, a writer posts
# interactions from 8 concurrent clients (recording each acknowledged one), a reload is asked
# every second, and once a minute the server is killed with SIGKILL and restarted. Records
# requests served, failed requests outside the kill windows (from the kill until the restarted
# server answers /ready), acknowledged writes missing from the log afterwards, and the RSS
# over time (sampled every 2 s). Writes bench/results/soak.md.
#
# usage: bash bench/soak.sh [MINUTES]   (default 10)
# Needs ../shared/data (MovieLens 100K), wrk (apt-get install wrk) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-10}
DATA=${TANDEM_SHARED_DATA:-../shared/data}/ml-100k
RESULTS=bench/results/soak.md
KEEP=50 # live events kept per user (--max-items)
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q
tandem=$PWD/target/release/tandem
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill -9 "$server" 2>/dev/null; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
$tandem -q evaluate-split "$DATA/splits/temporal" --model als --save "$work/models/als" --out "$work/o" >/dev/null
port=$((20000 + RANDOM % 20000))
url=http://127.0.0.1:$port

start() {
  $tandem serve --model "$work/models/als" --addr "127.0.0.1:$port" --wal "$work/live.wal" \
    --wal-snapshot-every 200000 --max-items "$KEEP" 2>>"$work/server.log" &
  server=$!
  for _ in $(seq 600); do curl -sf "$url/ready" >/dev/null && return; sleep 0.05; done
  echo "server did not become ready" >&2
  exit 1
}
now() { date +%s.%N; }

cat >"$work/users.lua" <<'LUA'
math.randomseed(7)
request = function()
  return wrk.format("GET", "/v1/recommend?user=" .. math.random(1, 943) .. "&k=10")
end
LUA

# The writer: 8 threads POST one interaction each time, thread t for its own 250 users in turn
# (2,000 users: with --max-items 50 the live histories fill within a minute, after which memory
# must stay flat); an acknowledged (201) one is recorded, a failure with its time. It stops
# when $work/stop exists.
cat >"$work/writer.py" <<'PY'
import json, os, random, sys, threading, time, urllib.request
url, work = sys.argv[1], sys.argv[2]
items = [l.strip() for l in open(os.path.join(work, "models/als/items.txt")) if l.strip()]
lock = threading.Lock()
acked = open(os.path.join(work, "acked.tsv"), "w")
failed = open(os.path.join(work, "write_failures.tsv"), "w")
def run(t):
    rnd = random.Random(t)
    n = 0
    while not os.path.exists(os.path.join(work, "stop")):
        user, item = f"soak-{t}-{n % 250}", rnd.choice(items)
        body = json.dumps({"user": user, "item": item}).encode()
        req = urllib.request.Request(url + "/v1/interactions", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                ok = r.status == 201
        except Exception:
            ok = False
        with lock:
            if ok:
                acked.write(f"{user}\t{item}\n")
            else:
                failed.write(f"{time.time()}\n")
        n += 1
        if not ok:
            time.sleep(0.05)
threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
acked.close(); failed.close()
PY

: >"$work/windows.tsv"
: >"$work/rss.tsv"
: >"$work/reloads.tsv"
start
python3 "$work/writer.py" "$url" "$work" &
writer=$!
(while [ ! -e "$work/stop" ]; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/admin/reload" || echo 000)
  echo "$(now)	$code" >>"$work/reloads.tsv"
  sleep 1
done) &
reloader=$!
began=$(now)
wrk_total=0 wrk_errors=0
for minute in $(seq "$MINUTES"); do
  echo "== minute $minute/$MINUTES" >&2
  (for _ in $(seq 27); do
    [ -e "/proc/$server" ] && echo "$(now)	$server	$(awk '/VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null)" >>"$work/rss.tsv"
    sleep 2
  done) &
  out=$(wrk -t2 -c16 -d55s -s "$work/users.lua" "$url" 2>&1 || true)
  wait $!
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  sockerr=$(awk -F'[ ,]+' '/Socket errors/ {print $4 + $6 + $8 + $10}' <<<"$out")
  wrk_total=$((wrk_total + ${reqs:-0}))
  wrk_errors=$((wrk_errors + ${non2xx:-0} + ${sockerr:-0}))
  killed=$(now)
  kill -9 "$server"
  wait "$server" 2>/dev/null || true
  start
  echo "$killed	$(now)" >>"$work/windows.tsv"
done
touch "$work/stop"
wait "$writer" "$reloader" 2>/dev/null || true
ended=$(now)
# The server holds every acknowledged write after one more kill: the restarted one replays the
# log; each acknowledged (user, item) must be in the snapshot or the log files.
kill -9 "$server"; wait "$server" 2>/dev/null || true
python3 - "$work" "$began" "$ended" "$MINUTES" "$wrk_total" "$wrk_errors" "$KEEP" >"$RESULTS.tmp" <<'PY'
import collections, glob, json, os, statistics, sys
work, began, ended, minutes, wrk_total, wrk_errors = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
keep = int(sys.argv[7])
windows = [tuple(map(float, l.split())) for l in open(os.path.join(work, "windows.tsv"))]
def in_window(t, slack=1.0):
    return any(k - slack <= t <= r + slack for k, r in windows)
logged = collections.Counter()
for f in glob.glob(os.path.join(work, "live.wal*")):
    for line in open(f, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("tandem-wal-snapshot"):
            continue
        parts = line.split(" ", 2)
        text = line if line.startswith("{") else (parts[2] if len(parts) == 3 else "")
        try:
            e = json.loads(text)
            logged[(e["user"], e["item"])] += 1
        except Exception:
            pass
acked = [tuple(l.rstrip("\n").split("\t")) for l in open(os.path.join(work, "acked.tsv"))]
# The log keeps each user's latest `keep` events once folded into the snapshot (what the server
# serves): every acknowledged event among a user's latest `keep` must be there.
per_user = collections.defaultdict(list)
for user, item in acked:
    per_user[user].append(item)
must = collections.Counter((u, i) for u, items in per_user.items() for i in items[-keep:])
lost = [k for k, n in must.items() if logged[k] < n]
write_failures = [float(l) for l in open(os.path.join(work, "write_failures.tsv"))]
outside = [t for t in write_failures if not in_window(t)]
reloads = [l.split("\t") for l in open(os.path.join(work, "reloads.tsv"))]
reload_ok = sum(1 for _, c in reloads if c.strip() == "200")
reload_bad_outside = sum(1 for t, c in reloads if c.strip() != "200" and not in_window(float(t)))
rss = [l.split("\t") for l in open(os.path.join(work, "rss.tsv")) if l.count("\t") == 2 and l.split("\t")[2].strip()]
by_pid = {}
for t, pid, kb in rss:
    by_pid.setdefault(pid, []).append(int(kb))
# After the first two minutes (the live histories fill up): each server after its first 10 s,
# and after its first 30 s (a restarted server's caches, pools and histories warm up).
lifetimes = list(by_pid.values())
later = lifetimes[2:] if len(lifetimes) > 2 else lifetimes
def spread(skip):
    xs = sorted(x for v in later for x in v[skip:])
    if not xs:
        return "-"
    med = statistics.median(xs)
    inside = sum(1 for x in xs if abs(x - med) <= 0.1 * med)
    return (f"median {med / 1024:.0f} MB, min {xs[0] / 1024:.0f}, max {xs[-1] / 1024:.0f}; "
            f"{inside} of {len(xs)} samples within ±10% of the median")
# The drift over the run: each later lifetime's mean after its first 30 s.
means = [statistics.mean(v[15:]) for v in later if len(v) > 15]
mmed = statistics.median(means) if means else 0
drift = f"{'; '.join(f'{m / 1024:.1f}' for m in means)} (largest {max(abs(m - mmed) for m in means) / mmed * 100:.1f}% from their median)" if means else "-"
per_life = "; ".join(f"{min(v) / 1024:.0f}-{max(v) / 1024:.0f}" for v in lifetimes)
print(f"""# Soak test — {minutes} minutes

`bash bench/soak.sh {minutes}`: `tandem serve` (ALS on ml-100k temporal, `--wal`, snapshot every
200,000 records) under wrk (2 threads, 16 connections, GET /v1/recommend for random users),
8 concurrent writers posting one interaction per request for 2,000 users (`--max-items 50`: each
user's latest 50 kept), `POST /admin/reload` every second, and a
`kill -9` + restart every minute ({len(windows)} kills). A kill window runs from the kill until the
restarted server answers /ready (plus 1 s either side).

| figure | value |
|---|---|
| wall | {ended - began:.0f} s |
| recommendations served (wrk) | {wrk_total:,} |
| failed recommendations (wrk runs stop before each kill) | {wrk_errors} |
| interactions acknowledged (201) | {len(acked):,} |
| failed interaction posts outside kill windows | {len(outside)} (inside: {len(write_failures) - len(outside)}) |
| acknowledged interactions missing from the log (of each user's latest {keep}) | {len(lost)} of {sum(must.values()):,} |
| reloads answered 200 | {reload_ok:,} of {len(reloads):,} (failed outside kill windows: {reload_bad_outside}) |
| kill windows (kill to ready) | {', '.join(f'{r - k:.2f} s' for k, r in windows[:12])}{' ...' if len(windows) > 12 else ''} |
| RSS after the first two minutes, each server after its first 10 s | {spread(5)} |
| ... after its first 30 s | {spread(15)} |
| RSS mean of each server lifetime after its first 30 s, from minute 3 (MB) | {drift} |
| RSS range per server lifetime (MB) | {per_life} |
""")
PY
mv "$RESULTS.tmp" "$RESULTS"
# The RSS over time (unix seconds, server pid, kB), for plotting.
cp "$work/rss.tsv" bench/results/soak-rss.tsv
cat "$RESULTS"
