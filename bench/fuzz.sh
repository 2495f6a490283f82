#!/usr/bin/env bash
# Fuzzes every reader with cargo fuzz (libFuzzer, nightly toolchain): delimited logs with
# column mappings, MovieLens layouts, H&M, the course format, split directories, YAML configs,
# model directories and the interaction log (fuzz/fuzz_targets/). Each target starts from seeds
# made of the repository's own fixtures and runs SECONDS; crashes land in
# fuzz/artifacts/TARGET/. Writes bench/results/fuzz.md (executions per target, crashes).
#
# usage: bash bench/fuzz.sh [SECONDS]   (default 60 per target)
# Needs: rustup's nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-60}
DATA=${TANDEM_SHARED_DATA:-$ROOT/../shared/data}
RESULTS=$ROOT/bench/results/fuzz.md
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal

SEP=$'\n--8<--\n'
seed() { # TARGET NAME FILE...: one seed, the files joined by the separator
  local target=$1 name=$2
  shift 2
  mkdir -p "fuzz/corpus/$target"
  local out="fuzz/corpus/$target/$name" first=1
  : >"$out"
  for f in "$@"; do
    [ $first = 1 ] || printf '%s' "$SEP" >>"$out"
    first=0
    head -c 20000 "$f" >>"$out"
  done
}
prefixed() { # TARGET NAME BYTE FILE: one byte, then the file
  mkdir -p "fuzz/corpus/$1"
  { printf "\\x$3"; head -c 20000 "$4"; } >"fuzz/corpus/$1/$2"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Seeds: the repository's fixtures and the bundled data's first rows.
{ gzip -dc data/online-retail/online_retail.csv.gz 2>/dev/null || true; } | head -200 >"$work/retail.csv"
printf 'user,item,time,weight\nu1,i1,1,1\nu2,i2,2,3\n' >"$work/log.csv"
printf 'u1\ti1\t1\nu2\ti2\t2\n' >"$work/log.tsv"
prefixed delimited header 00 "$work/log.csv"
prefixed delimited tsv 01 "$work/log.tsv"
prefixed delimited retail 06 "$work/retail.csv"
if [ -d "$DATA/ml-100k" ]; then
  head -50 "$DATA/ml-100k/ml-100k.item" >"$work/x.item"
  head -300 "$DATA/ml-100k/ml-100k.inter" >"$work/x.inter"
  { printf '\x03'; cat "$work/x.inter"; printf '%s' "$SEP"; cat "$work/x.item"; } >"$work/recbole"
  mkdir -p fuzz/corpus/movielens && cp "$work/recbole" fuzz/corpus/movielens/recbole
  head -200 "$DATA/ml-100k/splits/temporal/train.tsv" >"$work/train.tsv"
  head -100 "$DATA/ml-100k/splits/temporal/test.tsv" >"$work/test.tsv"
  seed split_dir temporal "$work/train.tsv" /dev/null "$work/test.tsv"
fi
printf '196\t242\t3\t881250949\n186\t302\t3\t891717742\n' >"$work/udata"
printf '1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n' >"$work/uitem"
{ printf '\x00'; cat "$work/udata"; printf '%s' "$SEP"; cat "$work/uitem"; } >"$work/ml100k"
mkdir -p fuzz/corpus/movielens && cp "$work/ml100k" fuzz/corpus/movielens/ml100k
printf 't_dat,customer_id,article_id,price,sales_channel_id\n2020-09-01,c1,0108775015,0.01,2\n2020-09-02,c2,0108775044,0.02,1\n' >"$work/tx.csv"
printf 'article_id,product_group_name,product_type_name\n0108775015,Garment Upper body,Vest top\n' >"$work/articles.csv"
printf 'customer_id,age\nc1,24\nc2,51\n' >"$work/customers.csv"
seed hm small "$work/tx.csv" "$work/articles.csv" "$work/customers.csv"
printf 'UserId,ItemId\n1,10 11 12\n2,11 13\n' >"$work/course.csv"
seed course small "$work/course.csv"
mkdir -p fuzz/corpus/config
for c in configs/*.yaml configs/assignment/*.yaml; do cp "$c" "fuzz/corpus/config/$(basename "$c")"; done
for m in crates/tandem-rank/tests/fixtures/format-1/models/*; do
  files=()
  for f in manifest.json tensors.safetensors history.safetensors users.txt items.txt item_info.json; do
    [ -f "$m/$f" ] && files+=("$m/$f") || files+=(/dev/null)
  done
  seed model_dir "$(basename "$m")" "${files[@]}"
done
printf '{"user":"a","item":"x","weight":1,"time":7}\n' >"$work/legacy.wal"
prefixed wal legacy 00 "$work/legacy.wal"
cargo build --release -q -p tandem-serve --example write_wal 2>/dev/null &&
  target/release/examples/write_wal "$work/new.wal" && prefixed wal records 00 "$work/new.wal" || true

TARGETS=(delimited movielens hm course split_dir config model_dir wal)
ROWS=""
for t in "${TARGETS[@]}"; do
  echo "== fuzzing $t for ${SECS}s" >&2
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="$work/$t.log"
  status=0
  (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$SECS" -rss_limit_mb=4096 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1) >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}' | tail -1)
  [ -n "$execs" ] || execs=$(grep -o 'Done [0-9]* runs' "$log" | awk '{print $2}' | tail -1)
  crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
  [ "$status" = 0 ] || { echo "$t exited $status; its log:" >&2; tail -30 "$log" >&2; }
  ROWS="$ROWS\n| $t | ${execs:-?} | $crashes | $status |"
done

cat >"$RESULTS" <<MD
# Fuzzing (cargo fuzz, libFuzzer) — $(date -u +%Y-%m-%dT%H:%MZ)

\`bash bench/fuzz.sh $SECS\` on $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'): each target ${SECS} s from
seeds built from the repository's fixtures (fuzz/corpus/, not committed); a crash would be a file
in fuzz/artifacts/TARGET/ and a non-zero exit.

| target | executions | crash files | exit |
|---|---|---|---|
$(printf "%b" "$ROWS" | sed '/^$/d')
MD
cat "$RESULTS"
