"""What bench/spark_recommend.py and bench/spark_train.py share: the size arguments, the
environment Spark's workers need, and a generated log to measure on."""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--cores", type=int, default=2, help="local[N] and Tandem's threads")
    return ap


def generated_log(args, prefix: str) -> Path:
    """A `tandem generate` log of the requested size in a new temporary folder (its path is
    returned: `log.csv` in it), with Spark's workers set to run this interpreter."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    tandem_bin = os.environ.get("TANDEM_BIN", str(REPO / "target/release/tandem"))
    subprocess.run([tandem_bin, "--quiet", "generate", "--out", str(tmp / "log.csv"), "--users", str(args.users),
                    "--items", str(args.items), "--interactions", str(args.interactions)], check=True)
    return tmp
