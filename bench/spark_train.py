"""Spark-side preparation and training throughput on local[N]: `tandem.spark.interactions`
(dedup + 2-core, written as Parquet) and `tandem.spark.train_als` (MLlib implicit ALS, the
factors imported as a Tandem model directory) beside Tandem's own ALS fit on the same rows.

    python bench/spark_train.py --interactions 1000000 --users 10000 --items 5000

Prints one Markdown table row; bench/results/spark.md keeps the measured ones.
"""

import time

from spark_bench import generated_log, parser


def main():
    ap = parser(__doc__)
    ap.add_argument("--iterations", type=int, default=10)
    args = ap.parse_args()
    import tandem
    import tandem.spark
    from pyspark.sql import SparkSession

    tmp = generated_log(args, "tandem-spark-train-")
    spark = (SparkSession.builder.master(f"local[{args.cores}]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "8g")
             .config("spark.sql.shuffle.partitions", str(4 * args.cores)).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(str(tmp / "checkpoints"))
    raw = spark.read.option("header", True).schema("user long, item long, timestamp long").csv(str(tmp / "log.csv"))
    start = time.perf_counter()
    prepared = tandem.spark.interactions(raw, user="user", item="item", time="timestamp", dedup="last",
                                         min_user_rows=2, min_item_rows=2, out=str(tmp / "log.parquet"))
    rows = prepared.count()
    prep_s = time.perf_counter() - start
    start = time.perf_counter()
    tandem.spark.train_als(prepared, str(tmp / "mllib-als"), factors=args.factors, iterations=args.iterations)
    als_s = time.perf_counter() - start
    spark.stop()
    log = tandem.read({"format": "delimited", "log": {"path": str(tmp / "log.parquet"), "columns": {
        "user": "user", "item": "item", "time": "timestamp"}}}, progress=False)
    start = time.perf_counter()
    tandem.ALS(factors=args.factors, iterations=args.iterations).fit(log, progress=False)
    own_s = time.perf_counter() - start
    per_core = args.interactions / prep_s / args.cores
    print("| rows in | rows after dedup + 2-core | interactions() (s) | rows/s/core | MLlib train_als (s) "
          "| row-iterations/s/core | Tandem ALS fit (s) | MLlib / Tandem |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.interactions:,} | {rows:,} | {prep_s:.1f} | {per_core:,.0f} | {als_s:.1f} "
          f"| {rows * args.iterations / als_s / args.cores:,.0f} | {own_s:.1f} | {als_s / own_s:.0f}x |")


if __name__ == "__main__":
    main()
