#!/usr/bin/env python3
"""Tandem beside `implicit` (ALS, BPR) and LightFM (WARP, BPR) on the same split files, with
equal factors, iterations and threads, in one run. Prints NDCG@10, MAP@50 and fit seconds.

Usage: bench/peers.py SPLIT_DIR [--factors 64] [--als-iterations 15] [--epochs 40]
                      [--lightfm-epochs 20] [--threads 2] [--repeat 3] [--skip-lightfm]

Protocol (as `tandem evaluate-split`): fit on train.tsv; full ranking over the items of
train.tsv, each user's train items excluded, or, when test_negatives.tsv exists, the held-out
item ranked among those negatives; metrics per SPEC §6 averaged over test users.
Fit times are medians of --repeat fits, measured around the fit call only. Tandem's time is
its own `fit_seconds` (excluding process start and file reading).
Needs: pip install implicit; pip install --no-build-isolation lightfm.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's own advice for its ALS

import numpy as np
import scipy.sparse as sp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    users, items = [], []
    with open(path) as f:
        f.readline()
        for line in f:
            u, i, _ = line.rstrip("\n").split("\t")
            users.append(u)
            items.append(i)
    return users, items


def load(split):
    tu, ti = read(os.path.join(split, "train.tsv"))
    su, si = read(os.path.join(split, "test.tsv"))
    uid = {u: k for k, u in enumerate(dict.fromkeys(tu + su))}
    iid = {i: k for k, i in enumerate(dict.fromkeys(ti))}
    negatives = None
    neg_path = os.path.join(split, "test_negatives.tsv")
    if os.path.exists(neg_path):
        # Sampled ranking, as evaluate-split does when this file exists.
        negatives = {}
        with open(neg_path) as f:
            f.readline()
            for line in f:
                u, items = line.rstrip("\n").split("\t")
                negatives[uid[u]] = [iid.get(i, -1) for i in items.split(",") if i]
    rows = np.array([uid[u] for u in tu])
    cols = np.array([iid[i] for i in ti])
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(uid), len(iid)))
    m.sum_duplicates()
    m.data[:] = 1.0
    test = {}
    for u, i in zip(su, si):
        test.setdefault(uid[u], set()).add(iid.get(i, -1 - len(test)))  # unknown items cannot be hit
    return m, test, negatives


def metrics(scores_fn, m, test, negatives=None, k_ndcg=10, k_map=50):
    ndcg, mapk = [], []
    users = sorted(test)
    for start in range(0, len(users), 512):
        batch = users[start:start + 512]
        s = scores_fn(np.array(batch))
        for row, u in zip(s, batch):
            row = row.astype(np.float64).copy()
            t = test[u]
            if negatives is not None:
                # Held-out items among the given negatives; unknown items score -inf.
                cands = sorted({i for i in t | set(negatives[u])})
                sc = np.array([row[i] if i >= 0 else -np.inf for i in cands])
                top = [cands[k] for k in np.argsort(-sc, kind="stable")[:k_map]]
            else:
                seen = m.indices[m.indptr[u]:m.indptr[u + 1]]
                row[seen] = -np.inf
                top = np.argsort(-row, kind="stable")[:k_map]
            hits = [1 if int(i) in t else 0 for i in top]
            dcg = sum(h / math.log2(p + 2) for p, h in enumerate(hits[:k_ndcg]))
            idcg = sum(1 / math.log2(p + 2) for p in range(min(k_ndcg, len(t))))
            ndcg.append(dcg / idcg)
            acc, ap = 0, 0.0
            for p, h in enumerate(hits, 1):
                if h:
                    acc += 1
                    ap += acc / p
            mapk.append(ap / min(k_map, len(t)))
    return float(np.mean(ndcg)), float(np.mean(mapk))


def tandem_once(split, model, params, threads):
    exe = os.path.join(ROOT, "target", "release", "tandem")
    with tempfile.TemporaryDirectory() as out:
        # No per-epoch validation: the peers do not validate either, so fit times compare equal work.
        args = [exe, "-q", "evaluate-split", split, "--model", model, "--ks", "10,50", "--valid-metric", "none", "--out", out]
        for k, v in params.items():
            args += ["--param", f"{k}={v}"]
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
        rep = next(iter(json.load(open(os.path.join(out, "report.json")))["models"].values()))
    return rep["fit_seconds"], rep["metrics"]["NDCG@10"], rep["metrics"]["MAP@50"]


def side_by_side(fit_peer, split, model, params, repeat, threads):
    """Alternates Tandem and peer fits so both see the same machine load; medians."""
    ours, peer, result, last = [], [], None, None
    for _ in range(repeat):
        sec, n, mp = tandem_once(split, model, params, threads)
        ours.append(sec)
        result = (n, mp)
        t0 = time.perf_counter()
        last = fit_peer()
        peer.append(time.perf_counter() - t0)
    return (statistics.median(ours), *result), statistics.median(peer), last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--als-iterations", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--lightfm-epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-lightfm", action="store_true")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path", os.path.join(ROOT, "Cargo.toml")], check=True)
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking

    m, test, negatives = load(a.split)
    f, t = a.factors, a.threads
    rows = []

    # ALS: the same model in both (implicit's alpha = ours + 1), regularization 10.
    def fit_als():
        model = AlternatingLeastSquares(factors=f, iterations=a.als_iterations, regularization=10.0, alpha=1.0,
                                        num_threads=t, random_state=42)
        model.fit(m, show_progress=False)
        return model
    ours, sec, model = side_by_side(fit_als, a.split, "als",
                                    {"factors": f, "iterations": a.als_iterations, "regularization": 10, "alpha": 0}, a.repeat, t)
    uf, itf = np.asarray(model.user_factors), np.asarray(model.item_factors)
    n, mp = metrics(lambda us: uf[us] @ itf.T, m, test, negatives)
    rows.append(("ALS", "implicit", ours, (sec, n, mp)))

    # BPR: equal epochs and one negative per positive each (equal numbers of updates).
    def fit_bpr():
        model = BayesianPersonalizedRanking(factors=f, iterations=a.epochs, num_threads=t, random_state=42)
        model.fit(m, show_progress=False)
        return model
    # implicit's BPR is plain SGD; Tandem runs the same rule (optimizer sgd) for the timing row
    # and its default (Adagrad) for a second row.
    for name, opt in (("BPR (SGD)", "sgd"), ("BPR (Tandem Adagrad)", "adagrad")):
        params = {"factors": f, "epochs": a.epochs, "negatives": 1, "patience": 0, "optimizer": opt}
        if opt == "sgd":
            params["learning_rate"] = 0.05
        ours, sec, model = side_by_side(fit_bpr, a.split, "mf", params, a.repeat, t)
        uf, itf = np.asarray(model.user_factors), np.asarray(model.item_factors)
        n, mp = metrics(lambda us: uf[us] @ itf.T, m, test, negatives)
        rows.append((name, "implicit BPR", ours, (sec, n, mp)))

    if not a.skip_lightfm:
        from lightfm import LightFM
        coo = m.tocoo()
        for loss in ("warp", "bpr"):
            def fit_lfm():
                model = LightFM(no_components=f, loss=loss, random_state=42)
                model.fit(coo, epochs=a.lightfm_epochs, num_threads=t)
                return model
            params = {"factors": f, "epochs": a.lightfm_epochs, "negatives": 1, "patience": 0}
            ours, sec, model = side_by_side(fit_lfm, a.split, "mf", params, a.repeat, t)
            ub, uemb = model.get_user_representations()
            ib, iemb = model.get_item_representations()
            n, mp = metrics(lambda us: uemb[us] @ iemb.T + ib[None, :], m, test, negatives)
            rows.append((f"MF-BPR vs LightFM {loss.upper()}", "lightfm", ours, (sec, n, mp)))

    print(f"\nsplit {a.split}: {m.shape[0]} users, {m.shape[1]} items, {m.nnz} train pairs; "
          f"factors {f}, threads {t}, median of {a.repeat} fits")
    print("| model | peer | Tandem NDCG@10 | peer NDCG@10 | Tandem MAP@50 | peer MAP@50 | Tandem fit s | peer fit s | peer/Tandem |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, peer, (ts, tn, tm), (ps, pn, pm) in rows:
        print(f"| {name} | {peer} | {tn:.4f} | {pn:.4f} | {tm:.4f} | {pm:.4f} | {ts:.2f} | {ps:.2f} | {ps / ts:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
