"""LightGBM (PyPI) beside Tandem's GBDT ranker on the same exported rows.

usage: gbdt_lightgbm.py train DIR TREES PARAMS_JSON   -> trains LightGBM lambdarank with the
           ranker's parameters on DIR/train.*, prints the seconds, writes DIR/lightgbm.pred.f32
       gbdt_lightgbm.py score DIR PRED_FILE           -> prints NDCG@10 and MAP@12 of those
           predictions on DIR/valid.* (SPEC §6: binary relevance; MAP@K divides by min(|rel|, K);
           ties broken by row order, the same for both engines)
"""
import json
import os
import sys
import time

import numpy as np


def load(d, name):
    width = sum(1 for _ in open(os.path.join(d, "features.txt")))
    rows = np.fromfile(os.path.join(d, f"{name}.rows.f32"), dtype="<f4").reshape(-1, width)
    labels = np.fromfile(os.path.join(d, f"{name}.labels.f32"), dtype="<f4")
    groups = np.fromfile(os.path.join(d, f"{name}.groups.u32"), dtype="<u4").astype(np.int64)
    return rows, labels, groups


def train(d, trees, params):
    import lightgbm as lgb

    rows, labels, groups = load(d, "train")
    objective = {"lambdarank": "lambdarank", "lambdarank_map": "lambdarank", "binary": "binary"}[
        params.get("objective", "lambdarank")]
    lgb_params = {
        "objective": objective,
        "learning_rate": params.get("learning_rate", 0.1),
        "num_leaves": params.get("leaves", 31),
        "max_depth": params.get("max_depth", 0) or -1,
        "min_sum_hessian_in_leaf": params.get("min_child_weight", 1e-3),
        # The Rust engine bounds leaves by hessian only: no row-count minimum here either.
        "min_data_in_leaf": 1,
        "feature_fraction": params.get("feature_fraction", 1.0),
        "bagging_fraction": params.get("bagging_fraction", 1.0),
        "bagging_freq": 1 if params.get("bagging_fraction", 1.0) < 1.0 else 0,
        "lambda_l2": params.get("lambda_l2", 1.0),
        "max_bin": params.get("max_bin", 255),
        "num_threads": int(os.environ.get("THREADS", "2")),
        "seed": params.get("seed", 42),
        "deterministic": True,
        "verbose": -1,
    }
    started = time.time()
    data = lgb.Dataset(rows, label=labels, group=groups)
    model = lgb.train(lgb_params, data, num_boost_round=trees)
    seconds = time.time() - started
    valid, _, _ = load(d, "valid")
    model.predict(valid, num_threads=lgb_params["num_threads"]).astype("<f4").tofile(
        os.path.join(d, "lightgbm.pred.f32"))
    print(f"{seconds:.3f}")


def score(d, pred_file):
    _, labels, groups = load(d, "valid")
    pred = np.fromfile(pred_file, dtype="<f4")
    ndcg, ap, start = [], [], 0
    for n in groups:
        l, p = labels[start:start + n], pred[start:start + n]
        start += n
        order = np.argsort(-p, kind="stable")
        rel = (l[order] > 0).astype(np.float64)
        gains = rel[:10] / np.log2(np.arange(2, min(10, n) + 2))
        ideal = np.sort(rel)[::-1][:10] / np.log2(np.arange(2, min(10, n) + 2))
        ndcg.append(gains.sum() / ideal.sum())
        top = rel[:12]
        hits = np.cumsum(top)
        ap.append((top * hits / np.arange(1, len(top) + 1)).sum() / min(rel.sum(), 12))
    print(json.dumps({"ndcg@10": float(np.mean(ndcg)), "map@12": float(np.mean(ap)), "lists": len(groups)}))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]))
    else:
        score(sys.argv[2], sys.argv[3])
