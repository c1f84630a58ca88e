#!/usr/bin/python3
"""Oracle for tests/cli/test_generality.cpp: synthetic tabular CSVs unlike the penguins, and a
PyTorch MLP trained on each with the recipe `krill train` follows.

  generality_oracle.py run OUTDIR SPEC

SPEC = JSON {"dataset": NAME, "rows": N, "data_seed": S, "seed": T, "test_size": 0.3,
"standardize": bool, "hidden": [16, 16], "batch_size": 16, "epochs": 40, "lr": 0.01}.

Writes OUTDIR/NAME.csv (the raw table, seeded by data_seed) and OUTDIR/NAME_complete.csv (its
rows that have every used column, written the same way: what `krill predict --input` can
predict), trains PyTorch on NAME.csv and prints one JSON line: the recipe the dataset is meant
for (label, features, categorical), the classes, row counts, the per-epoch curve and the final
validation accuracy, and the trained model's accuracy on NAME_complete.csv.

The recipe, as krill documents it: pandas.read_csv (missing values "", NA, NaN, nan, N/A, null;
categorical and label columns as text), dropna on the used columns only, categorical values ->
index in their sorted order (fitted on all kept rows), string labels -> index in sorted order,
numbers as float32, train_test_split(test_size, random_state=seed), optional StandardScaler
fitted on the training split (on every feature column, like krill), then torch.manual_seed(seed),
the MLP fc1..fcN (Linear + ReLU, log_softmax output), CrossEntropyLoss on the log_softmax output,
Adam(lr), DataLoader(batch_size, shuffle=True), validation after every epoch.

The datasets (every one has a label made of words, several categorical columns, numeric columns
with missing values written as NA, NaN or empty, a quoted free-text column and an id column that
are not used, and header names with spaces, parentheses or punctuation):
  customers  4 plans (basic, plus, premium, trial) from age, income, visits, region and channel
             (categories such as `North, Upper` and `East "Coast"`, written CSV-quoted), plus
             noise; notes with commas, quotes and line breaks inside quotes; LF line endings.
  sensors    3 states (alpha, beta, gamma) from a non-linear rule on temperature, pressure,
             humidity, vibration (tiny scale) and site; a non-ASCII header (`Temp (°C)`); CRLF
             line endings.
  animals    4 species with spaces and a comma in their names (`brown bear`, `lynx, Eurasian`,
             ...) from weight, length, habitat and season; values already of order 1 (trained
             without --standardize); a categorical column of integer-looking codes (sorted as
             text: 1, 10, 2, ...); LF line endings.
"""
import csv
import io
import json
import os
import sys

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

NA_VALUES = ["", "NA", "NaN", "nan", "N/A", "null"]  # krill's CsvOptions default missing values

WORDS = ["late", "delivery", "asked", "about", "refund", "great", "service", "call back", "VIP", "moved",
         "price", "complaint", "happy", "new card", "upgrade", "rude", "fast", "again", "N/A", "email"]


def free_text(rng, allow_newline=True):
    """A free-text note: commas, doubled quotes, sometimes a line break, sometimes empty or NA."""
    r = rng.random()
    if r < 0.05:
        return ""
    if r < 0.08:
        return "NA"
    n = int(rng.integers(1, 7))
    words = [WORDS[int(i)] for i in rng.integers(0, len(WORDS), n)]
    text = ", ".join(words) if rng.random() < 0.5 else " ".join(words)
    if rng.random() < 0.3:
        text = f'said "{text}"'
    if allow_newline and rng.random() < 0.1:
        text += "\nfollow-up: " + WORDS[int(rng.integers(0, len(WORDS)))]
    return text


def missing(rng, value, p, tokens=("NA", "", "NaN")):
    """value as text, or (with probability p) one of the missing-value tokens."""
    if rng.random() < p:
        return tokens[int(rng.integers(0, len(tokens)))]
    return value


def by_quantiles(score, names):
    """Class names from a continuous score cut at its quantiles (balanced classes)."""
    cuts = np.quantile(score, np.linspace(0, 1, len(names) + 1)[1:-1])
    return [names[int(i)] for i in np.searchsorted(cuts, score)]


def customers(rng, n):
    regions = ["North, Upper", "South", 'East "Coast"', "West", 'Central, "Old" Town']
    region_effect = [0.8, -0.5, 0.3, -0.9, 0.2]
    channels = ["web", "store", "phone, call centre"]
    channel_effect = [0.4, -0.3, 0.0]
    age = rng.normal(42, 12, n).clip(18, 90)
    income = rng.lognormal(np.log(55), 0.45, n)
    visits = rng.poisson(4, n) + rng.random(n).round(1)
    region = rng.integers(0, len(regions), n)
    channel = rng.integers(0, len(channels), n)
    score = (0.05 * (age - 42) + 0.035 * (income - 60) + 0.35 * (visits - 4) + np.take(region_effect, region)
             + np.take(channel_effect, channel) + rng.normal(0, 0.35, n))
    plan = by_quantiles(score, ["trial", "basic", "plus", "premium"])
    header = ["Customer ID", "Region", "Channel", "Age (years)", "Income ($k)", "Visits/month", "Notes", "Plan"]
    rows = []
    for i in range(n):
        rows.append([str(10000 + i), regions[region[i]], missing(rng, channels[channel[i]], 0.03, ("", "NA")),
                     missing(rng, f"{age[i]:.0f}", 0.05), missing(rng, f"{income[i]:.2f}", 0.04, ("NaN", "NA")),
                     f"{visits[i]:.1f}", free_text(rng), plan[i]])
    recipe = {"label": "Plan", "features": ["Region", "Channel", "Age (years)", "Income ($k)", "Visits/month"],
              "categorical": ["Region", "Channel"]}
    return header, rows, recipe, "\n"


def sensors(rng, n):
    sites = ["A-1", "B, north", 'C "annex"', "D/2"]
    site = rng.integers(0, len(sites), n)
    temp = rng.normal(21, 6, n)
    pressure = rng.normal(101.3, 2.5, n)
    humidity = rng.uniform(10, 95, n)
    vibration = rng.gamma(2.0, 0.002, n)
    shift = rng.integers(0, 3, n)
    shifts = ["early", "late", "night"]
    # gamma: hot and shaking (or site C with high vibration); beta: humid or low pressure; else alpha
    hot_shaky = (temp + 1500 * vibration + np.where(site == 2, 4.0, 0.0) + rng.normal(0, 1.5, n)) > 31
    damp = (humidity / 10 - (pressure - 101.3) + np.where(shift == 2, 1.0, 0.0) + rng.normal(0, 0.6, n)) > 7
    status = np.where(hot_shaky, "gamma", np.where(damp, "beta", "alpha"))
    header = ["Reading #", "Site (code)", "Shift", "Temp (°C)", "Pressure (kPa)", "Humidity %", "Vibration (g)",
              "Operator comment", "Status"]
    rows = []
    for i in range(n):
        rows.append([str(i + 1), sites[site[i]], shifts[shift[i]], missing(rng, f"{temp[i]:.2f}", 0.04),
                     missing(rng, f"{pressure[i]:.3f}", 0.03, ("NA", "N/A")), missing(rng, f"{humidity[i]:.1f}", 0.05, ("",)),
                     f"{vibration[i]:.6f}", free_text(rng, allow_newline=False), status[i]])
    recipe = {"label": "Status", "features": ["Site (code)", "Shift", "Temp (°C)", "Pressure (kPa)", "Humidity %",
                                              "Vibration (g)"],
              "categorical": ["Site (code)", "Shift"]}
    return header, rows, recipe, "\r\n"


def animals(rng, n):
    species = ["brown bear", "grey wolf", "red fox", "lynx, Eurasian"]
    weight_mu = [2.2, 0.9, 0.3, 0.7]      # hundreds of kg (already of order 1)
    length_mu = [1.9, 1.3, 0.75, 1.0]     # metres
    habitat_pref = [[0.5, 0.3, 0.2], [0.2, 0.6, 0.2], [0.3, 0.2, 0.5], [0.6, 0.3, 0.1]]
    habitats = ["forest", "tundra, open", "farmland"]
    zones = [str(z) for z in (1, 2, 3, 10, 11, 20)]
    s = rng.integers(0, len(species), n)
    weight = rng.normal(np.take(weight_mu, s), 0.18)
    length = rng.normal(np.take(length_mu, s), 0.12)
    habitat = np.array([rng.choice(3, p=habitat_pref[k]) for k in s])
    zone = np.array([rng.choice(len(zones), p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.2] if k < 2 else
                                [0.1, 0.1, 0.2, 0.2, 0.3, 0.1]) for k in s])
    header = ["Sighting", "Habitat", "Zone code", "Weight (100 kg)", "Length (m)", "Observer's remark", "Species"]
    rows = []
    for i in range(n):
        rows.append([f"S-{i:05d}", habitats[habitat[i]], zones[zone[i]], missing(rng, f"{weight[i]:.3f}", 0.06),
                     missing(rng, f"{length[i]:.3f}", 0.02, ("NaN",)), free_text(rng), species[s[i]]])
    recipe = {"label": "Species", "features": ["Habitat", "Zone code", "Weight (100 kg)", "Length (m)"],
              "categorical": ["Habitat", "Zone code"]}
    return header, rows, recipe, "\n"


DATASETS = {"customers": customers, "sensors": sensors, "animals": animals}


def write_csv(path, header, rows, newline):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    w.writerow(header)
    w.writerows(rows)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())


class MLP(nn.Module):  # the network `krill train` builds (as tests/oracle/train_run.py)
    def __init__(self, sizes):
        super().__init__()
        for i in range(len(sizes) - 1):
            setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))
        self.n = len(sizes) - 1

    def forward(self, x):
        for i in range(1, self.n):
            x = torch.relu(getattr(self, f"fc{i}")(x))
        return F.log_softmax(getattr(self, f"fc{self.n}")(x), dim=1)


def run(outdir, spec_text):
    spec = json.loads(spec_text)
    name = spec["dataset"]
    rng = np.random.default_rng(spec.get("data_seed", 0))
    header, rows, recipe, newline = DATASETS[name](rng, spec.get("rows", 1000))
    path = os.path.join(outdir, f"{name}.csv")
    write_csv(path, header, rows, newline)

    label, features, categorical = recipe["label"], recipe["features"], recipe["categorical"]
    used = features + [label]
    df = pd.read_csv(path, dtype={c: str for c in categorical + [label]}, keep_default_na=False, na_values=NA_VALUES)
    assert list(df.columns) == header and len(df) == len(rows), "pandas read the generated file differently"
    kept = df.dropna(subset=used)
    complete = os.path.join(outdir, f"{name}_complete.csv")
    write_csv(complete, header, [rows[i] for i in kept.index], newline)

    cats = {c: sorted(kept[c].unique()) for c in categorical}
    classes = sorted(kept[label].unique())

    def encode(d):
        cols = []
        for c in features:
            if c in cats:
                cols.append(d[c].map({v: i for i, v in enumerate(cats[c])}).astype("float64").values)
            else:
                cols.append(d[c].astype("float32").astype("float64").values)
        x = np.column_stack(cols).astype("float32")
        y = np.array([classes.index(v) for v in d[label]], dtype=np.int64)
        return x, y

    x, y = encode(kept)
    seed = spec.get("seed", 0)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=spec.get("test_size", 0.3), random_state=seed)
    x_all = x
    if spec.get("standardize", False):
        scaler = StandardScaler().fit(x_train)
        x_train, x_val, x_all = (scaler.transform(a).astype("float32") for a in (x_train, x_val, x_all))

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = MLP([x.shape[1]] + list(spec.get("hidden", [16, 16])) + [len(classes)])
    opt = torch.optim.Adam(model.parameters(), lr=spec.get("lr", 0.01))
    tensors = lambda a, b: torch.utils.data.TensorDataset(torch.tensor(a, dtype=torch.float32), torch.tensor(b))
    tl = torch.utils.data.DataLoader(tensors(x_train, y_train), batch_size=spec.get("batch_size", 16), shuffle=True)
    vl = torch.utils.data.DataLoader(tensors(x_val, y_val), batch_size=spec.get("batch_size", 16), shuffle=False)
    loss_fn = nn.CrossEntropyLoss()
    curve = []
    for epoch in range(1, spec.get("epochs", 40) + 1):
        model.train()
        total, nb = 0.0, 0
        for xb, yb in tl:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            total += loss.item()
            loss.backward()
            opt.step()
            nb += 1
        model.eval()
        vtotal, vb, correct = 0.0, 0, 0
        with torch.no_grad():
            for xb, yb in vl:
                out = model(xb)
                vtotal += loss_fn(out, yb).item()
                correct += int((out.argmax(1) == yb).sum())
                vb += 1
        curve.append([epoch, total / nb, vtotal / vb, correct / len(y_val)])
    with torch.no_grad():
        pred_all = model(torch.tensor(x_all, dtype=torch.float32)).argmax(1).numpy()
    majority = max(np.bincount(y_val, minlength=len(classes))) / len(y_val)
    print(json.dumps({
        "csv": path, "complete_csv": complete, "newline": "CRLF" if newline == "\r\n" else "LF",
        "label": label, "features": features, "categorical": categorical, "classes": classes,
        "categories": cats, "rows_read": int(len(df)), "rows_kept": int(len(kept)),
        "n_train": int(len(y_train)), "n_val": int(len(y_val)), "majority_val_accuracy": float(majority),
        "curve": curve, "final_val_accuracy": curve[-1][3],
        "complete_labels": [classes[int(v)] for v in y], "complete_accuracy": float((pred_all == y).mean()),
        "first_complete_row": [rows[kept.index[0]][header.index(c)] for c in features],
    }, ensure_ascii=False))


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "run":
        sys.exit("usage: generality_oracle.py run OUTDIR SPEC_JSON")
    run(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()
