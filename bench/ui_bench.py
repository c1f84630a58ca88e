#!/usr/bin/env python3
"""Generates the dashboard benchmark's run store (bench/ui_bench.mjs runs it; standalone too).

    python3 bench/ui_bench.py --krill build/krill --out /tmp/ui-bench/runs.db [--runs 1000]
                              [--metrics 10] [--steps 1000] [--long-steps 100000]

A one-epoch `krill train` creates the store with krill's own schema (migrations included) and is
deleted again; the rows are then bulk-inserted with Python's sqlite3 in one transaction: RUNS runs in
5 experiments, each with 8 params, 2 tags and METRICS metrics of STEPS points (10 million rows by
default), their latest_metrics rows, and one more run, "long-run", with a single metric of
LONG_STEPS points (the 100k-point chart). Prints one JSON line with the counts and the time taken.
"""
import argparse
import json
import math
import os
import random
import sqlite3
import subprocess
import time
import uuid


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--krill", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--long-steps", type=int, default=100000)
    a = ap.parse_args()

    t0 = time.time()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(a.out + suffix):
            os.remove(a.out + suffix)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "penguins.csv")
    model = a.out + ".schema-model"
    subprocess.run([a.krill, "train", data, "--label", "Species", "--categorical", "Island", "--epochs", "1",
                    "--out", model, "--tracking-uri", a.out, "-q"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", model], check=True)

    db = sqlite3.connect(a.out, isolation_level=None)
    for table in ("metrics", "latest_metrics", "params", "tags", "artifacts", "runs", "experiments"):
        db.execute(f"DELETE FROM {table}")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    rng = random.Random(0)
    now = int(time.time() * 1000)
    experiments = ["mnist-mlp", "penguins", "fashion-cnn", "ablation", "sweep-lr"]
    for i, name in enumerate(experiments):
        db.execute("INSERT INTO experiments (name, created) VALUES (?, ?)", (name, now - 86400000 * 30 + i))
    exp_ids = {name: rid for rid, name in db.execute("SELECT id, name FROM experiments")}
    metric_names = (["train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "grad_norm", "epoch_seconds",
                     "rows_per_s", "val_f1", "weight_norm"] + [f"metric_{k}" for k in range(10, a.metrics)])[:a.metrics]

    def add_run(name, experiment, start, duration_ms, status="FINISHED"):
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        db.execute("INSERT INTO runs (id, name, experiment_id, status, start_time, end_time, command_line, host, pid, "
                   "krill_version, git_commit, heartbeat_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (rid, name, exp_ids[experiment], status, start, start + duration_ms,
                    f"krill train data.csv --label y --out models/{name}", "bench-host", 1000 + len(name), "0.1.0",
                    None, start + duration_ms))
        return rid

    rows = 0
    for i in range(a.runs):
        experiment = experiments[i % len(experiments)]
        start = now - (a.runs - i) * 60000
        status = "FAILED" if i % 37 == 0 else "FINISHED"
        rid = add_run(f"run-{i:04d}", experiment, start, 45000 + (i * 7919) % 30000, status)
        lr = [0.1, 0.03, 0.01, 0.003, 0.001][i % 5]
        params = {"lr": lr, "batch_size": [16, 32, 64, 128][i % 4], "optimizer": ["adam", "sgd", "adamw"][i % 3],
                  "hidden": ["10,10", "64,64", "128,64"][i % 3], "seed": i, "epochs": a.steps,
                  "weight_decay": [0, 1e-4, 1e-2][i % 3], "dropout": [0.0, 0.1, 0.2, 0.5][i % 4]}
        db.executemany("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                       [(rid, k, str(v)) for k, v in params.items()])
        db.executemany("INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                       [(rid, "team", ["vision", "tabular"][i % 2]), (rid, "note", f"sweep point {i}")])
        tau = 50 + (i % 17) * 20
        floor = 0.02 + (i % 11) * 0.01
        for k, key in enumerate(metric_names):
            scale = 1.0 + k * 0.1

            def gen():
                for s in range(1, a.steps + 1):
                    v = scale * (floor + math.exp(-s / tau)) + 0.01 * math.sin(s * 0.7 + k + i)
                    yield (rid, key, v, s, start + s * 40)
            db.executemany("INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)", gen())
            last = scale * (floor + math.exp(-a.steps / tau)) + 0.01 * math.sin(a.steps * 0.7 + k + i)
            db.execute("INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)",
                       (rid, key, last, a.steps, start + a.steps * 40))
            rows += a.steps

    long_id = add_run("long-run", "sweep-lr", now - 3600000, 3000000)
    db.execute("INSERT INTO params (run_id, key, value) VALUES (?, 'lr', '0.001')", (long_id,))

    def long_gen():
        for s in range(1, a.long_steps + 1):
            yield (long_id, "train_loss", 0.05 + math.exp(-s / 8000) + 0.03 * math.sin(s / 50) * math.exp(-s / 40000)
                   + 0.01 * rng.random(), s, now - 3600000 + s * 30)
    db.executemany("INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)", long_gen())
    db.execute("INSERT INTO latest_metrics (run_id, key, value, step, timestamp) SELECT run_id, key, value, step, "
               "timestamp FROM metrics WHERE run_id = ? ORDER BY step DESC LIMIT 1", (long_id,))
    rows += a.long_steps
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(json.dumps({"store": a.out, "runs": a.runs + 1, "metric_rows": rows, "long_run": long_id,
                      "seconds": round(time.time() - t0, 1), "bytes": os.path.getsize(a.out)}))


if __name__ == "__main__":
    main()
