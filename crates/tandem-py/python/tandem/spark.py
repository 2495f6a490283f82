"""Tandem on Apache Spark, for logs one machine does not hold.

Three steps, each usable alone (docs/scale-out.md has the whole job and its sizing):

- :func:`interactions` prepares a log in Spark SQL (filters, dedup, k-core) and writes it as
  Parquet that ``tandem run`` (``format: delimited``, ``log.path:`` the directory) and
  :func:`tandem.read` read;
- :func:`train_als` trains Spark MLlib's ALS on the cluster and imports its factors as a
  Tandem ALS model directory, which ``tandem serve``, ``tandem evaluate-split --load``,
  :func:`tandem.load` and :func:`recommend` use like any other;
- :func:`recommend` scores every user of a DataFrame with a Tandem model directory by
  ``mapInArrow`` over user partitions, the model loaded once per Python worker.

Executors need the ``tandem`` wheel installed (``pip install tandem-*.whl`` on each node, or
``--archives`` with a packed environment) and the model directory on a path they all read
(shared storage), or ``ship=True`` to send it with the job.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Optional

import numpy as np

__all__ = ["interactions", "recommend", "train_als"]

# Per Python worker process: model directory -> loaded model. Spark reuses a worker for many
# tasks (spark.python.worker.reuse, on by default), so each worker loads a model once.
_MODELS: Dict[str, Any] = {}


def _worker_model(path: str, threads: int):
    model = _MODELS.get(path)
    if model is None:
        # The core's thread pool starts on first use: size it to the cores this task was given,
        # so the executor's tasks do not oversubscribe its cores.
        os.environ.setdefault("RAYON_NUM_THREADS", str(max(1, threads)))
        from . import load

        model = _MODELS[path] = load(path)
    return model


def _item_ids_are_ints(model_dir: str) -> bool:
    """Whether the model's raw item ids come back as integers (as :class:`tandem.Model` does)."""
    from . import _id_array

    with open(os.path.join(model_dir, "items.txt"), encoding="utf-8") as f:
        ids = [line.rstrip("\n") for line in f]
    return _id_array(ids).dtype == np.int64


def recommend(
    users: Any,
    model_dir: str,
    k: int = 10,
    *,
    user: str = "user",
    exclude_seen: bool = True,
    unknown: str = "popular",
    ship: bool = False,
):
    """The ``k`` best items of each row's user of ``users`` (a DataFrame with a ``user``
    column) by the Tandem model directory ``model_dir``: a DataFrame ``user, item, rank,
    score`` (rank 1 is best), the user column keeping its type, items as the model's raw ids
    (long where every id is an integer, else string).

    Scoring runs in ``mapInArrow`` over the DataFrame's partitions: one Arrow batch of users
    (``spark.sql.execution.arrow.maxRecordsPerBatch``) is one batch call into the core, which
    uses ``spark.task.cpus`` threads. Users the model never saw get the most popular items
    (``unknown="popular"``) or fail the job (``"error"``). With ``ship=True`` the directory is
    sent to the executors with the job (``SparkContext.addFile``) instead of being read from
    a path they share. Rows come out exactly as :meth:`tandem.Model.recommend` gives them on
    one machine.
    """
    import pyarrow as pa
    from pyspark import SparkFiles, TaskContext
    from pyspark.sql import types as T

    if unknown not in ("error", "popular"):
        raise ValueError(f"unknown={unknown!r}: expected 'error' or 'popular'")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    model_dir = os.path.abspath(os.fspath(model_dir))
    if not os.path.isfile(os.path.join(model_dir, "manifest.json")):
        raise FileNotFoundError(f"{model_dir} is not a Tandem model directory (no manifest.json)")
    if user not in users.columns:
        raise KeyError(f"user column {user!r} is not in the DataFrame (columns: {users.columns})")
    user_field = users.schema[user]
    int_users = isinstance(user_field.dataType, (T.IntegerType, T.LongType, T.ShortType, T.ByteType))
    int_items = _item_ids_are_ints(model_dir)
    if ship:
        if _is_connect(users.sparkSession):
            raise ValueError(
                "ship=True sends the model with SparkContext.addFile, which a Spark Connect session "
                "does not have: put the model directory on storage every executor reads instead"
            )
        users.sparkSession.sparkContext.addFile(model_dir, recursive=True)
    name = os.path.basename(model_dir)
    schema = T.StructType(
        [
            T.StructField(user, user_field.dataType, False),
            T.StructField("item", T.LongType() if int_items else T.StringType(), False),
            T.StructField("rank", T.IntegerType(), False),
            T.StructField("score", T.FloatType(), False),
        ]
    )
    arrow_schema = pa.schema(
        [
            pa.field(user, pa.from_numpy_dtype(np.int64) if int_users else pa.string(), False),
            pa.field("item", pa.int64() if int_items else pa.string(), False),
            pa.field("rank", pa.int32(), False),
            pa.field("score", pa.float32(), False),
        ]
    )
    mode, seen = unknown, exclude_seen

    def score(batches):
        ctx = TaskContext.get()
        threads = ctx.cpus() if ctx is not None else 1
        model = _worker_model(SparkFiles.get(name) if ship else model_dir, threads)
        for batch in batches:
            col = batch.column(0)
            if col.null_count:
                raise ValueError(f"user column {user!r} has null ids")
            ids = col.to_numpy(zero_copy_only=False)
            if int_users:
                ids = ids.astype(np.int64, copy=False)
            else:
                ids = np.array([str(v) for v in ids], dtype=object)
            items, scores = model.recommend(ids, k, exclude_seen=seen, unknown=mode)
            keep = ~np.isnan(scores)
            rows, ranks = np.nonzero(keep)
            out_users = ids[rows]
            out = pa.record_batch(
                [
                    pa.array(out_users, type=arrow_schema.field(0).type),
                    pa.array(items[keep], type=arrow_schema.field(1).type),
                    pa.array((ranks + 1).astype(np.int32)),
                    pa.array(scores[keep].astype(np.float32)),
                ],
                schema=arrow_schema,
            )
            yield out

    frame = users.select(user)
    if int_users and not isinstance(user_field.dataType, T.LongType):
        from pyspark.sql import functions as F

        frame = frame.select(F.col(user).cast("long").alias(user))
    result = frame.mapInArrow(score, schema)
    if int_users and not isinstance(user_field.dataType, T.LongType):
        from pyspark.sql import functions as F

        result = result.withColumn(user, F.col(user).cast(user_field.dataType))
    return result


def interactions(
    df: Any,
    *,
    user: str = "user",
    item: str = "item",
    time: Optional[str] = None,
    weight: Optional[str] = None,
    where: Optional[str] = None,
    dedup: Optional[str] = None,
    min_user_rows: int = 1,
    min_item_rows: int = 1,
    max_rounds: int = 20,
    out: Optional[str] = None,
    partitions: Optional[int] = None,
):
    """A log prepared in Spark SQL: columns ``user, item, timestamp, weight`` (raw ids as
    strings, unix seconds, float weights), written as Parquet to ``out`` when given (a
    directory ``tandem run`` reads with ``format: delimited``, ``log.path: OUT``, columns
    ``user``, ``item``, ``timestamp``, ``weight``) and returned.

    - ``where``: a SQL condition rows must meet, on the input's columns (``"qty > 0 AND
      country = 'UK'"``);
    - ``dedup``: ``None`` keeps every row, ``"first"`` / ``"last"`` keep one row per (user,
      item) — its earliest / latest — with the pair's summed weight;
    - ``min_user_rows`` / ``min_item_rows``: the k-core, repeated until every user and item
      has that many rows (at most ``max_rounds`` rounds; the log says how many it took).

    Times may be numbers (unix seconds), timestamps or dates; without ``time`` every row gets
    0, so a reader keeps the file order. Without ``weight`` every row weighs 1.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    for key, name in (("user", user), ("item", item), ("time", time), ("weight", weight)):
        if name is not None and name not in df.columns:
            raise KeyError(f"{key} column {name!r} is not in the DataFrame (columns: {df.columns})")
    if dedup not in (None, "first", "last"):
        raise ValueError(f"dedup={dedup!r}: expected None, 'first' or 'last'")
    if min_user_rows < 1 or min_item_rows < 1 or max_rounds < 1:
        raise ValueError("min_user_rows, min_item_rows and max_rounds must be at least 1")
    if where:
        df = df.where(where)
    if time is None:
        ts = F.lit(0).cast("long")
    else:
        kind = df.schema[time].dataType
        if isinstance(kind, (T.TimestampType, T.TimestampNTZType, T.DateType)):
            ts = F.unix_timestamp(F.col(time).cast("timestamp")).cast("long")
        else:
            ts = F.col(time).cast("long")
    w = F.lit(1.0).cast("float") if weight is None else F.col(weight).cast("float")
    log = df.select(
        F.col(user).cast("string").alias("user"),
        F.col(item).cast("string").alias("item"),
        ts.alias("timestamp"),
        w.alias("weight"),
    ).where(F.col("user").isNotNull() & F.col("item").isNotNull() & F.col("timestamp").isNotNull())
    if dedup is not None:
        pick = F.min("timestamp") if dedup == "first" else F.max("timestamp")
        log = log.groupBy("user", "item").agg(pick.alias("timestamp"), F.sum("weight").alias("weight"))
    if min_user_rows > 1 or min_item_rows > 1:
        log = _k_core(log, min_user_rows, min_item_rows, max_rounds)
    if partitions is not None:
        log = log.repartition(partitions)
    if out is not None:
        log.write.mode("overwrite").parquet(os.fspath(out))
        log = log.sparkSession.read.parquet(os.fspath(out))
    return log


def _k_core(log, min_user_rows: int, min_item_rows: int, max_rounds: int):
    """Drops users and items with too few rows until none is left (or ``max_rounds`` pass).
    Each round is checkpointed locally so the plan does not grow with the rounds."""
    import logging

    from pyspark.sql import functions as F

    say = logging.getLogger("tandem.spark").info
    log = log.localCheckpoint()
    for round_ in range(1, max_rounds + 1):
        users = log.groupBy("user").count().where(F.col("count") >= min_user_rows).select("user")
        items = log.groupBy("item").count().where(F.col("count") >= min_item_rows).select("item")
        kept = log.join(users, "user", "left_semi").join(items, "item", "left_semi")
        kept = kept.select("user", "item", "timestamp", "weight").localCheckpoint()
        before, after = log.count(), kept.count()
        say("k-core round %d: %d -> %d rows", round_, before, after)
        log = kept
        if after == before:
            break
    else:
        say("k-core stopped after %d rounds without settling", max_rounds)
    return log


def train_als(
    df: Any,
    out: str,
    *,
    user: str = "user",
    item: str = "item",
    rating: Optional[str] = None,
    factors: int = 64,
    regularization: float = 0.1,
    alpha: float = 1.0,
    iterations: int = 15,
    seed: int = 42,
    data: Any = None,
    name: str = "als",
):
    """Trains Spark MLlib's implicit ALS on ``df`` (one row per interaction; ``rating`` the
    weight column, else 1) and writes a Tandem ALS model directory to ``out``; returns it as a
    :class:`tandem.Model`.

    Parameters and defaults are MLlib's: ``factors`` is ``rank``, ``regularization`` is ``regParam`` (which
    MLlib scales by each user's and item's interaction count, unlike Tandem's ALS), ``alpha``
    the confidence slope (confidence ``1 + alpha * rating``). Ids that are not integers of 32
    bits are indexed first (``StringIndexer``-free: a distinct numbered per partition, so no id
    list passes through the driver until the factors do; no RDD API, so Spark Connect runs it).

    The model's histories (what ``exclude_seen`` leaves out) are the distinct (user, item)
    pairs, collected with the factors to the driver, which needs about 8 bytes per pair plus 4
    per factor value. With ``data`` (a :class:`tandem.Interactions` of the same log read by
    Tandem, e.g. a split's ``train``), the model takes that log's id maps and rows instead, so
    ``tandem evaluate-split --load`` and :meth:`tandem.Model.evaluate` accept it.
    """
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    from . import Model, _core, _raw_ids

    for key, col in (("user", user), ("item", item), ("rating", rating)):
        if col is not None and col not in df.columns:
            raise KeyError(f"{key} column {col!r} is not in the DataFrame (columns: {df.columns})")
    if factors < 1 or iterations < 1 or regularization < 0 or alpha < 0:
        raise ValueError("factors and iterations must be at least 1; regularization and alpha at least 0")
    r = F.lit(1.0) if rating is None else F.col(rating).cast("float")
    log = df.select(F.col(user).alias("raw_user"), F.col(item).alias("raw_item"), r.alias("rating"))
    log = log.where(F.col("raw_user").isNotNull() & F.col("raw_item").isNotNull())
    log = log.groupBy("raw_user", "raw_item").agg(F.sum("rating").alias("rating")).cache()
    uidx = _index(log, "raw_user", "u")
    iidx = _index(log, "raw_item", "i")
    indexed = log.join(uidx, "raw_user").join(iidx, "raw_item").select("u", "i", "rating")
    als = ALS(
        rank=factors,
        maxIter=iterations,
        regParam=regularization,
        alpha=alpha,
        implicitPrefs=True,
        userCol="u",
        itemCol="i",
        ratingCol="rating",
        seed=seed,
        coldStartStrategy="drop",
    )
    fitted = als.fit(indexed)

    def collect(frame, key, raw):
        # One float column per factor through Arrow: 4 bytes a value on the driver, not a
        # Python object per row.
        cols = [F.col("features")[j].alias(f"f{j}") for j in range(factors)]
        table = _arrow(frame.join(key, frame["id"] == key[key.columns[1]]).select(raw, *cols))
        ids = table.column(0).to_numpy(zero_copy_only=False)
        vectors = np.empty((table.num_rows, factors), dtype=np.float32)
        for j in range(factors):
            vectors[:, j] = table.column(j + 1).to_numpy(zero_copy_only=False)
        return ids, vectors

    users, uf = collect(fitted.userFactors, uidx, "raw_user")
    items, vf = collect(fitted.itemFactors, iidx, "raw_item")
    params = json.dumps(
        {"factors": factors, "regularization": regularization, "alpha": alpha, "iterations": iterations, "seed": seed}
    )
    if data is not None:
        core = _core.als_from_factors(_raw_ids(users), uf, _raw_ids(items), vf, params, data=data._data)
    else:
        pairs = _arrow(log.select("raw_user", "raw_item"))
        core = _core.als_from_factors(
            _raw_ids(users), uf, _raw_ids(items), vf, params,
            pair_users=_raw_ids(pairs.column(0).to_numpy(zero_copy_only=False)),
            pair_items=_raw_ids(pairs.column(1).to_numpy(zero_copy_only=False)),
        )
    log.unpersist()
    model = Model._of(core)
    out = os.fspath(out)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    model.save(out, name)
    return model


def _is_connect(spark) -> bool:
    """Whether ``spark`` is a Spark Connect session (no SparkContext, no RDDs)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _arrow(frame):
    """A DataFrame on the driver as a pyarrow Table (``toArrow`` from Spark 4; before, pandas
    through Arrow)."""
    import pyarrow as pa

    if hasattr(frame, "toArrow"):
        return frame.toArrow()
    spark = frame.sparkSession
    key = "spark.sql.execution.arrow.pyspark.enabled"
    was = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        return pa.Table.from_pandas(frame.toPandas(), preserve_index=False)
    finally:
        spark.conf.set(key, was)


def _index(log, raw: str, dense: str):
    """(raw id, dense int id) for every distinct raw id: integers that fit 32 bits are their
    own index, others are numbered 0.. without gaps."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    distinct = log.select(raw).distinct()
    kind = log.schema[raw].dataType
    if isinstance(kind, (T.IntegerType, T.ShortType, T.ByteType)):
        return distinct.select(raw, F.col(raw).alias(dense))
    if isinstance(kind, T.LongType):
        lo, hi = distinct.agg(F.min(raw), F.max(raw)).first()
        if lo is not None and lo >= 0 and hi < 2**31:
            return distinct.select(raw, F.col(raw).cast("int").alias(dense))
    # Dense numbers without the RDD API (Spark Connect has none): each partition's rows are
    # numbered by monotonically_increasing_id (partition << 33 | row), and a partition's offset
    # is the count of the partitions before it. Checkpointed so both passes see one partitioning.
    spark = log.sparkSession
    numbered = distinct.select(
        raw, F.spark_partition_id().alias("_part"), F.monotonically_increasing_id().alias("_mono")
    ).localCheckpoint()
    counts = sorted((r["_part"], r["count"]) for r in numbered.groupBy("_part").count().collect())
    offsets, count = [], 0
    for part, n in counts:
        offsets.append((part, count))
        count += n
    if count >= 2**31:
        raise ValueError(f"{count} distinct {raw} ids: MLlib's ALS takes at most 2^31 - 1")
    starts = spark.createDataFrame(offsets or [(0, 0)], "_part int, _start long")
    local = F.col("_mono") - F.shiftleft(F.col("_part").cast("long"), 33)
    return numbered.join(F.broadcast(starts), "_part").select(raw, (F.col("_start") + local).cast("int").alias(dense))
