#!/usr/bin/python3
"""Oracle for tests/data/test_tabular.cpp: tabular preparation computed with pandas + scikit-learn.

  tabular_oracle.py lab CSV OUTDIR         the penguin lab's preparation, as its pandas port does it
                                           (dropna, Island mapping, float32 casts, /10 and /100,
                                           two unions = x4, train_test_split(test_size=0.3,
                                           random_state=0)), plus StandardScaler fitted on the
                                           training split, plus the leakage count
  tabular_oracle.py split OUTDIR CASES     CASES = JSON [[n, test_size, seed], ...]: the indices of
                                           train_test_split(arange(n), test_size, random_state=seed)
  tabular_oracle.py general OUTDIR SPEC    SPEC = JSON: the recipe krill's prepare() follows, done
                                           with pandas/sklearn (see general() below)

Arrays are written as raw little-endian files NAME.f32 / NAME.i64 in OUTDIR, scalars and lists to
OUTDIR/meta.json. Needs Debian's python3-pandas and python3-sklearn (scripts/setup-deps.sh --tests).
"""
import json
import os
import sys

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

NA_VALUES = ["", "NA", "NaN", "nan", "N/A", "null"]  # krill's CsvOptions default missing values


def write(outdir, name, array, dtype):
    np.ascontiguousarray(np.asarray(array), dtype=dtype).astype(np.dtype(dtype).newbyteorder("<")).tofile(
        os.path.join(outdir, name))


def leaked_rows(x_train, y_train, x_val, y_val):
    """Validation rows equal (features and label) to some training row, counted with a pandas merge."""
    cols = [f"f{i}" for i in range(x_train.shape[1])]
    tr = pd.DataFrame(x_train, columns=cols)
    tr["y"] = np.asarray(y_train, dtype=np.int64)
    va = pd.DataFrame(x_val, columns=cols)
    va["y"] = np.asarray(y_val, dtype=np.int64)
    m = va.merge(tr.drop_duplicates(), how="left", on=cols + ["y"], indicator=True)
    assert len(m) == len(va)
    return int((m["_merge"] == "both").sum())


def write_split(outdir, meta, x_train, x_val, y_train, y_val, scaler=None):
    write(outdir, "train_x.f32", x_train, np.float32)
    write(outdir, "val_x.f32", x_val, np.float32)
    write(outdir, "train_y.i64", y_train, np.int64)
    write(outdir, "val_y.i64", y_val, np.int64)
    meta.update(n_train=int(len(y_train)), n_val=int(len(y_val)), leaked=leaked_rows(x_train, y_train, x_val, y_val))
    if scaler is not None:
        meta.update(mean=[float(v) for v in scaler.mean_], std=[float(v) for v in scaler.scale_])
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f)


def lab(csv_path, outdir):
    # The lab's Spark pipeline as the peer benchmarks' pandas port does it (bench/peers/common.py).
    islands = ["Biscoe", "Dream", "Torgersen"]
    features = ["Island", "CulmenLength", "CulmenDepth", "FlipperScaled", "MassScaled"]
    df = pd.read_csv(csv_path).dropna()
    data = pd.DataFrame({
        "Island": df["Island"].map({name: i for i, name in enumerate(islands)}).astype("int32"),
        "CulmenLength": df["CulmenLength"].astype("float32"),
        "CulmenDepth": df["CulmenDepth"].astype("float32"),
        "FlipperScaled": df["FlipperLength"].astype("float32").astype("float64") / 10,
        "MassScaled": df["BodyMass"].astype("float32").astype("float64") / 100,
        "Species": df["Species"].astype("int32"),
    })
    for _ in range(1, 3):  # data = data.union(data), twice: x4
        data = pd.concat([data, data], ignore_index=True)
    x_train, x_val, y_train, y_val = train_test_split(data[features].values.astype("float32"), data["Species"].values,
                                                      test_size=0.30, random_state=0)
    write_split(outdir, {"rows_read": int(len(pd.read_csv(csv_path))), "rows_kept": int(len(df))},
                x_train, x_val, y_train, y_val)
    # The same with StandardScaler fitted on the training split.
    scaler = StandardScaler().fit(x_train)
    write(outdir, "std_train_x.f32", scaler.transform(x_train), np.float32)
    write(outdir, "std_val_x.f32", scaler.transform(x_val), np.float32)
    with open(os.path.join(outdir, "meta.json")) as f:
        meta = json.load(f)
    meta.update(mean=[float(v) for v in scaler.mean_], std=[float(v) for v in scaler.scale_],
                std_leaked=leaked_rows(scaler.transform(x_train), y_train, scaler.transform(x_val), y_val))
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f)


def split(outdir, cases):
    for k, (n, test_size, seed) in enumerate(json.loads(cases)):
        train, test = train_test_split(np.arange(n, dtype=np.int64), test_size=test_size, random_state=seed)
        write(outdir, f"split{k}_train.i64", train, np.int64)
        write(outdir, f"split{k}_test.i64", test, np.int64)
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump({"cases": len(json.loads(cases))}, f)


def general(outdir, spec_text):
    """krill's recipe with pandas/sklearn. SPEC keys: csv, val_csv (pre-split), label, features
    (null = all but the label), categorical, scale {col: factor} (multiply), divide {col: d}
    (divide, like the lab's /10), standardize, dropna, oversample, test_size, seed."""
    spec = json.loads(spec_text)
    label = spec["label"]
    categorical = spec.get("categorical", [])
    as_text = {c: str for c in categorical + [label]}

    def read(path):
        return pd.read_csv(path, dtype=as_text, keep_default_na=False, na_values=NA_VALUES)

    df = read(spec["csv"])
    features = spec.get("features") or [c for c in df.columns if c != label]
    used = features + [label]
    if spec.get("dropna", True):
        df = df.dropna(subset=used)

    # Fitted on the (training) table: categories in sorted order, classes.
    cats = {c: sorted(df[c].unique()) for c in categorical if c in features}
    values = list(df[label])
    try:
        ids = [int(v) for v in values] if label not in categorical else None
    except ValueError:
        ids = None
    integer = ids is not None and min(ids) >= 0
    classes = [str(i) for i in range(max(ids) + 1)] if integer else sorted(set(values))

    def encode(d):
        cols = []
        for c in features:
            if c in cats:
                col = d[c].map({v: i for i, v in enumerate(cats[c])}).astype("float64")
            else:
                col = d[c].astype("float32").astype("float64")
            if c in spec.get("divide", {}):
                col = col / spec["divide"][c]
            elif c in spec.get("scale", {}):
                col = col * spec["scale"][c]
            cols.append(col.values)
        x = np.column_stack(cols).astype("float32")
        y = np.array([int(v) for v in d[label]] if integer else [classes.index(v) for v in d[label]], dtype=np.int64)
        return x, y

    x, y = encode(df)
    k = spec.get("oversample", 1)
    meta = {"classes": classes, "integer_labels": bool(integer), "categories": cats, "rows_kept": int(len(df))}
    if "val_csv" in spec:
        vdf = read(spec["val_csv"])
        if spec.get("dropna", True):
            vdf = vdf.dropna(subset=used)
        x_val, y_val = encode(vdf)
        x_train, y_train = np.concatenate([x] * k), np.concatenate([y] * k)
    else:
        x_train, x_val, y_train, y_val = train_test_split(np.concatenate([x] * k), np.concatenate([y] * k),
                                                          test_size=spec.get("test_size", 0.3),
                                                          random_state=spec.get("seed", 0))
    scaler = None
    if spec.get("standardize", False):
        scaler = StandardScaler().fit(x_train)
        x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    write_split(outdir, meta, x_train, x_val, y_train, y_val, scaler)


def main():
    mode = sys.argv[1]
    if mode == "lab":
        lab(sys.argv[2], sys.argv[3])
    elif mode == "split":
        split(sys.argv[2], sys.argv[3])
    elif mode == "general":
        general(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"tabular_oracle.py: unknown mode {mode!r}")


if __name__ == "__main__":
    main()
