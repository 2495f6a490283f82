"""Shared fixtures: the shared data, the CLI binary the Python results are compared with, and one
local[2] Spark session for the Spark tests."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _shared() -> Path:
    p = Path(os.environ.get("TANDEM_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (p / "ml-100k").exists():
        if os.environ.get("TANDEM_SKIP_SHARED_DATA"):
            pytest.skip(f"{p} not found and TANDEM_SKIP_SHARED_DATA is set")
        pytest.fail(f"{p} not found: put the shared data beside the repository or set TANDEM_SKIP_SHARED_DATA=1")
    return p


@pytest.fixture(scope="session")
def shared() -> Path:
    return _shared()


@pytest.fixture(scope="session")
def temporal(shared) -> Path:
    return shared / "ml-100k" / "splits" / "temporal"


@pytest.fixture(scope="session")
def tandem_bin() -> Path:
    """The CLI built from this checkout (test.sh builds it before the Python tests)."""
    p = Path(os.environ.get("TANDEM_BIN", REPO / "target" / "release" / "tandem"))
    if not p.exists():
        pytest.fail(f"{p} not found: build it with `cargo build --release` (or set TANDEM_BIN)")
    return p


def run_cli(tandem_bin: Path, *args: str) -> str:
    done = subprocess.run([str(tandem_bin), "--quiet", *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"tandem {' '.join(map(str, args))} failed:\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="session")
def spark():
    """One local[2] session for every Spark test; workers run this interpreter."""
    pytest.importorskip("pyspark")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("tandem-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
