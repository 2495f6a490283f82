"""The Python API on small hand-made logs: every way data comes in, the results' shapes and ids,
save / load round trips with the CLI's model directories, and clear errors on bad input."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

import tandem
from conftest import run_cli

# Two communities: users a* like items 1-3, users b* items 7-9.
ROWS = [(u, i) for u in ("a1", "a2", "a3", "a4") for i in (1, 2, 3)] + [
    (u, i) for u in ("b1", "b2", "b3", "b4") for i in (7, 8, 9)
]
ROWS = [(u, i) for u, i in ROWS if (u, i) not in {("a4", 3), ("b4", 9)}]


def frame():
    return pd.DataFrame({"user": [u for u, _ in ROWS], "item": [i for _, i in ROWS], "t": range(len(ROWS))})


def test_pandas_arrow_dict_and_arrays_give_the_same_log():
    df = frame()
    a = tandem.interactions(df, time="t")
    b = tandem.interactions(pa.Table.from_pandas(df), time="t")
    c = tandem.interactions({"user": df["user"].tolist(), "item": df["item"].to_numpy(), "t": df["t"]}, time="t")
    d = tandem.interactions(user=df["user"].to_numpy(), item=df["item"].to_numpy(), time=df["t"].to_numpy())
    for x in (b, c, d):
        pd.testing.assert_frame_equal(x.to_pandas(), a.to_pandas())
    assert (len(a), a.n_users, a.n_items) == (22, 8, 6)
    back = a.to_pandas()
    assert back["item"].dtype == np.int64 and pd.api.types.is_string_dtype(back["user"])  # ids keep their kind
    assert back["user"].tolist() == df["user"].tolist()


def test_scipy_sparse_rows_are_users_and_columns_items():
    m = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32))
    log = tandem.interactions(m)
    df = log.to_pandas().sort_values(["user", "item"]).reset_index(drop=True)
    assert df[["user", "item"]].values.tolist() == [[0, 0], [0, 2], [1, 1]]
    assert df["weight"].tolist() == [1.0, 2.0, 3.0]
    named = tandem.interactions(m, user=np.array(["x", "y"]), item=np.array([10, 20, 30]))
    assert sorted(named.items().tolist()) == [10, 20, 30] and set(named.users()) == {"x", "y"}


def test_datetimes_become_unix_seconds():
    df = pd.DataFrame({"user": [1, 1], "item": [5, 6], "when": pd.to_datetime(["1970-01-02", "2020-01-01"])})
    assert tandem.interactions(df, time="when").to_pandas()["timestamp"].tolist() == [86400, 1577836800]


def test_recommend_similar_and_score_agree():
    model = tandem.Model("item_knn").fit(frame(), time="t", progress=False)
    items, scores = model.recommend(["a4", "b4"], k=3)
    assert items.shape == (2, 3) and items.dtype == np.int64
    # Each user's missing community item comes first; training items are left out.
    assert items[0, 0] == 3 and items[1, 0] == 9
    assert 1 not in items[0] and 7 not in items[1]
    assert np.all(np.diff(scores, axis=1) <= 0)
    # score() gives the same numbers recommend() ranked by.
    s = model.score(["a4"], items[0])
    np.testing.assert_allclose(s[0], scores[0], rtol=1e-6)
    one_items, one_scores = model.recommend("a4", k=3)
    assert one_items.tolist() == items[0].tolist()
    sim, _ = model.similar_items([1], k=2)
    assert set(sim[0]) == {2, 3}
    seen, _ = model.recommend(["a4"], k=6, exclude_seen=False)
    assert {1, 2}.issubset(set(seen[0]))


def test_short_lists_are_padded():
    model = tandem.Model("item_knn").fit(frame(), time="t", progress=False)
    items, scores = model.recommend(["a1"], k=10)  # 6 items, 3 seen: 3 to recommend
    assert (items[0, 3:] == -1).all() and np.isnan(scores[0, 3:]).all()
    assert not np.isnan(scores[0, :3]).any()


def test_unknown_users_fail_or_get_popular_items():
    model = tandem.ALS(factors=4, iterations=3).fit(frame(), time="t", progress=False)
    with pytest.raises(KeyError, match="unknown user 'zz'"):
        model.recommend(["a1", "zz"])
    items, _ = model.recommend(["a1", "zz"], k=3, unknown="popular")
    popular = frame()["item"].value_counts()
    assert set(items[1]) <= set(popular.index) and items[1][0] in popular[popular == popular.max()].index
    with pytest.raises(ValueError, match="unknown='nope'"):
        model.recommend(["a1"], unknown="nope")


def test_factors_are_exposed_for_factor_models():
    model = tandem.ALS(factors=8, iterations=3).fit(frame(), time="t", progress=False)
    assert model.user_factors.shape == (8, 8) and model.item_factors.shape == (6, 8)
    assert tandem.Model("item_knn").fit(frame(), progress=False).user_factors is None


def test_bad_parameters_and_data_are_named():
    with pytest.raises(ValueError, match="factors"):
        tandem.ALS(factors=0).fit(frame(), progress=False)
    with pytest.raises(ValueError, match="bogus"):
        tandem.ALS(bogus=1).fit(frame(), progress=False)
    with pytest.raises(ValueError, match="no_such_kind"):
        tandem.Model("no_such_kind").fit(frame(), progress=False)
    with pytest.raises(KeyError, match="'usr' is not in the data"):
        tandem.interactions(frame(), user="usr")
    with pytest.raises(RuntimeError, match="not fitted"):
        tandem.ALS().recommend(["a1"])
    with pytest.raises(tandem.TandemError, match="nothing-here"):
        tandem.load("/nonexistent/nothing-here")
    with pytest.raises(ValueError, match="whole numbers"):
        tandem.interactions(user=np.array([1.5]), item=np.array([1]))


def test_save_load_round_trip_and_the_cli_reads_it(tmp_path, tandem_bin):
    model = tandem.ALS(factors=8, iterations=3).fit(frame(), time="t", progress=False)
    model.save(tmp_path / "m")
    back = tandem.load(tmp_path / "m")
    assert back.kind == "als" and back.params["factors"] == 8
    a, sa = model.recommend(["a4", "b4"], k=4)
    b, sb = back.recommend(["a4", "b4"], k=4)
    assert a.tolist() == b.tolist()
    np.testing.assert_array_equal(sa, sb)
    out = run_cli(tandem_bin, "recommend", "--model", tmp_path / "m", "--user", "a4", "--k", "4")
    assert [int(line.split("\t")[1]) for line in out.strip().splitlines()[-4:]] == a[0].tolist(), out


def test_read_every_cli_format_including_spark_style_parquet_dirs(tmp_path):
    df = frame()
    df.to_csv(tmp_path / "log.csv", index=False)
    ds = tmp_path / "log.parquet"
    ds.mkdir()
    pq.write_table(pa.Table.from_pandas(df.iloc[:10]), ds / "part-00000.parquet")
    pq.write_table(pa.Table.from_pandas(df.iloc[10:]), ds / "part-00001.parquet")
    (ds / "_SUCCESS").write_text("")
    spec = {"format": "delimited", "log": {"columns": {"user": "user", "item": "item", "time": "t"}}}
    a = tandem.read({**spec, "log": {**spec["log"], "path": str(tmp_path / "log.csv")}}, progress=False)
    b = tandem.read({**spec, "log": {**spec["log"], "path": str(ds)}}, progress=False)
    pd.testing.assert_frame_equal(a.to_pandas(), b.to_pandas())
    assert len(a) == 22
    with pytest.raises(tandem.TandemError, match="missing.csv"):
        tandem.read({**spec, "log": {**spec["log"], "path": str(tmp_path / "missing.csv")}}, progress=False)


def test_kinds_and_typed_conveniences():
    kinds = tandem.kinds()
    assert {"als", "ease", "item_knn", "mf", "two_stage", "popularity"} <= set(kinds)
    assert tandem.BPR().params == {"loss": "bpr"} and tandem.BPR().kind == "mf"
    assert tandem.EASE(lambda_=50.0).params == {"lambda": 50.0}
    model = tandem.EASE(lambda_=50.0).fit(frame(), progress=False)
    assert model.recommend(["a4"], k=1)[0][0] == 3


def test_type_stubs_cover_the_native_module():
    """_core.pyi names every function, class and method the native module has, and no more."""
    import ast
    from pathlib import Path

    from tandem import _core

    tree = ast.parse((Path(tandem.__file__).parent / "_core.pyi").read_text())
    stubbed = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            stubbed[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            stubbed[node.name] = None
    native = {n for n in dir(_core) if not n.startswith("_")}
    assert native == set(stubbed), native ^ set(stubbed)
    for name, methods in stubbed.items():
        if methods is not None and name != "TandemError":
            have = {m for m in vars(getattr(_core, name)) if not m.startswith("_") or m == "__len__"}
            assert have == methods, (name, have ^ methods)
    assert (Path(tandem.__file__).parent / "py.typed").exists()


def test_the_readme_python_quickstart_runs(shared, tmp_path, monkeypatch):
    """README.md's Python block, run as written (paths resolved against the shared data)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme[readme.index("## Python and Spark"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace("../shared/data", str(shared))
    monkeypatch.chdir(tmp_path)
    scope = {"df": pd.DataFrame({"customer_id": ["0a", "0b"], "article_id": ["01", "02"],
                                 "t_dat": pd.to_datetime(["2020-09-01", "2020-09-02"])})}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["items"].shape == (934, 10)
    assert scope["report"]["models"]["als"]["metrics"]["NDCG@10"] > 0.09
    assert (tmp_path / "out" / "als" / "manifest.json").exists()
    assert len(scope["log"]) == 2
    assert scope["ratio"].report["test_rows"] > 19_000 and (tmp_path / "out" / "ratio" / "test.tsv").exists()


@pytest.mark.parametrize("spec", [
    {"kind": "last_n", "test": 2, "valid": 1},
    {"kind": "ratio", "test": 0.2, "seed": 7},
    {"kind": "leave_one_out"},
    {"kind": "time_window", "days": 20},
])
def test_split_writes_what_the_cli_split_writes(spec, shared, tandem_bin, tmp_path):
    """tandem.split(...).save(DIR) writes the same files, byte for byte, as `tandem split` with
    the same `split:` map on the same log (ml-100k's u.data)."""
    data = {"format": "movielens", "path": str(shared / "ml-100k")}
    config = tmp_path / "split.yaml"
    config.write_text(json.dumps({"data": data, "split": spec, "models": {"pop": {"kind": "popularity"}}}))
    run_cli(tandem_bin, "split", config, "--out", tmp_path / "cli")
    log = tandem.read(data, progress=False)
    params = {k: v for k, v in spec.items() if k != "kind"}
    split = tandem.split(log, spec["kind"], **params).save(tmp_path / "py")
    for name in ("train.tsv", "valid.tsv", "test.tsv"):
        cli, py = tmp_path / "cli" / name, tmp_path / "py" / name
        assert cli.exists() == py.exists(), name
        if cli.exists():
            assert cli.read_bytes() == py.read_bytes(), name
    assert split.report["train_rows"] + split.report["valid_rows"] + split.report["test_rows"] == len(log) == 100_000
    assert split.path == str(tmp_path / "py") and len(split.test_users()) == split.report["test_users"]


def test_split_names_bad_specs():
    log = frame()
    with pytest.raises(ValueError, match="split: .*unknown variant `weekly`"):
        tandem.split(log, "weekly")
    with pytest.raises(ValueError, match="test.*outside"):
        tandem.split(log, "ratio", test=1.5)
