#!/usr/bin/env bash
# API conformance: schemathesis (PyPI) generates requests from /openapi.json of a live
# `tandem serve` (an ALS model trained on ml-100k temporal, with an interaction log and an
# admin token) and checks every response: no 5xx, status codes and bodies as described.
# Writes bench/results/schemathesis.md.
#
# usage: bash bench/schemathesis.sh [EXAMPLES]   (default 200 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${1:-200}
DATA=${TANDEM_SHARED_DATA:-../shared/data}/ml-100k
CACHE=${TANDEM_BENCH_CACHE:-$HOME/.cache/tandem-bench}
RESULTS=bench/results/schemathesis.md
VENV=$CACHE/venv-schemathesis
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q schemathesis
fi
cargo build --release -q
tandem=$PWD/target/release/tandem
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
$tandem -q evaluate-split "$DATA/splits/temporal" --items "$DATA/ml-100k.item" --model als --save "$work/models/als" \
  --out "$work/o" >/dev/null
port=$((20000 + RANDOM % 20000))
$tandem serve --model "$work/models/als" --addr "127.0.0.1:$port" --wal "$work/live.wal" --admin-token soak \
  2>"$work/server.log" &
server=$!
for _ in $(seq 200); do curl -sf "127.0.0.1:$port/ready" >/dev/null && break; sleep 0.05; done
status=0
"$VENV/bin/schemathesis" --config-file bench/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" --checks all --max-examples "$EXAMPLES" \
  --header "Authorization: Bearer soak" --seed 7 >"$work/st.log" 2>&1 || status=$?
version=$("$VENV/bin/schemathesis" --version | awk '{print $NF}')
summary=$(grep -E "passed|failed|errored|Test cases|operations" "$work/st.log" | tail -8 || true)
{
  echo "# API conformance: schemathesis $version ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "\`bash bench/schemathesis.sh $EXAMPLES\`: \`schemathesis run /openapi.json --checks all --max-examples $EXAMPLES\`"
  echo "(bench/schemathesis.toml: 413 counts as rejecting invalid data)"
  echo "against \`tandem serve\` (ALS, ml-100k temporal, \`--wal\`, \`--admin-token\`; the token sent). Exit status $status."
  echo
  echo '```'
  echo "$summary"
  echo '```'
  if [ "$status" != 0 ]; then
    echo
    echo "Failures:"
    echo '```'
    grep -A12 -E "^(_+ |FAILURES|[0-9]+\. )" "$work/st.log" | head -120
    echo '```'
  fi
} >"$RESULTS"
cat "$RESULTS"
tail -40 "$work/st.log" >&2
exit "$status"
