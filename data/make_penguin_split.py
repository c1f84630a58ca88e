#!/usr/bin/python3
"""Writes penguins_train.csv / penguins_val.csv: the lab's preparation of penguins.csv and its
70/30 split, reproducing sklearn.model_selection.train_test_split(test_size=0.3, random_state=0)
with numpy alone (ShuffleSplit: test = permutation[:n_test], train = permutation[n_test:])."""
import csv
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ISLANDS = ["Biscoe", "Dream", "Torgersen"]

rows = []
with open(os.path.join(HERE, "penguins.csv"), newline="") as f:
    for r in csv.DictReader(f):
        if any(v in ("", "NA", "NaN") for v in r.values()):
            continue
        rows.append([ISLANDS.index(r["Island"]), np.float32(r["CulmenLength"]), np.float32(r["CulmenDepth"]),
                     np.float32(np.float64(np.float32(r["FlipperLength"])) / 10),
                     np.float32(np.float64(np.float32(r["BodyMass"])) / 100), int(r["Species"])])
rows = rows + rows
rows = rows + rows
n = len(rows)
n_test = math.ceil(0.3 * n)
perm = np.random.RandomState(0).permutation(n)
split = {"val": perm[:n_test], "train": perm[n_test:]}
header = ["Island", "CulmenLength", "CulmenDepth", "FlipperScaled", "MassScaled", "Species"]
for name, idx in split.items():
    with open(os.path.join(HERE, f"penguins_{name}.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for i in idx:
            r = rows[i]
            w.writerow([r[0]] + ["%.9g" % v for v in r[1:5]] + [r[5]])
print(f"{n} rows: train {n - n_test}, validation {n_test}")
