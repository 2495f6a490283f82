#!/usr/bin/env python3
"""Tandem's two-tower model rebuilt in PyTorch (CPU), for a side-by-side training-throughput
comparison on the same split, model, batch and thread count (bench/two_tower_throughput.sh).

Model and training as crates/tandem-neural/src/two_tower.rs: per side an ID embedding (256),
an MLP 256-256-192-128 (dropout 0.1 on each layer's input, ReLU between layers, linear last) and
an L2 norm; InfoNCE at temperature 0.1 over in-batch negatives, off-diagonal cells of the same
user or the same item masked, logQ correction from Laplace-smoothed train popularity; AdamW
(weight decay 0.01) with a 100-step linear warm-up on the MLPs; the embeddings are sparse with
SparseAdam (row-wise lazy Adam, what Tandem does; --dense-embeddings uses dense gradients and
AdamW instead, PyTorch's default).

Usage: bench/two_tower_torch.py SPLIT_DIR [--epochs 3] [--batch-size 1024] [--threads 2]
Prints one JSON line per epoch: {"epoch", "loss", "seconds", "examples", "examples_per_s"}.
Needs: pip install torch.
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_pairs(path):
    users, items = {}, {}
    pairs = []
    with open(path) as f:
        f.readline()
        for line in f:
            u, i = line.rstrip("\n").split("\t")[:2]
            pairs.append((users.setdefault(u, len(users)), items.setdefault(i, len(items))))
    # Distinct pairs, as Tandem's user x item matrix holds them.
    pairs = np.array(sorted(set(pairs)), dtype=np.int64)
    return pairs, len(users), len(items)


class Tower(nn.Module):
    def __init__(self, rows, widths, dropout, dense):
        super().__init__()
        self.emb = nn.Embedding(rows, widths[0], sparse=not dense)
        nn.init.normal_(self.emb.weight, std=0.1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.dropout = dropout

    def forward(self, ids):
        x = self.emb(ids)
        for k, layer in enumerate(self.layers):
            x = layer(F.dropout(x, self.dropout, self.training))
            if k + 1 < len(self.layers):
                x = F.relu(x)
        return F.normalize(x, dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--dense-embeddings", action="store_true")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    pairs, n_users, n_items = read_pairs(f"{a.split}/train.tsv")
    counts = np.bincount(pairs[:, 1], minlength=n_items) + 1.0
    logq = torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)
    widths = [256, 256, 192, 128]
    user, item = Tower(n_users, widths, 0.1, a.dense_embeddings), Tower(n_items, widths, 0.1, a.dense_embeddings)
    mlp = list(user.layers.parameters()) + list(item.layers.parameters())
    embs = [user.emb.weight, item.emb.weight]
    dense_opt = torch.optim.AdamW(mlp + (embs if a.dense_embeddings else []), lr=a.lr, weight_decay=0.01)
    opts = [dense_opt] if a.dense_embeddings else [dense_opt, torch.optim.SparseAdam(embs, lr=a.lr)]
    warmup = lambda step: min(1.0, (step + 1) / 100)
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, warmup) for o in opts]
    t_pairs = torch.from_numpy(pairs)
    rng = torch.Generator().manual_seed(a.seed)
    for epoch in range(1, a.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(len(t_pairs), generator=rng)
        loss_sum, batches = 0.0, 0
        for s in range(0, len(order), a.batch_size):
            batch = t_pairs[order[s : s + a.batch_size]]
            if len(batch) < 2:
                continue
            u_ids, i_ids = batch[:, 0], batch[:, 1]
            logits = user(u_ids) @ item(i_ids).T / a.temperature - logq[i_ids][None, :]
            same = (u_ids[:, None] == u_ids[None, :]) | (i_ids[:, None] == i_ids[None, :])
            same.fill_diagonal_(False)
            logits = logits.masked_fill(same, float("-inf"))
            loss = F.cross_entropy(logits, torch.arange(len(batch)))
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o, sch in zip(opts, scheds):
                o.step()
                sch.step()
            loss_sum += loss.item()
            batches += 1
        seconds = time.perf_counter() - start
        print(json.dumps({
            "epoch": epoch,
            "loss": loss_sum / max(batches, 1),
            "seconds": seconds,
            "examples": len(pairs),
            "examples_per_s": len(pairs) / seconds,
        }), flush=True)


if __name__ == "__main__":
    main()
