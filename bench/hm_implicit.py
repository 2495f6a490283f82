"""implicit's ALS beside Tandem's on the same H&M-layout rows (bench/hm_scale.sh runs it).

Reads transactions_train.csv (and customers.csv for the customer list), keeps the rows before
the last 7 days exactly as Tandem's `time_window: 7` split does (a row is test when its day is
after the last day minus 7), fits ALS with the given factors / iterations / threads, then
recommends the top 12 for every customer (those without training rows too: implicit gives them
its zero vector's list), in batches, filtering nothing. Prints one JSON line of timings.

usage: python bench/hm_implicit.py DIR --factors 64 --iterations 15 --threads 2
"""

import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--regularization", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--days", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares

    t0 = time.time()
    convert = pacsv.ConvertOptions(
        include_columns=["t_dat", "customer_id", "article_id"],
        column_types={"t_dat": pa.string(), "customer_id": pa.string(), "article_id": pa.string()},
    )
    log = pacsv.read_csv(os.path.join(args.dir, "transactions_train.csv"), convert_options=convert)
    customers = pacsv.read_csv(
        os.path.join(args.dir, "customers.csv"),
        convert_options=pacsv.ConvertOptions(include_columns=["customer_id"], column_types={"customer_id": pa.string()}),
    )["customer_id"]
    days = pc.cast(pc.strptime(log["t_dat"], format="%Y-%m-%d", unit="s"), pa.int64()).to_numpy() // 86400
    train = days <= days.max() - args.days
    # Users are the customers (customers.csv order, then any others); items the articles seen.
    all_users = pa.concat_arrays([customers.combine_chunks(), log["customer_id"].combine_chunks()])
    user_dict = pc.unique(all_users)
    users = pc.index_in(log["customer_id"], value_set=user_dict).to_numpy()
    items_enc = pc.dictionary_encode(log["article_id"]).combine_chunks()
    items = items_enc.indices.to_numpy()
    n_users, n_items = len(user_dict), len(items_enc.dictionary)
    m = sp.csr_matrix(
        (np.ones(train.sum(), dtype=np.float32), (users[train], items[train])), shape=(n_users, n_items)
    )
    m.sum_duplicates()
    # The same model as Tandem's `alpha: 1`: confidence 1 + count there, alpha * value here.
    m.data += 1.0
    load_s = time.time() - t0
    print(f"implicit side: {m.nnz} pairs from {train.sum()} training rows, {n_users} users, {n_items} items, "
          f"read in {load_s:.1f}s", file=sys.stderr)

    model = AlternatingLeastSquares(
        factors=args.factors,
        iterations=args.iterations,
        regularization=args.regularization,
        alpha=1.0,
        num_threads=args.threads,
        random_state=42,
        calculate_training_loss=False,
    )
    t = time.time()
    model.fit(m, show_progress=False)
    fit_s = time.time() - t

    t = time.time()
    batch = 65536
    for start in range(0, n_users, batch):
        ids = np.arange(start, min(start + batch, n_users))
        model.recommend(ids, m[ids], N=12, filter_already_liked_items=False)
    recommend_s = time.time() - t
    print(json.dumps({
        "implicit": __import__("implicit").__version__,
        "factors": args.factors, "iterations": args.iterations, "threads": args.threads,
        "training_rows": int(train.sum()), "users": n_users, "items": n_items,
        "fit_s": round(fit_s, 2), "recommend_all_s": round(recommend_s, 2),
    }))


if __name__ == "__main__":
    main()
