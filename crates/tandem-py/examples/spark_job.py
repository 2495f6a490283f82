"""The whole scale-out job (docs/scale-out.md): prepare a log in Spark SQL, train MLlib ALS on the
cluster, import it as a Tandem model directory, and write every user's top-k as Parquet.

    spark-submit examples/spark_job.py --log s3://bucket/transactions/ --user customer_id \\
        --item article_id --time t_dat --work /shared/tandem --k 12

    python examples/spark_job.py --master local[2] --log log.csv ...   (a try on one machine)
    python examples/spark_job.py --remote sc://spark-connect-host:15002 --log ...   (Spark Connect)

Reads CSV (with a header) or Parquet (by the path's extension, or a directory of Parquet parts).
"""

import argparse
import os
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", required=True, help="the raw log: a CSV file / directory, or Parquet")
    ap.add_argument("--user", default="user")
    ap.add_argument("--item", default="item")
    ap.add_argument("--time", default=None)
    ap.add_argument("--weight", default=None)
    ap.add_argument("--where", default=None, help="SQL condition rows must meet")
    ap.add_argument("--min-user-rows", type=int, default=1)
    ap.add_argument("--min-item-rows", type=int, default=1)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--k", type=int, default=12)
    ap.add_argument("--work", required=True, help="a directory driver and executors share")
    ap.add_argument("--master", default=None, help="e.g. local[2]; spark-submit sets it otherwise")
    ap.add_argument("--remote", default=None, help="a Spark Connect address (sc://host:port, or local[N])")
    args = ap.parse_args()

    from pyspark.sql import SparkSession

    import tandem.spark

    builder = SparkSession.builder.appName("tandem")
    if args.remote:
        builder = builder.remote(args.remote)
    elif args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    if not args.remote:  # Spark Connect sessions have no SparkContext; ALS then runs uncheckpointed.
        spark.sparkContext.setCheckpointDir(os.path.join(args.work, "checkpoints"))
    say = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)  # noqa: E731

    parquet = args.log.endswith(".parquet") or (os.path.isdir(args.log) and any(
        f.endswith(".parquet") for f in os.listdir(args.log)))
    raw = spark.read.parquet(args.log) if parquet else spark.read.option("header", True).option(
        "inferSchema", True).csv(args.log)
    say(f"preparing {args.log}")
    log = tandem.spark.interactions(
        raw, user=args.user, item=args.item, time=args.time, weight=args.weight, where=args.where,
        dedup="last", min_user_rows=args.min_user_rows, min_item_rows=args.min_item_rows,
        out=os.path.join(args.work, "log.parquet"),
    )
    say(f"{log.count()} interactions; training MLlib ALS ({args.factors} factors, {args.iterations} iterations)")
    model_dir = os.path.join(args.work, "als")
    tandem.spark.train_als(log, model_dir, rating="weight", factors=args.factors, iterations=args.iterations)
    say(f"model directory {model_dir} (serve it: tandem serve --model {model_dir})")
    users = log.select("user").distinct()
    out = os.path.join(args.work, "recommendations.parquet")
    tandem.spark.recommend(users, model_dir, k=args.k).write.mode("overwrite").parquet(out)
    say(f"top {args.k} for every user: {out}")
    spark.stop()


if __name__ == "__main__":
    main()
