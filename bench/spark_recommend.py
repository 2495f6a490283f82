"""Batch scoring on Spark beside one machine: users/s per core for `tandem.spark.recommend`
(local[N], mapInArrow, results written as Parquet) and for one direct `Model.recommend` call on
the same model, with an exact row-for-row comparison of the two outputs.

    python bench/spark_recommend.py --interactions 1000000 --users 10000 --items 5000
    (test.sh's virtual environment: target/py-venv/bin/python; needs target/release/tandem)

Prints one Markdown table row per size; bench/results/spark.md keeps the measured ones.
"""

import time

import numpy as np
import pandas as pd
from spark_bench import generated_log, parser


def main():
    ap = parser(__doc__)
    ap.add_argument("--k", type=int, default=12)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--batch", type=int, default=10_000, help="spark.sql.execution.arrow.maxRecordsPerBatch")
    args = ap.parse_args()
    import tandem
    import tandem.spark
    from pyspark.sql import SparkSession

    tmp = generated_log(args, "tandem-spark-bench-")
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
