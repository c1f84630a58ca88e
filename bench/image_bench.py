#!/usr/bin/env python3
"""krill vs PyTorch image classification, on this machine, in one run: see bench/README.md
("Image classification").

Usage (from the repository root):
  python3 bench/image_bench.py [--build build] [--quick] [--only a,b] [--json FILE]

Builds krill_cli and bench_cnn_step in --build first (`cmake --build BUILD -j2 --target ...`, a
no-op when up to date; --no-build skips it), then runs, interleaving krill and PyTorch:

  fashion       Fashion-MNIST LeNet, 2 epochs, Adam 1e-3, batch 64: `krill train --model lenet ...`
                (its default threads) vs bench/torch_cnn.py fashion (PyTorch, 2 OpenMP + 1 OpenBLAS
                threads), whole processes; images/s of the training passes, final test accuracy
  lenet_b4      LeNet (CIFAR-10 tutorial net, 3x32x32), batch 4, one SGD step: steps/s
  resnet18_b32  ResNet-18, 32 px, batch 32, one SGD step: images/s
  resnet50_b8   ResNet-50, 224 px, batch 8, one SGD step: images/s
  dist_lenet    the fashion training as a data-parallel job: `krill launch -np 2 -- krill train ...`
                (batch 64 per rank, 1 OpenMP thread per rank) vs the 1-process krill train (its
                default threads, and OMP_NUM_THREADS=1), and PyTorch DDP (gloo, 2 ranks, 1 + 1
                threads each) vs the 1-process PyTorch run

The step benchmarks run in two long-lived workers, bench_cnn_step --serve (krill) and
torch_cnn.py --serve (PyTorch), asked for timed blocks in turn (krill first, then PyTorch first in
the next round, ...). The whole-process benchmarks alternate their order the same way. Every
round first waits (at most --max-wait s) for a quiet machine; every block or process runs under
run_bench.py's CpuMeter (other processes' CPU use from /proc/stat), and one during which other
processes used more than --max-foreign cores (default 0.5 here) is repeated once. Medians over the runs; ratio =
krill rate / PyTorch rate (> 1: krill is faster).
"""
import argparse
import csv
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run_bench import (CpuMeter, Worker, add_load_options, machine_info, measured,  # noqa: E402,F401
                       resolve_load_options, wait_quiet)

FASHION = "/usr/share/datasets/fashion-mnist"
TORCH_THREADS, TORCH_BLAS_THREADS = 2, 1  # PyTorch's best setting for conv nets here (peers' RESULTS.md)

# name: (label, unit, batch, what the issue asks)
STEP_BENCHES = {
    "lenet_b4": ("LeNet 3x32x32, batch 4, SGD(0.001, momentum 0.9) step", "steps/s", 4,
                 "goal 5x (PyTorch 1,500 steps/s)"),
    "resnet18_b32": ("ResNet-18, 32 px, batch 32, SGD(0.01, momentum 0.9) step", "images/s", 32, "-"),
    "resnet50_b8": ("ResNet-50, 224 px, batch 8, SGD(0.01, momentum 0.9) step", "images/s", 8,
                    "target >= 1x, goal >= 20 img/s"),
}
ALL = ["fashion", "lenet_b4", "resnet18_b32", "resnet50_b8", "dist_lenet"]
FASHION_TARGET = "target >= 2x, goal 3x"
MIN_ACCURACY = 0.85  # both sides should reach it after 2 epochs

# The processes of the fashion / dist_lenet rounds. Keys are the "impl" of each sample.
PROC_LABELS = {
    "krill": "krill train, 1 process (its default threads)",
    "pytorch": f"PyTorch, 1 process ({TORCH_THREADS} + {TORCH_BLAS_THREADS} threads)",
    "krill_t1": "krill train, 1 process, OMP_NUM_THREADS=1",
    "krill_np2": "krill launch -np 2 -- krill train (1 thread per rank)",
    "pytorch_ddp_np2": "PyTorch DDP, 2 ranks (gloo, 1 + 1 threads per rank)",
}
EPOCH_RE = re.compile(r"^(?:\[rank \d+\] )?Epoch (\d+): ([\d.]+) images/s", re.M)


def log(s):
    print(s, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- whole processes (fashion, dist_lenet)
def fashion_argv(args, krill_cli, out):
    return [krill_cli, "train", "--model", "lenet", "--data", args.data, "--epochs", str(args.epochs),
            "--batch-size", "64", "--optimizer", "adam", "--lr", "0.001", "--lr-schedule", "constant",
            "--print-freq", "0", "--no-track", "--out", out, "--force"]


def run_process(impl, args, krill_cli, tmp):
    """One whole training process; returns its images/s (all epochs' training passes together),
    per-epoch figures, the final test accuracy and the process's wall time."""
    env = dict(os.environ)
    out = os.path.join(tmp, impl)
    if impl in ("krill", "krill_t1"):
        argv = fashion_argv(args, krill_cli, out)
        if impl == "krill_t1":
            env["OMP_NUM_THREADS"] = "1"
    elif impl == "krill_np2":
        argv = [krill_cli, "launch", "-np", "2", "--", "krill"] + fashion_argv(args, krill_cli, out)[1:]
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    elif impl == "pytorch":
        argv = [args.python, os.path.join(HERE, "torch_cnn.py"), "fashion", "--epochs", str(args.epochs), "--data",
                args.data, "--threads", str(TORCH_THREADS), "--blas-threads", str(TORCH_BLAS_THREADS)]
    else:
        argv = [args.python, os.path.join(HERE, "torch_cnn.py"), "ddp", "--np", "2", "--epochs", str(args.epochs),
                "--data", args.data]
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=900)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{impl} failed ({p.returncode}): {' '.join(argv)}\n{(p.stdout + p.stderr).strip()[-3000:]}")
    if impl.startswith("krill"):
        # The console's "Epoch N: X images/s" is the job's throughput (x ranks); metrics.csv's
        # images_per_s is rank 0's own, so it is read for the accuracy only.
        rates = {int(e): float(r) for e, r in EPOCH_RE.findall(p.stdout)}
        with open(os.path.join(out, "metrics.csv")) as f:
            rows = list(csv.DictReader(f))
        epochs = [{"epoch": int(r["epoch"]), "images_per_s": rates[int(r["epoch"])],
                   "images_per_s_csv": float(r["images_per_s"]), "epoch_seconds": float(r["epoch_seconds"]),
                   "train_loss": float(r["train_loss"]), "val_accuracy": float(r["val_accuracy"])} for r in rows]
        shutil.rmtree(out, ignore_errors=True)
    else:
        epochs = json.loads(p.stdout.strip().splitlines()[-1])["epochs"]
    if len(epochs) != args.epochs:
        raise RuntimeError(f"{impl}: expected {args.epochs} epochs, got {epochs}\n{p.stdout[-2000:]}")
    seconds = sum(60000 / e["images_per_s"] for e in epochs)  # training passes only
    return {"images_per_s": 60000 * len(epochs) / seconds, "epochs": epochs,
            "val_accuracy": epochs[-1]["val_accuracy"], "process_s": wall}


def run_processes(names, args, krill_cli):
    impls = ["krill", "pytorch"]
    if "dist_lenet" in names:
        impls += ["krill_t1", "krill_np2"] + ([] if args.no_ddp else ["pytorch_ddp_np2"])
    samples = {i: [] for i in impls}
    waited = []
    tmp = tempfile.mkdtemp(prefix="krill-image-bench-")
    try:
        for r in range(args.proc_runs):
            waited.append(round(wait_quiet(args.max_foreign, max_wait_s=args.max_wait), 2))
            for impl in (impls if r % 2 == 0 else impls[::-1]):
                samples[impl].append(measured(lambda: run_process(impl, args, krill_cli, tmp), [], args))
            log(f"  processes run {r + 1}/{args.proc_runs}: " + ", ".join(
                f"{i} {samples[i][-1]['images_per_s']:.0f} img/s acc {samples[i][-1]['val_accuracy']:.4f} "
                f"({samples[i][-1]['process_s']:.1f} s, foreign {samples[i][-1]['foreign_cpus']:.2f})" for i in impls))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {i: statistics.median(s["images_per_s"] for s in ss) for i, ss in samples.items()}
    acc = {i: [s["val_accuracy"] for s in ss] for i, ss in samples.items()}
    foreign = lambda keys: [s["foreign_cpus"] for k in keys for s in samples[k]]
    common = {"epochs": args.epochs, "runs": args.proc_runs, "waited_quiet_s": waited}
    results = []
    if "fashion" in names:
        keys = ["krill", "pytorch"]
        results.append({
            "bench": "fashion", "unit": "images/s", "issue": FASHION_TARGET,
            "label": f"Fashion-MNIST LeNet, {args.epochs} epochs, Adam 1e-3, batch 64 (training passes' images/s)",
            "krill_median": med["krill"], "pytorch_median": med["pytorch"], "ratio": med["krill"] / med["pytorch"],
            "pair_ratio_median": statistics.median(k["images_per_s"] / p["images_per_s"]
                                                   for k, p in zip(samples["krill"], samples["pytorch"])),
            "krill_all": [s["images_per_s"] for s in samples["krill"]],
            "pytorch_all": [s["images_per_s"] for s in samples["pytorch"]],
            "val_accuracy": {k: acc[k] for k in keys},
            "accuracy_ok": all(a >= MIN_ACCURACY for k in keys for a in acc[k]) if args.epochs >= 2 else None,
            "process_s_median": {k: statistics.median(s["process_s"] for s in samples[k]) for k in keys},
            "foreign_cpus_median": statistics.median(foreign(keys)), "foreign_cpus_max": max(foreign(keys)),
            "argv_krill": fashion_argv(args, krill_cli, "OUT"), **common,
            "samples": {k: samples[k] for k in keys}})
    if "dist_lenet" in names:
        keys = impls
        results.append({
            "bench": "dist_lenet", "unit": "images/s",
            "label": f"Fashion-MNIST LeNet, {args.epochs} epochs, batch 64 per rank, lr 0.001 x ranks: the job's "
                     "images/s, 2 ranks vs 1 process",
            "images_per_s_median": med, "val_accuracy": acc,
            "krill_2_over_1": med["krill_np2"] / med["krill"],
            "krill_2_over_1_thread": med["krill_np2"] / med["krill_t1"],
            "pytorch_ddp_2_over_1": med["pytorch_ddp_np2"] / med["pytorch"] if "pytorch_ddp_np2" in med else None,
            "krill_np2_over_pytorch_ddp_np2": med["krill_np2"] / med["pytorch_ddp_np2"] if "pytorch_ddp_np2" in med
            else None,
            "process_s_median": {k: statistics.median(s["process_s"] for s in samples[k]) for k in keys},
            "foreign_cpus_median": statistics.median(foreign(keys)), "foreign_cpus_max": max(foreign(keys)),
            **common, "samples": samples})
    return results


# ---------------------------------------------------------------- per-step workers
def run_steps(names, args, bench_bin):
    results = []
    workers = {}
    try:
        workers["krill"] = Worker("krill", [bench_bin, "--serve"])
        workers["pytorch"] = Worker("pytorch", [args.python, os.path.join(HERE, "torch_cnn.py"), "--serve",
                                                "--threads", str(TORCH_THREADS), "--blas-threads",
                                                str(TORCH_BLAS_THREADS)])
        ready = {i: w.ready for i, w in workers.items()}
        for name in names:
            label, unit, batch, issue = STEP_BENCHES[name]
            log(f"{name}: {label}")
            block_s = args.block_s * (2 if name == "resnet50_b8" else 1)  # at least 2 steps of ResNet-50 when quick enough
            iters = {i: w.ask("calibrate", name, block_s)["iters"] for i, w in workers.items()}
            runs = max(args.runs, 5) if not args.quick else args.runs
            samples = {i: [] for i in workers}
            waited = []
            for r in range(runs):
                waited.append(round(wait_quiet(args.max_foreign, max_wait_s=args.max_wait), 2))
                for impl in (["krill", "pytorch"] if r % 2 == 0 else ["pytorch", "krill"]):
                    w = workers[impl]
                    # cut a block short at 5x its planned length: a 2-thread run on a machine that
                    # got busy can take 10-20x as long (its time per step still counts, flagged by the load)
                    samples[impl].append(measured(lambda: w.ask("run", name, iters[impl], 5 * block_s), [w.proc.pid],
                                                  args))
                log(f"  {name} run {r + 1}/{runs}: " + ", ".join(
                    f"{i} {samples[i][-1]['ns_per_iter'] / 1e6:.2f} ms/step (foreign {samples[i][-1]['foreign_cpus']:.2f})"
                    for i in workers))
            per_s = (lambda ns: 1e9 / ns) if unit == "steps/s" else (lambda ns: 1e9 / ns * batch)
            med_ns = {i: statistics.median(s["ns_per_iter"] for s in ss) for i, ss in samples.items()}
            foreign = [s["foreign_cpus"] for ss in samples.values() for s in ss]
            results.append({
                "bench": name, "label": label, "unit": unit, "batch": batch, "issue": issue,
                "krill_median": per_s(med_ns["krill"]), "pytorch_median": per_s(med_ns["pytorch"]),
                "ratio": med_ns["pytorch"] / med_ns["krill"],
                "pair_ratio_median": statistics.median(p["ns_per_iter"] / k["ns_per_iter"]
                                                       for k, p in zip(samples["krill"], samples["pytorch"])),
                "ms_per_step_median": {i: v / 1e6 for i, v in med_ns.items()},
                "ms_per_step_min": {i: min(s["ns_per_iter"] for s in ss) / 1e6 for i, ss in samples.items()},
                "krill_all": [per_s(s["ns_per_iter"]) for s in samples["krill"]],
                "pytorch_all": [per_s(s["ns_per_iter"]) for s in samples["pytorch"]],
                "steps_per_block": iters, "runs": runs, "check": {i: ss[-1]["check"] for i, ss in samples.items()},
                "foreign_cpus_median": statistics.median(foreign), "foreign_cpus_max": max(foreign),
                "blocks_over_max_foreign": sum(s["loaded"] for ss in samples.values() for s in ss),
                "waited_quiet_s": waited, "samples": samples})
        return results, ready
    finally:
        for w in workers.values():
            w.close()


# ---------------------------------------------------------------- report
def fmt(x):
    return f"{x:.3g}" if x < 100 else f"{x:,.0f}"


def print_tables(results, info, out=sys.stdout):
    rows = [("benchmark", "unit", "krill", "PyTorch", "krill/PyTorch", "issue", "foreign load (cores)")]
    for r in results:
        if r["bench"] == "dist_lenet":
            continue
        rows.append((r["bench"], r["unit"], fmt(r["krill_median"]), fmt(r["pytorch_median"]), f"{r['ratio']:.2f}x",
                     r["issue"], f"{r['foreign_cpus_median']:.2f} (max {r['foreign_cpus_max']:.2f})"))
    if len(rows) > 1:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        line = lambda row: "| " + " | ".join(c.ljust(w) if i in (0, 1, 5) else c.rjust(w)
                                             for i, (c, w) in enumerate(zip(row, widths))) + " |"
        print(file=out)
        print(line(rows[0]), file=out)
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
        for row in rows[1:]:
            print(line(row), file=out)
    for r in results:
        if r["bench"] == "fashion":
            a = r["val_accuracy"]
            print(f"\nfashion final test accuracy (every run): krill {', '.join(f'{x:.4f}' for x in a['krill'])}; "
                  f"PyTorch {', '.join(f'{x:.4f}' for x in a['pytorch'])}"
                  + ("" if r["accuracy_ok"] is None else
                     f" ({'all' if r['accuracy_ok'] else 'NOT all'} >= {MIN_ACCURACY})")
                  + f"; whole process: krill {r['process_s_median']['krill']:.1f} s, "
                    f"PyTorch {r['process_s_median']['pytorch']:.1f} s", file=out)
        if r["bench"] in STEP_BENCHES:
            ms = r["ms_per_step_median"]
            print(f"{r['bench']}: ms per step krill {ms['krill']:.3g}, PyTorch {ms['pytorch']:.3g}; last loss krill "
                  f"{r['check']['krill']}, PyTorch {r['check']['pytorch']}", file=out)
    for r in results:
        if r["bench"] != "dist_lenet":
            continue
        m, a, ps = r["images_per_s_median"], r["val_accuracy"], r["process_s_median"]
        print("\n| dist_lenet (whole job) | images/s | 2 ranks / 1 process | final test accuracy | process s |", file=out)
        print("|---|---|---|---|---|", file=out)
        for k in m:
            ratio = {"krill_np2": f"{r['krill_2_over_1']:.2f}x (over 1 thread: {r['krill_2_over_1_thread']:.2f}x)",
                     "pytorch_ddp_np2": f"{r['pytorch_ddp_2_over_1']:.2f}x" if r["pytorch_ddp_2_over_1"] else ""}.get(k, "")
            print(f"| {PROC_LABELS[k]} | {fmt(m[k])} | {ratio} | {', '.join(f'{x:.4f}' for x in a[k])} | "
                  f"{ps[k]:.1f} |", file=out)
        if r["krill_np2_over_pytorch_ddp_np2"]:
            print(f"krill 2 ranks / PyTorch DDP 2 ranks: {r['krill_np2_over_pytorch_ddp_np2']:.2f}x; foreign load "
                  f"{r['foreign_cpus_median']:.2f} (max {r['foreign_cpus_max']:.2f})", file=out)
    print(file=out)
    s = info["settings"]
    print(f"{info['date']}; {info['cpu_model']}, {info['cpus']} CPUs; load average "
          f"{'/'.join(f'{x:.2f}' for x in info['loadavg_start'])} at start, "
          f"{'/'.join(f'{x:.2f}' for x in info['loadavg_end'])} at end; medians of {s['proc_runs']} run(s) of "
          f"the whole processes ({s['epochs']} epoch(s) each) and of >= {s['step_runs']} timed blocks of ~{s['block_s']} s "
          f"per step benchmark (ResNet-50: ~{2 * s['block_s']} s); "
          f"krill: its default threads; PyTorch {TORCH_THREADS} OpenMP + {TORCH_BLAS_THREADS} OpenBLAS threads",
          file=out)
    print("krill runtime:", info["krill_runtime_info"].replace("\n", "\n  "), file=out)
    for impl, rd in info.get("workers", {}).items():
        print(f"{impl} worker: " + ", ".join(f"{k}={v}" for k, v in rd.items() if k != "ready"), file=out)
    print("environment:", ", ".join(f"{k}={v}" for k, v in info["env"].items() if v is not None) or "(no thread/BLAS "
          "variables set)", file=out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="krill build directory (default ./build)")
    ap.add_argument("--no-build", action="store_true", help="do not run cmake --build first")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 run of 1 epoch for the processes, 3 blocks of 0.3 s for the steps")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(ALL))
    ap.add_argument("--json", help="write every sample, the machine information and the settings here")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter with torch and torchvision")
    ap.add_argument("--data", default=FASHION, help="Fashion-MNIST IDX directory")
    ap.add_argument("--epochs", type=int, default=None, help="epochs of the whole-process runs (default 2, --quick 1)")
    ap.add_argument("--proc-runs", type=int, default=None, help="rounds of whole processes (default 3, --quick 1)")
    ap.add_argument("--runs", type=int, default=None, help="timed blocks per step benchmark (default 7, --quick 3)")
    ap.add_argument("--block-s", type=float, default=None,
                    help="seconds per timed step block (default 1.0, --quick 0.3; ResNet-50 blocks twice that)")
    ap.add_argument("--no-ddp", action="store_true", help="dist_lenet without PyTorch DDP")
    add_load_options(ap, "block or process", 0.25, "a quarter", 2.0)
    args = ap.parse_args()
    args.epochs = args.epochs or (1 if args.quick else 2)
    args.proc_runs = args.proc_runs or (1 if args.quick else 3)
    args.runs = args.runs or (3 if args.quick else 7)
    args.block_s = args.block_s or (0.3 if args.quick else 1.0)
    # A quarter of the CPUs (0.5 here), not run_bench.py's half: a 2-thread OpenMP run (krill's
    # default, PyTorch's 2 + 1) slows down 10-20x while one other process keeps a core busy.
    resolve_load_options(args)
    args.threads = "krill default / PyTorch 2+1"  # for run_bench.machine_info
    only = [b for b in args.only.split(",") if b] or ALL
    for b in only:
        if b not in ALL:
            ap.error(f"--only: unknown benchmark '{b}' (known: {', '.join(ALL)})")

    build = os.path.abspath(args.build)
    krill_cli, bench_bin = os.path.join(build, "krill"), os.path.join(build, "bench", "bench_cnn_step")
    step_names = [b for b in ALL if b in STEP_BENCHES and b in only]
    proc_names = [b for b in ("fashion", "dist_lenet") if b in only]
    targets = ["krill_cli"] + (["bench_cnn_step"] if step_names else [])
    if not args.no_build:
        log(f"building {', '.join(targets)} in {build}")
        p = subprocess.run(["cmake", "--build", build, "-j2", "--target", *targets], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"image_bench.py: the build failed:\n{(p.stdout + p.stderr)[-3000:]}")
    for path, target in [(krill_cli, "krill_cli")] + ([(bench_bin, "bench_cnn_step")] if step_names else []):
        if not os.access(path, os.X_OK):
            sys.exit(f"image_bench.py: {path} not found; build it: cmake --build {args.build} --target {target}")
    if proc_names and not os.path.isdir(args.data):
        sys.exit(f"image_bench.py: no Fashion-MNIST at {args.data} (--data)")

    info = machine_info(args, krill_cli)
    info["settings"] = {"epochs": args.epochs, "proc_runs": args.proc_runs, "step_runs": args.runs,
                        "block_s": args.block_s, "max_foreign": args.max_foreign, "retries": args.retries,
                        "max_wait_s": args.max_wait, "torch_threads": TORCH_THREADS,
                        "torch_openblas_threads": TORCH_BLAS_THREADS, "build": build}
    log(f"{info['cpu_model']}, {info['cpus']} CPUs, load average {info['loadavg_start']}")
    t0 = time.perf_counter()
    results = []
    if "fashion" in only or "dist_lenet" in only:
        log("processes: " + "; ".join(f"{k}: {v}" for k, v in PROC_LABELS.items()
                                      if "dist_lenet" in only or k in ("krill", "pytorch")))
        proc_results = run_processes(proc_names, args, krill_cli)
    else:
        proc_results = []
    results += [r for r in proc_results if r["bench"] == "fashion"]
    if step_names:
        step_results, info["workers"] = run_steps(step_names, args, bench_bin)
        results += step_results
    results += [r for r in proc_results if r["bench"] == "dist_lenet"]
    info["loadavg_end"] = os.getloadavg()
    info["seconds"] = round(time.perf_counter() - t0, 1)
    print_tables(results, info)
    log(f"took {info['seconds']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results}, f, indent=1)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
