#!/usr/bin/env python3
"""PyTorch side of krill's DistributedSampler test (tests/dist/test_dist.cpp).

Usage: dist_sampler_oracle.py <out_file> <seed>
Writes one line per case, with the indices torch.utils.data.distributed.DistributedSampler
(PyTorch 1.13) yields for it:
    <n> <num_replicas> <rank> <shuffle 0|1> <seed> <epoch> <drop_last 0|1> : <index> <index> ...
Cases: a fixed grid (empty and tiny datasets, n < num_replicas, padding longer than the data,
drop_last with and without a remainder, the lab's 957 rows) plus random ones from <seed>.
"""
import random
import sys

import torch
from torch.utils.data.distributed import DistributedSampler


class Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def main():
    out, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    cases = []
    for n in [0, 1, 2, 3, 5, 7, 10, 957]:
        for replicas in [1, 2, 3, 4, 8]:
            for drop_last in [False, True]:
                for shuffle in [False, True]:
                    for rank in sorted({0, replicas - 1, replicas // 2}):
                        cases.append((n, replicas, rank, shuffle, 0, 0, drop_last))
    for _ in range(60):
        replicas = rng.randint(1, 9)
        cases.append((rng.randint(0, 3000), replicas, rng.randrange(replicas), rng.random() < 0.7,
                      rng.randrange(2**31), rng.randint(0, 50), rng.random() < 0.5))
    with open(out, "w") as f:
        for (n, replicas, rank, shuffle, s, epoch, drop_last) in cases:
            sampler = DistributedSampler(Sized(n), num_replicas=replicas, rank=rank, shuffle=shuffle, seed=s,
                                         drop_last=drop_last)
            sampler.set_epoch(epoch)
            idx = list(iter(sampler))
            assert len(idx) == len(sampler)
            f.write(f"{n} {replicas} {rank} {int(shuffle)} {s} {epoch} {int(drop_last)} : {' '.join(map(str, idx))}\n")


if __name__ == "__main__":
    main()
