#!/usr/bin/env python3
"""Carve a validation split out of a split directory's train.tsv, never touching test.

Usage: bench/validation_split.py SPLIT_DIR OUT_DIR [--last N | --ratio F] [--seed S]

--last N (default 5): per user, train rows sorted by (timestamp, item id numerically) — the rule
of the canonical temporal split — the last N go to OUT_DIR/test.tsv and the rest to
OUT_DIR/train.tsv; users with fewer than N + 1 rows stay wholly in train.
--ratio F: per user, a random floor(F * n) rows (seeded) go to OUT_DIR/test.tsv — the rule of the
canonical ratio split. Tune on OUT_DIR, report on SPLIT_DIR.
"""
import argparse
import collections
import os
import random


def key(item):
    return (0, int(item), item) if item.isdigit() else (1, 0, item)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--last", type=int, default=5)
    ap.add_argument("--ratio", type=float, default=None)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    rows = collections.defaultdict(list)
    with open(os.path.join(a.split_dir, "train.tsv")) as f:
        header = f.readline()
        for line in f:
            u, i, t = line.rstrip("\n").split("\t")
            rows[u].append((int(float(t)), key(i), i, t))
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "train.tsv"), "w") as tr, open(os.path.join(a.out_dir, "test.tsv"), "w") as te:
        tr.write(header)
        te.write(header)
        for u, rs in rows.items():
            rs.sort()
            if a.ratio is not None:
                rng.shuffle(rs)
                n_test = int(a.ratio * len(rs))
                cut = len(rs) - n_test if n_test >= 1 and len(rs) > n_test else len(rs)
            else:
                cut = len(rs) - a.last if len(rs) >= a.last + 1 else len(rs)
            for n, (_, _, i, t) in enumerate(rs):
                (tr if n < cut else te).write(f"{u}\t{i}\t{t}\n")


if __name__ == "__main__":
    main()
