"""Tandem on a local[2] Spark session: batch scoring over user partitions equals one machine's
output, Spark SQL preparation writes logs the core reads, and MLlib ALS imports as a Tandem model
that evaluates and serves like Tandem's own."""

import json
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest

import tandem
import tandem.spark
from conftest import run_cli

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def generated(tandem_bin, tmp_path_factory):
    """A 1M-row synthetic log (10,000 users, 5,000 items) and an ALS model fitted on it."""
    d = tmp_path_factory.mktemp("generated")
    run_cli(tandem_bin, "generate", "--out", d / "log.csv", "--interactions", "1000000")
    log = tandem.read(
        {"format": "delimited", "log": {"path": str(d / "log.csv"), "columns": {"user": "user", "item": "item",
                                                                                "time": "timestamp"}}},
        progress=False,
    )
    model = tandem.ALS(factors=32, iterations=5).fit(log, progress=False)
    model.save(d / "als")
    return d, log, model


def test_recommend_over_partitions_equals_one_machine(spark, generated):
    d, log, model = generated
    users = model.user_ids()
    assert len(log) == 1_000_000 and len(users) == 10_000
    frame = spark.createDataFrame(pd.DataFrame({"user": users})).repartition(8)
    start = time.perf_counter()
    out = tandem.spark.recommend(frame, str(d / "als"), k=10).toPandas()
    seconds = time.perf_counter() - start
    print(f"spark recommend: {len(users)} users in {seconds:.2f} s on local[2]: "
          f"{len(users) / seconds / 2:.0f} users/s per executor core")
    assert list(out.columns) == ["user", "item", "rank", "score"]
    assert out["user"].dtype == np.int64 and out["item"].dtype == np.int64
    out = out.sort_values(["user", "rank"]).reset_index(drop=True)
    order = np.argsort(users, kind="stable")
    items, scores = model.recommend(users[order], k=10)
    want = pd.DataFrame({
        "user": np.repeat(users[order], 10),
        "item": items.ravel(),
        "rank": np.tile(np.arange(1, 11, dtype=np.int32), len(users)),
        "score": scores.ravel(),
    })
    assert len(out) == len(want) == 100_000
    pd.testing.assert_frame_equal(out, want, check_dtype=False)
    np.testing.assert_array_equal(out["score"].to_numpy(np.float32), want["score"].to_numpy(np.float32))


def test_recommend_keeps_string_ids_ships_the_model_and_handles_unknown_users(spark, tmp_path):
    df = pd.DataFrame({"user": ["0a", "0a", "0b", "0b", "0c"], "item": ["x1", "x2", "x2", "x3", "x1"]})
    model = tandem.Model("item_knn").fit(df, progress=False)
    model.save(tmp_path / "knn")
    users = spark.createDataFrame(pd.DataFrame({"user": ["0a", "0c", "new"]}))
    out = tandem.spark.recommend(users, str(tmp_path / "knn"), k=2, ship=True).toPandas()
    assert set(out["user"]) == {"0a", "0c", "new"} and pd.api.types.is_string_dtype(out["item"])
    mine, _ = model.recommend(["0a", "0c", "new"], k=2, unknown="popular")
    for u, row in zip(["0a", "0c", "new"], mine):
        got = out[out["user"] == u].sort_values("rank")["item"].tolist()
        assert got == [i for i in row if i is not None], u
    with pytest.raises(Exception, match="unknown user 'new'"):
        tandem.spark.recommend(users, str(tmp_path / "knn"), k=2, unknown="error").collect()
    with pytest.raises(FileNotFoundError, match="not a Tandem model directory"):
        tandem.spark.recommend(users, str(tmp_path / "nothing"), k=2)
    with pytest.raises(KeyError, match="'customer'"):
        tandem.spark.recommend(users, str(tmp_path / "knn"), user="customer")


def test_interactions_filters_dedups_and_k_cores_into_parquet_tandem_reads(spark, tmp_path, tandem_bin):
    rows = [
        # user, item, qty, day: u1-u3 share items a, b; u4 and item z fall out of the 2-core.
        ("u1", "a", 1, "2024-01-01"), ("u1", "a", 2, "2024-01-03"), ("u1", "b", 1, "2024-01-02"),
        ("u2", "a", 1, "2024-01-01"), ("u2", "b", 1, "2024-01-05"),
        ("u3", "a", 1, "2024-01-02"), ("u3", "b", 1, "2024-01-02"), ("u3", "z", 1, "2024-01-04"),
        ("u4", "b", 1, "2024-01-01"), ("u4", "a", -1, "2024-01-06"),
    ]
    df = spark.createDataFrame(pd.DataFrame(rows, columns=["customer", "article", "qty", "day"]))
    df = df.withColumn("day", df["day"].cast("date"))
    out = tmp_path / "log.parquet"
    log = tandem.spark.interactions(df, user="customer", item="article", time="day", weight="qty",
                                    where="qty > 0", dedup="last", min_user_rows=2, min_item_rows=2, out=str(out))
    got = log.toPandas().sort_values(["user", "item"]).reset_index(drop=True)
    assert got[["user", "item"]].values.tolist() == [["u1", "a"], ["u1", "b"], ["u2", "a"], ["u2", "b"],
                                                     ["u3", "a"], ["u3", "b"]]
    u1a = got[(got.user == "u1") & (got.item == "a")].iloc[0]
    assert u1a["weight"] == 3.0 and u1a["timestamp"] == 1704240000  # summed; the latest day, 2024-01-03
    # The core reads the Parquet directory, from Python and from `tandem run`'s reader alike.
    spec = {"format": "delimited", "log": {"path": str(out), "columns": {"user": "user", "item": "item",
                                                                          "time": "timestamp", "weight": "weight"}}}
    back = tandem.read(spec, progress=False).to_pandas().sort_values(["user", "item"]).reset_index(drop=True)
    assert back[["user", "item", "timestamp"]].values.tolist() == got[["user", "item", "timestamp"]].values.tolist()
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({
        "data": spec,
        "split": {"kind": "last_n", "test": 1},
        "models": {"pop": {"kind": "popularity"}},
        "evaluation": {"ks": [1, 2]},
        "output": {"plot": False},
    }))
    run_cli(tandem_bin, "run", config, "--out", tmp_path / "run")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["data"]["loading"][0]["rows_kept"] == 6, report["data"]
    with pytest.raises(ValueError, match="dedup='sum'"):
        tandem.spark.interactions(df, user="customer", item="article", dedup="sum")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_train_als_matches_tandem_als_and_serves(spark, temporal, tmp_path, tandem_bin):
    split = tandem.read_split(temporal, progress=False)
    # Noise: Tandem's own ALS NDCG@10 over seeds.
    own = [tandem.ALS(seed=s).fit(split.train, progress=False).evaluate(temporal, progress=False)
           ["models"]["als"]["metrics"]["NDCG@10"] for s in range(5)]
    mean, spread = float(np.mean(own)), float(np.std(own, ddof=1))
    df = spark.read.option("sep", "\t").option("header", True).option("inferSchema", True).csv(
        str(temporal / "train.tsv"))
    model = tandem.spark.train_als(df, str(tmp_path / "spark-als"), factors=64, data=split.train)
    got = model.evaluate(temporal, progress=False)["models"]["als"]["metrics"]["NDCG@10"]
    tolerance = max(3 * spread, 0.005)
    print(f"NDCG@10: MLlib ALS {got:.4f}; Tandem ALS {mean:.4f} +- {spread:.4f} over 5 seeds; "
          f"allowed {tolerance:.4f}")
    assert abs(got - mean) <= tolerance
    # Without `data` the model carries its own id maps and the training pairs as histories.
    alone = tandem.spark.train_als(df, str(tmp_path / "spark-als-2"), factors=8, iterations=3)
    assert alone.fitted.n_users == split.train.n_users
    seen = set(split.train.to_pandas().query("user == 1")["item"])
    assert not seen & set(alone.recommend([1], k=50)[0][0])
    # `tandem serve` serves it.
    port = _free_port()
    server = subprocess.Popen([str(tandem_bin), "--quiet", "serve", "--model", str(tmp_path / "spark-als"),
                               "--addr", f"127.0.0.1:{port}"], stderr=subprocess.PIPE)
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/recommend?user=1&k=5", timeout=5) as r:
                    body = json.load(r)
                break
            except OSError:
                time.sleep(0.1)
        assert body is not None, "tandem serve did not answer"
        want = model.recommend([1], k=5)[0][0].tolist()
        assert [int(x["item"]) for x in body["items"]] == want, body
    finally:
        server.terminate()
        server.wait(10)


def test_the_example_job_runs_over_spark_connect(tmp_path):
    """examples/spark_job.py, as docs/scale-out.md runs it, through a Spark Connect session (a
    local server: no RDD or SparkContext calls anywhere on the path) on string ids: the log is
    prepared, MLlib's ALS is imported as a model directory, and every user's top k written."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect]")
    rng = np.random.default_rng(7)
    users = rng.integers(0, 300, 6000)
    items = (users % 7) * 20 + rng.integers(0, 40, 6000)  # seven overlapping tastes
    pd.DataFrame({"customer": [f"c{u:03d}" for u in users], "article": [f"a{i}" for i in items],
                  "day": rng.integers(1_700_000_000, 1_700_900_000, 6000)}).to_csv(tmp_path / "log.csv", index=False)
    job = Path(__file__).resolve().parents[1] / "examples" / "spark_job.py"
    work = tmp_path / "work"
    done = subprocess.run([sys.executable, str(job), "--remote", "local[2]", "--log", str(tmp_path / "log.csv"),
                           "--user", "customer", "--item", "article", "--time", "day", "--min-user-rows", "5",
                           "--factors", "8", "--iterations", "5", "--k", "5", "--work", str(work)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "top 5 for every user" in done.stdout
    model = tandem.load(work / "als")
    got = pd.read_parquet(work / "recommendations.parquet").sort_values(["user", "rank"])
    assert set(got["user"]) == set(model.user_ids()) and len(got) == 5 * len(model.user_ids())
    want, _ = model.recommend(got["user"].unique(), k=5)
    assert got["item"].tolist() == want.ravel().tolist()
    # Users' own tastes come first: most recommended items are in the user's taste band.
    band = got["user"].str[1:].astype(int) % 7
    assert ((got["item"].str[1:].astype(int) // 20 - band).isin([0, 1]).mean()) > 0.8
