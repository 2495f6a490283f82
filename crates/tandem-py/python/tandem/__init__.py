"""Tandem from Python: the Rust core's models, batch recommendations and evaluation.

Every model kind of the CLI's registry is here with the same parameters (``tandem.Model("als",
factors=64)``, or the typed ``tandem.ALS(factors=64)``); ``fit`` and ``recommend`` release the
GIL and run on all cores; model directories are the ones ``tandem serve`` and ``tandem
recommend`` read; ``tandem.evaluate_split`` is ``tandem evaluate-split`` and returns its
report.json as a dict.

    >>> import tandem
    >>> split = tandem.read_split("../shared/data/ml-100k/splits/temporal")
    >>> model = tandem.ALS(factors=64).fit(split.train)
    >>> items, scores = model.recommend(["1", "2"], k=10)   # raw ids in, raw ids out
    >>> report = model.evaluate("../shared/data/ml-100k/splits/temporal")
    >>> report["models"]["als"]["metrics"]["NDCG@10"]

Raw ids: users and items keep the ids of the data they came from. Integer ids (numpy integer
arrays, integer columns) come back as int64 arrays; any other ids come back as object arrays of
str. Where a list has fewer than ``k`` items, ids are padded with -1 (integer ids) or None and
scores with NaN.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._core import TandemError

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "Interactions",
    "ItemKNN",
    "Model",
    "Split",
    "TandemError",
    "TwoStage",
    "evaluate_split",
    "interactions",
    "kinds",
    "load",
    "metrics_frame",
    "read",
    "read_split",
    "split",
]

__version__ = _core.__version__

_KS = (1, 5, 10, 20, 50, 100)


def _raw_ids(values: Any) -> Any:
    """Ids as the core takes them: an int64 array for integer ids, else a list of str."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy()  # pandas Series / pyarrow arrays
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer):
        return np.ascontiguousarray(arr, dtype=np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("float ids must be whole numbers (missing ids are not allowed)")
        return np.ascontiguousarray(arr, dtype=np.int64)
    return [str(v) for v in arr.tolist()]


def _id_array(raw: Sequence[str]) -> np.ndarray:
    """Raw ids back as an array: int64 when every id is a plain integer, else str objects."""
    try:
        ints = np.array([int(s) for s in raw], dtype=np.int64)
    except (ValueError, OverflowError):
        return np.array(raw, dtype=object)
    # Leading zeros or signs that do not round-trip stay strings (H&M's customer ids).
    if all(str(v) == s for v, s in zip(ints.tolist(), raw)):
        return ints
    return np.array(raw, dtype=object)


def _seconds(values: Any) -> np.ndarray:
    """A time column as unix seconds: datetimes are converted, numbers taken as seconds."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy()
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[s]").astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"time column: expected numbers or datetimes, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


class Interactions:
    """An interaction log in the core's dense layout, with the raw ids it was read with.

    Build one with :func:`interactions` (pandas, pyarrow, scipy.sparse, numpy), :func:`read`
    (every format the CLI reads) or :func:`read_split` (a pre-split directory).
    """

    def __init__(self, data: "_core.Data"):
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data).replace("Data(", "Interactions(")

    @property
    def n_users(self) -> int:
        """Users in the id map."""
        return self._data.n_users

    @property
    def n_items(self) -> int:
        """Items in the id map."""
        return self._data.n_items

    def user_ids(self) -> np.ndarray:
        """Raw user ids by dense index."""
        return _id_array(self._data.user_ids())

    def item_ids(self) -> np.ndarray:
        """Raw item ids by dense index."""
        return _id_array(self._data.item_ids())

    def users(self) -> np.ndarray:
        """Each row's raw user id."""
        u, _, _, _ = self._data.columns()
        return self.user_ids()[u]

    def items(self) -> np.ndarray:
        """Each row's raw item id."""
        _, i, _, _ = self._data.columns()
        return self.item_ids()[i]

    def to_pandas(self):
        """The rows as a DataFrame (user, item, timestamp, weight) with raw ids."""
        import pandas as pd

        u, i, t, w = self._data.columns()
        return pd.DataFrame({"user": self.user_ids()[u], "item": self.item_ids()[i], "timestamp": t, "weight": w})

    def __add__(self, other: "Interactions") -> "Interactions":
        """Rows of both parts of one split (e.g. ``split.train + split.valid``)."""
        return Interactions(self._data.concat(other._data))


def interactions(
    data: Any = None,
    *,
    user: Any = "user",
    item: Any = "item",
    time: Any = None,
    weight: Any = None,
) -> Interactions:
    """An interaction log from Python data.

    ``data`` is a pandas DataFrame or pyarrow Table (``user``, ``item``, ``time``, ``weight``
    name its columns), a dict of arrays (the same names as keys), or a scipy.sparse matrix
    (rows are users, columns items, values weights; ``user`` / ``item`` may then give raw ids
    per row / column). Without ``data``, ``user`` and ``item`` are the id arrays themselves.
    Times are unix seconds or datetimes; without them the row order is the time order.
    """
    if data is not None and hasattr(data, "tocoo"):
        coo = data.tocoo()
        rows = np.asarray(coo.row, dtype=np.int64)
        cols = np.asarray(coo.col, dtype=np.int64)
        users = rows if isinstance(user, str) else np.asarray(user)[rows]
        items = cols if isinstance(item, str) else np.asarray(item)[cols]
        w = np.ascontiguousarray(coo.data, dtype=np.float32)
        return Interactions(_core.Data.from_columns(_raw_ids(users), _raw_ids(items), None, w))
    if data is None:
        cols = {"user": user, "item": item, "time": time, "weight": weight}
    else:
        if hasattr(data, "column_names") and hasattr(data, "column"):  # pyarrow.Table
            get = lambda name: data.column(name).to_numpy()  # noqa: E731
            names = set(data.column_names)
        else:
            get = lambda name: data[name]  # noqa: E731
            names = set(data.keys()) if hasattr(data, "keys") else set(data.columns)
        cols = {}
        for key, name in (("user", user), ("item", item), ("time", time), ("weight", weight)):
            if name is None:
                cols[key] = None
                continue
            if name not in names:
                raise KeyError(f"{key} column {name!r} is not in the data (columns: {sorted(map(str, names))})")
            cols[key] = get(name)
    t = None if cols["time"] is None else _seconds(cols["time"])
    w = None if cols["weight"] is None else np.ascontiguousarray(np.asarray(cols["weight"]), dtype=np.float32)
    return Interactions(_core.Data.from_columns(_raw_ids(cols["user"]), _raw_ids(cols["item"]), t, w))


def read(source: Optional[dict] = None, *, progress: bool = True, **keys: Any) -> Interactions:
    """Reads a log as a config's ``data:`` map says (docs/config.md), e.g.
    ``tandem.read(format="movielens", path="ml-100k")`` or ``tandem.read({"format": "hm", "path":
    "hm/"})``; Parquet files are read where the format allows."""
    spec = dict(source or {})
    spec.update(keys)
    return Interactions(_core.Data.read(json.dumps(spec, default=str), quiet=not progress))


@dataclass
class Split:
    """A split log's parts, sharing one id map: read from a directory (:func:`read_split`) or
    made by :func:`split` (``path`` is then None until :meth:`save`)."""

    train: Interactions
    valid: Interactions
    test: Interactions
    path: Optional[str] = None
    report: Optional[dict] = None

    def test_users(self) -> np.ndarray:
        """The test part's distinct users (raw ids), in their index order."""
        u, _, _, _ = self.test._data.columns()
        return self.test.user_ids()[np.unique(u)]

    def save(self, path: str) -> "Split":
        """Writes ``train.tsv``, ``test.tsv`` and (when not empty) ``valid.tsv`` to ``path`` as
        ``tandem split`` does (header ``user item timestamp``, raw ids, rows in log order), so
        :func:`evaluate_split`, :meth:`Model.evaluate` and the CLI read it; returns this split
        with ``path`` set."""
        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        for name, part in (("train", self.train), ("valid", self.valid), ("test", self.test)):
            if name == "valid" and len(part) == 0:
                continue
            frame = part.to_pandas()[["user", "item", "timestamp"]]
            frame.to_csv(os.path.join(path, f"{name}.tsv"), sep="\t", index=False, lineterminator="\n")
        self.path = path
        return self


def split(log: Interactions, kind: str, **params: Any) -> Split:
    """``log`` split as a config's ``split:`` map says (docs/config.md), by the CLI's own
    splitter: ``split(log, "last_n", test=5)``, ``split(log, "leave_one_out")``,
    ``split(log, "ratio", test=0.2, seed=42)``, ``split(log, "fixed", test=10)``,
    ``split(log, "time_window", days=7)``, ``split(log, "global_fraction", test=0.1)``. The parts
    share the log's id maps; ``report`` has the rows per part and the users kept in train."""
    if not isinstance(log, Interactions):
        log = interactions(log)
    train, valid, test, report = log._data.split(json.dumps({"kind": kind, **params}))
    return Split(Interactions(train), Interactions(valid), Interactions(test), None, json.loads(report))


def read_split(path: str, *, items: Optional[str] = None, progress: bool = True) -> Split:
    """A directory with train.tsv, optional valid.tsv, and test.tsv (the canonical ml-100k
    splits' layout); ``items`` adds a MovieLens item file's metadata (years, genres)."""
    train, valid, test = _core.Data.read_split(os.fspath(path), items, quiet=not progress)
    return Split(Interactions(train), Interactions(valid), Interactions(test), os.fspath(path))


def kinds() -> dict:
    """Every model kind with its one-line description."""
    return dict(_core.kinds())


class Model:
    """A model of any registered kind: ``Model("als", factors=64)``, ``Model("two_stage",
    retrievers=[...], ranker={...})``. Parameters are those of docs/config.md, checked when
    fitting; unknown ones are refused with the kind's list."""

    def __init__(self, kind: str, **params: Any):
        self.kind = kind.replace("-", "_")
        self.params = params
        self._fitted: Optional[_core.Model] = None
        self._item_ids: Optional[np.ndarray] = None
        self._user_ids: Optional[np.ndarray] = None

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        state = "fitted" if self._fitted is not None else "not fitted"
        return f"Model({self.kind!r}{args}) [{state}]"

    @classmethod
    def _of(cls, fitted: "_core.Model") -> "Model":
        m = cls.__new__(cls)
        Model.__init__(m, fitted.kind, **json.loads(fitted.params_json))
        m._fitted = fitted
        return m

    @property
    def fitted(self) -> "_core.Model":
        if self._fitted is None:
            raise RuntimeError(f"the {self.kind} model is not fitted: call fit(data) or tandem.load(dir)")
        return self._fitted

    def fit(self, data: Any, *, progress: bool = True, **columns: Any) -> "Model":
        """Fits on ``data`` (:class:`Interactions`, or anything :func:`interactions` takes, with
        its column names as keywords); returns the model. The GIL is released while fitting."""
        if not isinstance(data, Interactions):
            data = interactions(data, **columns)
        self._fitted = _core.fit(self.kind, json.dumps(self.params), data._data, quiet=not progress)
        self._item_ids = self._user_ids = None
        return self

    def item_ids(self) -> np.ndarray:
        """Raw item ids by the model's dense index."""
        if self._item_ids is None:
            self._item_ids = _id_array(self.fitted.item_ids())
        return self._item_ids

    def user_ids(self) -> np.ndarray:
        """Raw user ids by the model's dense index."""
        if self._user_ids is None:
            self._user_ids = _id_array(self.fitted.user_ids())
        return self._user_ids

    def _raw(self, index: np.ndarray) -> np.ndarray:
        ids = self.item_ids()
        pad = -1 if ids.dtype == np.int64 else None
        out = np.empty(index.shape, dtype=ids.dtype)
        valid = index >= 0
        out[valid] = ids[index[valid]]
        out[~valid] = pad
        return out

    def recommend(self, users: Any, k: int = 10, *, exclude_seen: bool = True,
                  unknown: str = "error") -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for each of ``users`` (raw ids; one id or an array), best first:
        ``(items, scores)``, each of shape ``(len(users), k)``. ``exclude_seen`` leaves each
        user's training items out; users known but without training rows get the most popular
        items, and so do users the model never saw with ``unknown="popular"`` (by default they
        raise KeyError). Runs through the batch-scoring path on all cores, the GIL released."""
        if unknown not in ("error", "popular"):
            raise ValueError(f"unknown={unknown!r}: expected 'error' or 'popular'")
        single = np.ndim(users) == 0
        index, scores = self.fitted.recommend(_raw_ids(users), int(k), exclude_seen, unknown == "popular")
        items = self._raw(index)
        return (items[0], scores[0]) if single else (items, scores)

    def similar_items(self, items: Any, k: int = 10) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each of ``items`` (the item itself excluded)."""
        single = np.ndim(items) == 0
        index, scores = self.fitted.similar_items(_raw_ids(items), int(k))
        out = self._raw(index)
        return (out[0], scores[0]) if single else (out, scores)

    def score(self, users: Any, items: Any) -> np.ndarray:
        """The model's scores of ``items`` for each of ``users``: shape ``(len(users), len(items))``."""
        return self.fitted.score(_raw_ids(np.atleast_1d(users)), _raw_ids(np.atleast_1d(items)))

    @property
    def user_factors(self) -> Optional[np.ndarray]:
        """User vectors by dense index (factor models: ALS, MF, two-tower), else None."""
        e = self.fitted.embeddings()
        return None if e is None else e[0]

    @property
    def item_factors(self) -> Optional[np.ndarray]:
        """Item vectors by dense index, else None."""
        e = self.fitted.embeddings()
        return None if e is None else e[1]

    def save(self, path: str, name: Optional[str] = None) -> None:
        """Writes a model directory that ``tandem serve``, ``tandem recommend`` and
        :func:`load` read."""
        self.fitted.save(os.fspath(path), name)

    def evaluate(self, split_dir: str, *, ks: Iterable[int] = _KS, out: Optional[str] = None,
                 progress: bool = True) -> dict:
        """This fitted model evaluated on a split directory's test part exactly as ``tandem
        evaluate-split --load`` does (it must have been fitted on that split's train.tsv):
        the report.json as a dict (see :func:`metrics_frame` for a DataFrame)."""
        with tempfile.TemporaryDirectory(prefix="tandem-") as tmp:
            model_dir = os.path.join(tmp, "model")
            self.save(model_dir)
            return _evaluate(split_dir, self.kind, {}, out, ks, load_dir=model_dir, progress=progress)


def _evaluate(split_dir, kind, params, out, ks, *, load_dir=None, items=None, train_with_valid=False,
              progress=True) -> dict:
    with tempfile.TemporaryDirectory(prefix="tandem-") as tmp:
        out_dir = os.fspath(out) if out is not None else tmp
        _core.evaluate_split(os.fspath(split_dir), kind, json.dumps(params), out_dir, [int(k) for k in ks],
                             load_dir=load_dir, items=items, train_with_valid=train_with_valid,
                             quiet=not progress)
        with open(os.path.join(out_dir, "report.json")) as f:
            return json.load(f)


def evaluate_split(split_dir: str, model: str = "popularity", *, ks: Iterable[int] = _KS,
                   out: Optional[str] = None, items: Optional[str] = None, train_with_valid: bool = False,
                   progress: bool = True, **params: Any) -> dict:
    """``tandem evaluate-split SPLIT_DIR --model MODEL --param ...``: fits ``model`` with
    ``params`` on train.tsv, evaluates on test.tsv (SPEC §6) and returns report.json as a dict;
    with ``out``, report.json and predictions.tsv are also written there."""
    return _evaluate(split_dir, model.replace("-", "_"), params, out, ks, items=items,
                     train_with_valid=train_with_valid, progress=progress)


def metrics_frame(report: dict):
    """A report's metrics as a DataFrame: one row per model, one column per metric, plus the
    fit and evaluation seconds."""
    import pandas as pd

    rows = {}
    for name, m in report["models"].items():
        rows[name] = {**m["metrics"], "fit_seconds": m["fit_seconds"], "eval_seconds": m["eval_seconds"]}
    return pd.DataFrame.from_dict(rows, orient="index")


def load(path: str) -> Model:
    """A model directory written by the CLI (`--save`, `tandem run`) or :meth:`Model.save`."""
    return Model._of(_core.load(os.fspath(path)))


class ALS(Model):
    """Implicit ALS (conjugate gradient): ``ALS(factors=64, regularization=10, alpha=0,
    iterations=15, cg_steps=3, seed=42, recency_half_life=0)``; omitted ones keep the registry's
    defaults. Confidence is ``1 + alpha * weight`` (implicit's alpha is ours + 1)."""

    def __init__(self, **params: Any):
        super().__init__("als", **params)


class BPR(Model):
    """Matrix factorisation trained with BPR: ``Model("mf", loss="bpr", ...)``."""

    def __init__(self, **params: Any):
        super().__init__("mf", loss="bpr", **params)


class EASE(Model):
    """EASE, closed-form item-item regression: ``EASE(lambda_=400)`` (``lambda`` in configs)."""

    def __init__(self, **params: Any):
        if "lambda_" in params:
            params["lambda"] = params.pop("lambda_")
        super().__init__("ease", **params)


class ItemKNN(Model):
    """Item-item collaborative filtering: ``ItemKNN(neighbours=..., similarity=...)``."""

    def __init__(self, **params: Any):
        super().__init__("item_knn", **params)


class TwoStage(Model):
    """Retrievers, the union of their candidates, and a ranker: ``TwoStage(retrievers=[{"kind":
    "als"}, {"kind": "item_knn"}], ranker={"kind": "gbdt"})``."""

    def __init__(self, **params: Any):
        super().__init__("two_stage", **params)
