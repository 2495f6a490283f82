"""Batch scoring on Spark beside one machine: users/s per core for `tandem.spark.recommend`
(local[N], mapInArrow, results written as Parquet) and for one direct `Model.recommend` call on
the same model, with an exact row-for-row comparison of the two outputs.

    python bench/spark_recommend.py --interactions 1000000 --users 10000 --items 5000
    (test.sh's virtual environment: target/py-venv/bin/python; needs target/release/tandem)

Prints one Markdown table row per size; bench/results/spark.md keeps the measured ones.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--k", type=int, default=12)
    ap.add_argument("--cores", type=int, default=2, help="local[N] and the direct call's threads")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--batch", type=int, default=10_000, help="spark.sql.execution.arrow.maxRecordsPerBatch")
    args = ap.parse_args()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    import tandem
    import tandem.spark
    from pyspark.sql import SparkSession

    tmp = Path(tempfile.mkdtemp(prefix="tandem-spark-bench-"))
    tandem_bin = os.environ.get("TANDEM_BIN", str(REPO / "target/release/tandem"))
    subprocess.run([tandem_bin, "--quiet", "generate", "--out", str(tmp / "log.csv"), "--users", str(args.users),
                    "--items", str(args.items), "--interactions", str(args.interactions)], check=True)
    log = tandem.read({"format": "delimited", "log": {"path": str(tmp / "log.csv"), "columns": {
        "user": "user", "item": "item", "time": "timestamp"}}}, progress=False)
    start = time.perf_counter()
    model = tandem.ALS(factors=args.factors, iterations=5).fit(log, progress=False)
    fit_s = time.perf_counter() - start
    model.save(tmp / "als")
    users = np.sort(model.user_ids())

    start = time.perf_counter()
    items, scores = model.recommend(users, k=args.k)
    direct_s = time.perf_counter() - start

    spark = (SparkSession.builder.master(f"local[{args.cores}]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.batch))
             .config("spark.driver.memory", "4g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.createDataFrame(pd.DataFrame({"user": users})).repartition(args.partitions).cache()
    frame.count()
    times = []
    for run in range(3):
        out = tmp / f"recs-{run}.parquet"
        start = time.perf_counter()
        tandem.spark.recommend(frame, str(tmp / "als"), k=args.k).write.parquet(str(out))
        times.append(time.perf_counter() - start)
    spark_s = float(np.median(times))
    got = pd.read_parquet(out).sort_values(["user", "rank"]).reset_index(drop=True)
    same = (len(got) == items.size and np.array_equal(got["item"].to_numpy(), items.ravel())
            and np.array_equal(got["score"].to_numpy(np.float32), scores.ravel())
            and np.array_equal(got["user"].to_numpy(), np.repeat(users, args.k)))
    spark.stop()
    n = len(users)
    print("| rows | users | items | factors | ALS fit (s) | direct: all users (s) | direct users/s/core "
          "| Spark runs (s) | Spark median (s) | Spark users/s/core | equal row for row |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.interactions:,} | {n:,} | {model.fitted.n_items:,} | {args.factors} | {fit_s:.1f} | {direct_s:.2f} "
          f"| {n / direct_s / args.cores:,.0f} | {', '.join(f'{t:.1f}' for t in times)} | {spark_s:.1f} "
          f"| {n / spark_s / args.cores:,.0f} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
