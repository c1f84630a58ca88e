#!/usr/bin/env python3
"""What run tracking costs the penguin lab: `krill train` with the lab's config, recorded into a
fresh store (the default) versus --no-track, interleaved, as whole processes. Prints the
medians and ratios of (1) the training loop (the sum of metrics.csv's epoch_seconds: where
log_metric is called, the issue's "training hot path") and (2) the whole process (which also
opens the store and records the run, params and artifacts). The issue's bound: at most 2%.

  python3 bench/track_overhead.py [--build build] [--runs 21]
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    krill = os.path.join(os.path.abspath(args.build), "krill")
    tmp = tempfile.mkdtemp(prefix="krill-track-overhead-")
    store = os.path.join(tmp, "runs.db")
    base = [krill, "train", "--config", os.path.join("examples", "penguins.toml"), "--force", "-q"]
    variants = {
        "tracked": base + ["--out", os.path.join(tmp, "m1"), "--tracking-uri", store],
        "untracked": base + ["--out", os.path.join(tmp, "m2"), "--no-track"],
    }
    env = dict(os.environ, OMP_NUM_THREADS="1")
    times = {k: [] for k in variants}
    loops = {k: [] for k in variants}
    outs = {"tracked": os.path.join(tmp, "m1"), "untracked": os.path.join(tmp, "m2")}
    for r in range(args.runs + 2):          # two warm-up rounds (page cache, first store creation)
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            t0 = time.perf_counter()
            p = subprocess.run(variants[name], cwd=ROOT, env=env, capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                raise SystemExit(f"{name} failed: {p.stderr}")
            if r >= 2:
                times[name].append(dt)
                with open(os.path.join(outs[name], "metrics.csv")) as f:
                    rows = list(csv.DictReader(f))
                loops[name].append(sum(float(row["epoch_seconds"]) for row in rows))
    med = {k: statistics.median(v) for k, v in times.items()}
    loop = {k: statistics.median(v) for k, v in loops.items()}
    runs = subprocess.run([krill, "runs", "list", "--tracking-uri", store, "--format", "json"],
                          capture_output=True, text=True)
    print(f"krill train (penguin lab, 100 epochs), {args.runs} interleaved runs each:")
    print(f"  training loop: untracked {loop['untracked'] * 1e3:.2f} ms, tracked {loop['tracked'] * 1e3:.2f} ms: "
          f"{100 * (loop['tracked'] / loop['untracked'] - 1):+.2f}% (bound: +2%)")
    print("  whole process:")
    print(f"  untracked median {med['untracked'] * 1e3:.2f} ms (min {min(times['untracked']) * 1e3:.2f})")
    print(f"  tracked   median {med['tracked'] * 1e3:.2f} ms (min {min(times['tracked']) * 1e3:.2f})")
    print(f"  overhead  {100 * (med['tracked'] / med['untracked'] - 1):+.2f}% "
          f"({(med['tracked'] - med['untracked']) * 1e3:+.2f} ms: opening the store, the run's records)")
    if runs.returncode == 0:
        print(f"  store: {len(json.loads(runs.stdout))} runs recorded in {store}")


if __name__ == "__main__":
    main()
