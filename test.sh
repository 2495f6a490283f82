#!/usr/bin/env bash
# Every test of Tandem: the Rust workspace, then the Python package (built from this checkout
# into a wheel, installed into a virtual environment under target/) with its Spark tests in a
# local[2] session. README.md's test command; .ci/run runs it on a fresh machine.
#   TANDEM_SKIP_PYTHON=1  runs the Rust tests only
#   PYTEST_ARGS="-k spark" passes arguments to pytest
set -euo pipefail
cd "$(dirname "$0")"

cargo test --workspace --release

if [ -n "${TANDEM_SKIP_PYTHON:-}" ]; then
  echo "test.sh: Python and Spark tests skipped (TANDEM_SKIP_PYTHON is set)" >&2
  exit 0
fi
PYTHON=${PYTHON:-python3}
VENV=target/py-venv
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r crates/tandem-py/requirements-test.txt
# `pip install ./crates/tandem-py` is what a user runs; a wheel built once installs faster on reruns.
rm -f target/wheels/tandem-*.whl
"$VENV/bin/maturin" build --release --quiet -m crates/tandem-py/Cargo.toml -o target/wheels
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps target/wheels/tandem-*.whl
# Spark's workers run the same interpreter; the CLI the tests compare with is this build's.
export PYSPARK_PYTHON="$PWD/$VENV/bin/python" SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1}
export TANDEM_BIN="$PWD/target/release/tandem"
cd crates/tandem-py
# shellcheck disable=SC2086
"../../$VENV/bin/python" -m pytest -q ${PYTEST_ARGS:-}
