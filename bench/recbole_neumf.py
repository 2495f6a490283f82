"""RecBole 1.2.1's NeuMF on a Tandem split directory (train.tsv / valid.tsv / test.tsv and
test_negatives.tsv), for a side-by-side with `tandem evaluate-split --model neumf`.

RecBole trains on train.tsv with its defaults for NeuMF (early stopping on valid.tsv, its own
100 uniform negatives per validation user); the fitted model is then scored on the split's own
test_negatives.tsv, so both libraries rank the very same 101 items per test user. HR@10 and
NDCG@10 follow SPEC section 6 (one held-out item: NDCG = 1/log2(p+1) for a hit at p <= 10; ties
count against the positive). RecBole's own uni100 test figures are printed beside them.

Usage: python bench/recbole_neumf.py SPLIT_DIR [--epochs N] [--threads N]
Prints one JSON line: fit seconds (training incl. per-epoch validation), epochs run, HR@10, NDCG@10.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time


def write_atomic(src, dst):
    """A Tandem `user item timestamp` TSV as a RecBole .inter atomic file."""
    with open(src) as f, open(dst, "w") as out:
        header = f.readline().rstrip("\n").split("\t")
        if header[:2] != ["user", "item"]:
            sys.exit(f"{src}: expected a `user item timestamp` header, got {header}")
        out.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line in f:
            u, i, t = line.rstrip("\n").split("\t")[:3]
            out.write(f"{u}\t{i}\t{t}\n")


def read_pairs(path):
    with open(path) as f:
        next(f)
        return [line.rstrip("\n").split("\t")[:2] for line in f]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split")
    ap.add_argument("--epochs", type=int, default=300, help="RecBole's default, with early stopping")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    # RecBole reloads its own best checkpoint (a full pickle) with torch.load, whose default
    # became weights-only in PyTorch 2.6; the file is the one this run just wrote.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    # RecBole 1.2.1 aliases NumPy 1 names that NumPy 2 removed; give it those names back.
    for old, new in [("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)]:
        if not hasattr(np, old):
            setattr(np, old, new)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import NeuMF
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    work = tempfile.mkdtemp()
    os.makedirs(f"{work}/split")
    for part in ["train", "valid", "test"]:
        write_atomic(f"{args.split}/{part}.tsv", f"{work}/split/split.{part}.inter")
    config = Config(
        model="NeuMF",
        dataset="split",
        config_dict={
            "data_path": work,
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "eval_args": {"group_by": "user", "order": "TO", "mode": "uni100"},
            "metrics": ["Hit", "NDCG"],
            "topk": [10],
            "valid_metric": "Hit@10",
            "epochs": args.epochs,
            "device": "cpu",
            "use_gpu": False,
            "show_progress": False,
            "checkpoint_dir": f"{work}/saved",
            "seed": 2020,
            "reproducibility": True,
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model = NeuMF(config, train.dataset).to("cpu")
    trainer = Trainer(config, model)
    start = time.perf_counter()
    trainer.fit(train, valid, saved=True, show_progress=False)
    fit_seconds = time.perf_counter() - start
    own = trainer.evaluate(test, load_best_model=True, show_progress=False)

    # Score the split's own negatives with the best model.
    model.eval()
    uid = dataset.field2token_id["user_id"]
    iid = dataset.field2token_id["item_id"]
    negatives = {}
    with open(f"{args.split}/test_negatives.tsv") as f:
        next(f)
        for line in f:
            u, items = line.rstrip("\n").split("\t")
            negatives[u] = items.split(",")
    hr = ndcg = 0.0
    users = 0
    for u, pos in read_pairs(f"{args.split}/test.tsv"):
        if u not in uid or pos not in iid:
            # Users or items unseen in training score no hit (the positive cannot be ranked).
            users += 1
            continue
        items = [pos] + [i for i in negatives[u] if i in iid]
        from recbole.data.interaction import Interaction

        inter = Interaction(
            {
                "user_id": torch.full((len(items),), uid[u], dtype=torch.long),
                "item_id": torch.tensor([iid[i] for i in items], dtype=torch.long),
            }
        )
        with torch.no_grad():
            s = model.predict(inter).numpy()
        p = 1 + int(np.sum(s[1:] >= s[0]))
        users += 1
        if p <= 10:
            hr += 1
            ndcg += 1 / math.log2(p + 1)
    print(
        json.dumps(
            {
                "library": "recbole",
                "fit_seconds": round(fit_seconds, 1),
                "epochs_run": len(trainer.train_loss_dict),
                "best_valid": float(trainer.best_valid_score),
                "HR@10": round(hr / users, 4),
                "NDCG@10": round(ndcg / users, 4),
                "recbole_uni100_test": {k: float(v) for k, v in own.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
