#!/usr/bin/env python3
"""Write a course-format train.csv (UserId,ItemId with space-separated items, in time order)
from a RecBole .inter file, e.g. ../shared/data/ml-100k/ml-100k.inter.

Usage: bench/make_course_file.py INTER_FILE OUT_CSV [--min-rating R]
"""
import argparse
import collections


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inter")
    ap.add_argument("out")
    ap.add_argument("--min-rating", type=float, default=0.0)
    a = ap.parse_args()
    rows = collections.defaultdict(list)
    with open(a.inter) as f:
        header = [h.split(":")[0] for h in f.readline().rstrip("\n").split("\t")]
        ui, ii, ri, ti = (header.index(c) for c in ("user_id", "item_id", "rating", "timestamp"))
        for line in f:
            p = line.rstrip("\n").split("\t")
            if float(p[ri]) >= a.min_rating:
                rows[p[ui]].append((float(p[ti]), p[ii]))
    with open(a.out, "w") as o:
        o.write("UserId,ItemId\n")
        for u in sorted(rows, key=int):
            o.write(u + "," + " ".join(i for _, i in sorted(rows[u])) + "\n")


if __name__ == "__main__":
    main()
