#!/usr/bin/env python3
"""krill vs PyTorch, on this machine, in one run: see bench/README.md.

Usage (from the repository root, after building the `bench` target):
  python3 bench/run_bench.py [--build build] [--runs N] [--quick] [--only a,b] [--json FILE]

Builds nothing. Starts two long-lived workers, build/bench/bench_penguin_step --serve (krill) and
bench/torch_side.py --serve (PyTorch, under --python, default /usr/bin/python3), and asks them
for timed blocks in turn (krill, torch, then torch, krill on the next round, ...), so slow drift
in the machine's load hits both alike. The lab benchmark runs `build/krill train ...` and
bench/torch_lab.py as whole processes, alternating in the same way; lab_raw does the same for the
whole lab from the raw CSV (`krill train --config examples/penguins.toml` plus `krill predict
--row ...`, against bench/torch_lab_raw.py, the notebook's code). Each timed block is watched
with a CpuMeter: the CPU time other processes used meanwhile (from /proc/stat, minus ours); a
block during which they used more than --max-foreign cores is repeated (at most --retries
times, then kept and flagged). Medians over the runs; ratio = PyTorch median / krill median
(> 1: krill is faster).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK = os.sysconf("SC_CLK_TCK")

# name: (label, unit, divisor from ns, kind)
BENCHES = {
    "penguin_step": ("penguin training step (MLP 5-10-10-3, batch 20, Adam)", "us/step", 1e3),
    "add": ("c = a + b, 1-element, requires_grad", "ns/op", 1.0),
    "gemm_tiny": ("matmul 20x5 . 5x10", "ns/call", 1.0),
    "gemm_256": ("matmul 256x256 . 256x256", "us/call", 1e3),
    "lab": ("whole lab as a process (100 epochs, save)", "s/process", 1e9),
    "lab_raw": ("whole lab from penguins.csv (prepare, 100 epochs, save, reload, predict)", "s/lab", 1e9),
}
MICRO = ["penguin_step", "add", "gemm_tiny", "gemm_256"]
# krill::dist under mpirun (build/bench/bench_dist), krill only, not in the default set:
# --only dist (both) or --only dist_allreduce,dist_penguin. See bench/README.md.
DIST_BENCHES = {
    "dist_allreduce": "DistributedOptimizer step (fused allreduce, 100 MB of gradients in 5 tensors) vs one raw "
                      "MPI_Allreduce of the same bytes, mpirun -np 2",
    "dist_penguin": "penguin training loop (dist engine: DistributedSampler, DistributedOptimizer, Adam, 100 epochs, "
                    "batch 20 per rank), 1 rank vs mpirun -np 2",
}


# ---------------------------------------------------------------- measuring the machine's load
def _busy_s():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / CLK  # all CPU time minus idle and iowait


def _pid_cpu_s(pid):
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0.0
    f = s[s.rindex(")") + 2:].split()  # fields from 3 (state) on: utime is field 14, stime 15
    return (int(f[11]) + int(f[12])) / CLK


class CpuMeter:
    """Foreign CPU load during a measurement: machine-wide busy CPU time minus our own (this
    process, its waited-for children and the worker `pids`, all threads). foreign_cpus ~ the
    average number of cores other processes used. Clock-tick resolution (10 ms)."""

    def __init__(self, pids=()):
        self.pids = list(pids)

    def _own(self):
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system + sum(_pid_cpu_s(p) for p in self.pids)

    def __enter__(self):
        self.t, self.b, self.o = time.perf_counter(), _busy_s(), self._own()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.own_cpu = self._own() - self.o
        self.foreign_cpus = max(0.0, (_busy_s() - self.b) - self.own_cpu) / self.wall
        return False


def wait_quiet(threshold, idle_s=1.0, max_wait_s=20.0):
    """Wait (at most max_wait_s) until the machine has used < threshold cores for idle_s (our own
    workers are idle meanwhile). Returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s:
        b = _busy_s()
        time.sleep(idle_s)
        if (_busy_s() - b) / idle_s < threshold:
            break
    return time.perf_counter() - t0


# ---------------------------------------------------------------- workers
class Worker:
    """A benchmark process speaking the line protocol of penguin_step.cpp / torch_side.py."""

    def __init__(self, impl, argv):
        self.impl = impl
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.ready = self._read()
        if not self.ready.get("ready"):
            raise RuntimeError(f"{impl} worker did not start: {self.ready}")

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.impl} worker exited (code {self.proc.poll()})")
        return json.loads(line)

    def ask(self, *cmd):
        self.proc.stdin.write(" ".join(str(c) for c in cmd) + "\n")
        self.proc.stdin.flush()
        r = self._read()
        if "error" in r:
            raise RuntimeError(f"{self.impl} worker: {r['error']}")
        return r

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def add_load_options(ap, what, foreign_share, foreign_text, quick_wait):
    """--max-foreign, --retries and --max-wait (see measured and wait_quiet); `what` is what a
    loaded measurement is ("block", "block or process"), the default threshold is foreign_share
    of the CPUs. Call resolve_load_options(args, ...) after parsing."""
    ap.add_argument("--max-foreign", type=float, default=None,
                    help="before each round, wait until other processes use fewer cores than this; repeat a "
                         f"{what} during which they used more (default: {foreign_text} of the CPUs)")
    ap.add_argument("--retries", type=int, default=1, help=f"repeats of a loaded {what} (default 1)")
    ap.add_argument("--max-wait", type=float, default=None,
                    help=f"seconds to wait for a quiet machine before each round (default 10, --quick {quick_wait:g})")
    ap.set_defaults(load_defaults=(foreign_share, quick_wait))


def resolve_load_options(args):
    """Fills in the defaults of add_load_options's options."""
    foreign_share, quick_wait = args.load_defaults
    if args.max_foreign is None:
        args.max_foreign = (os.cpu_count() or 2) * foreign_share
    if args.max_wait is None:
        args.max_wait = quick_wait if args.quick else 10.0


def measured(fn, pids, args):
    """fn() -> dict under a CpuMeter; repeated while other processes used more than
    args.max_foreign cores (at most args.retries times; the last attempt is kept)."""
    discarded = []
    for attempt in range(args.retries + 1):
        with CpuMeter(pids) as m:
            res = fn()
        res.update(foreign_cpus=round(m.foreign_cpus, 3), own_cpu_s=round(m.own_cpu, 4), wall_s=round(m.wall, 4))
        if m.foreign_cpus <= args.max_foreign or attempt == args.retries:
            res["discarded_foreign_cpus"] = discarded
            res["loaded"] = m.foreign_cpus > args.max_foreign
            return res
        discarded.append(round(m.foreign_cpus, 3))


# ---------------------------------------------------------------- the benchmarks
def run_micro(name, workers, args, log):
    iters = {}
    for w in workers.values():
        iters[w.impl] = w.ask("calibrate", name, args.block_s)["iters"]
    samples = {impl: [] for impl in workers}
    waited = []
    for r in range(args.runs):
        waited.append(round(wait_quiet(args.max_foreign, max_wait_s=args.max_wait), 2))
        order = ["krill", "pytorch"] if r % 2 == 0 else ["pytorch", "krill"]
        for impl in order:
            w = workers[impl]
            res = measured(lambda: w.ask("run", name, iters[impl]), [w.proc.pid], args)
            samples[impl].append(res)
        log(f"  {name} run {r + 1}/{args.runs}: " + ", ".join(
            f"{impl} {samples[impl][-1]['ns_per_iter'] / BENCHES[name][2]:.4g} {BENCHES[name][1]}"
            f" (foreign {samples[impl][-1]['foreign_cpus']:.2f})" for impl in ("krill", "pytorch")))
    return summarize(name, {impl: [s["ns_per_iter"] for s in ss] for impl, ss in samples.items()}, samples, waited,
                     extra={"iters_per_block": iters,
                            "check": {impl: ss[-1].get("check") for impl, ss in samples.items()}})


def interleave_processes(name, once, args, log):
    """args.runs rounds of once("krill") and once("pytorch") (alternating which goes first), each
    under a CpuMeter after waiting for a quiet machine. Returns ({impl: [sample]}, waited_s)."""
    samples = {"krill": [], "pytorch": []}
    waited = []
    for r in range(args.runs):
        waited.append(round(wait_quiet(args.max_foreign, max_wait_s=args.max_wait), 2))
        order = ["krill", "pytorch"] if r % 2 == 0 else ["pytorch", "krill"]
        for impl in order:
            samples[impl].append(measured(lambda: once(impl), [], args))
        log(f"  {name} run {r + 1}/{args.runs}: " + ", ".join(
            f"{impl} {samples[impl][-1]['ns_per_iter'] / 1e9:.3f} s acc {samples[impl][-1]['correct']}/"
            f"{samples[impl][-1]['total']}"
            + (f" class {samples[impl][-1]['predicted_class']}" if "predicted_class" in samples[impl][-1] else "")
            + f" (foreign {samples[impl][-1]['foreign_cpus']:.2f})"
            for impl in ("krill", "pytorch")))
    return samples, waited


FINAL_RE = re.compile(r"final training loss ([\d.eE+-]+), validation loss ([\d.eE+-]+), accuracy (\d+)/(\d+)")


def run_lab(args, krill_cli, log):
    tmp = tempfile.mkdtemp(prefix="krill-bench-lab-")
    data = os.path.join(ROOT, "data")
    train, val = os.path.join(data, "penguins_train.csv"), os.path.join(data, "penguins_val.csv")
    argv = {
        "krill": [krill_cli, "train", "--train", train, "--validation", val, "--label", "Species", "--hidden", "10,10",
                  "--batch-size", "20", "--epochs", "100", "--optimizer", "adam", "--lr", "0.001", "--no-shuffle",
                  "--seed", "0", "--out", os.path.join(tmp, "krill"), "--force", "-q"],
        "pytorch": [args.python, os.path.join(HERE, "torch_lab.py"), "--train", train, "--validation", val,
                    "--label", "Species", "--hidden", "10", "--batch-size", "20", "--epochs", "100", "--lr", "0.001",
                    "--seed", "0", "--threads", str(args.threads), "--out", os.path.join(tmp, "pytorch")],
    }

    def once(impl):
        t0 = time.perf_counter_ns()
        p = subprocess.run(argv[impl], capture_output=True, text=True)
        ns = time.perf_counter_ns() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{impl} lab failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
        if impl == "krill":
            m = FINAL_RE.search(p.stdout)
            if not m:
                raise RuntimeError("krill train: no final summary in its output:\n" + p.stdout)
            out = dict(train_loss=float(m[1]), val_loss=float(m[2]), correct=int(m[3]), total=int(m[4]))
        else:
            out = json.loads(p.stdout.strip().splitlines()[-1])
        return {"ns_per_iter": ns, **{k: out[k] for k in ("train_loss", "val_loss", "correct", "total")}}

    try:
        samples, waited = interleave_processes("lab", once, args, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    last = {impl: {k: ss[-1][k] for k in ("train_loss", "val_loss", "correct", "total")} for impl, ss in samples.items()}
    return summarize("lab", {impl: [s["ns_per_iter"] for s in ss] for impl, ss in samples.items()}, samples, waited,
                     extra={"final": last, "argv": argv,
                            "same_accuracy": last["krill"]["correct"] == last["pytorch"]["correct"]
                            and last["krill"]["total"] == last["pytorch"]["total"]})


# ---------------------------------------------------------------- krill::dist (mpirun)
def _mpirun_env():
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    return env


def _run_json(argv, env):
    p = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {(p.stdout + p.stderr).strip()[-2000:]}")
    return json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])


def run_dist(names, args, build, log):
    """The krill::dist benchmarks: args.runs rounds, each under a CpuMeter after a quiet wait."""
    bench_dist = os.path.join(build, "bench", "bench_dist")
    if not os.access(bench_dist, os.X_OK):
        sys.exit(f"run_bench.py: {bench_dist} not found; build it first: cmake --build {args.build} --target bench_dist")
    env = _mpirun_env()
    mpirun = shutil.which("mpirun") or "mpirun"
    results = []
    if "dist_allreduce" in names:
        log(f"dist_allreduce: {DIST_BENCHES['dist_allreduce']}")
        argv = [mpirun, "-np", "2", bench_dist, "allreduce", "--mb", "100", "--tensors", "5", "--runs", "5"]
        samples, waited = [], []
        for r in range(args.runs):
            waited.append(round(wait_quiet(args.max_foreign, max_wait_s=args.max_wait), 2))
            samples.append(measured(lambda: _run_json(argv, env), [], args))
            s = samples[-1]
            log(f"  dist_allreduce run {r + 1}/{args.runs}: fused {s['fused_s'] * 1e3:.1f} ms, raw {s['raw_s'] * 1e3:.1f} ms,"
                f" raw/fused {s['ratio']:.3f}; raw in bucket-sized calls {s['raw_bucket_sized_s'] * 1e3:.1f} ms"
                f" (foreign {s['foreign_cpus']:.2f})")
        fused = statistics.median(s["fused_s"] for s in samples)
        raw = statistics.median(s["raw_s"] for s in samples)
        results.append({"bench": "dist_allreduce", "label": DIST_BENCHES["dist_allreduce"], "argv": argv,
                        "bytes": samples[0]["bytes"], "buckets": samples[0]["buckets"],
                        "fused_ms": fused * 1e3, "raw_ms": raw * 1e3, "ratio": raw / fused,
                        "raw_bucket_sized_ms": statistics.median(s["raw_bucket_sized_s"] for s in samples) * 1e3,
                        "ratio_median_of_runs": statistics.median(s["ratio"] for s in samples),
                        "foreign_cpus_median": statistics.median(s["foreign_cpus"] for s in samples),
                        "foreign_cpus_max": max(s["foreign_cpus"] for s in samples),
                        "waited_s": waited, "samples": samples})
    if "dist_penguin" in names:
        log(f"dist_penguin: {DIST_BENCHES['dist_penguin']}")
        argv = {1: [bench_dist, "penguin", "--epochs", "100", "--batch", "20"],
                2: [mpirun, "-np", "2", bench_dist, "penguin", "--epochs", "100", "--batch", "20"],
                "1m": [mpirun, "-np", "1", bench_dist, "penguin", "--epochs", "100", "--batch", "20"]}
        samples, waited = {1: [], 2: [], "1m": []}, []
        for r in range(args.runs):
            waited.append(round(wait_quiet(args.max_foreign, max_wait_s=args.max_wait), 2))
            for n in ((1, 2, "1m") if r % 2 == 0 else ("1m", 2, 1)):
                def once(n=n):
                    t0 = time.perf_counter()
                    out = _run_json(argv[n], env)
                    out["process_s"] = time.perf_counter() - t0
                    return out
                samples[n].append(measured(once, [], args))
            log(f"  dist_penguin run {r + 1}/{args.runs}: " + ", ".join(
                f"{n} rank(s) loop {samples[n][-1]['loop_s'] * 1e3:.1f} ms, process {samples[n][-1]['process_s']:.3f} s"
                f" (foreign {samples[n][-1]['foreign_cpus']:.2f})" for n in (1, 2, "1m")))
        med = lambda n, k: statistics.median(s[k] for s in samples[n])
        results.append({"bench": "dist_penguin", "label": DIST_BENCHES["dist_penguin"], "argv": argv,
                        "loop_ms": {n: med(n, "loop_s") * 1e3 for n in (1, 2)},
                        "process_s": {n: med(n, "process_s") for n in (1, 2, "1m")},
                        "process_ratio_2_over_mpirun_1": med(2, "process_s") / med("1m", "process_s"),
                        "loop_ratio_2_over_1": med(2, "loop_s") / med(1, "loop_s"),
                        "process_ratio_2_over_1": med(2, "process_s") / med(1, "process_s"),
                        "last_loss": {n: samples[n][-1]["last_loss"] for n in (1, 2)},
                        "foreign_cpus_median": statistics.median(s["foreign_cpus"] for n in (1, 2, "1m") for s in samples[n]),
                        "foreign_cpus_max": max(s["foreign_cpus"] for n in (1, 2, "1m") for s in samples[n]),
                        "waited_s": waited, "samples": samples})
    return results


def print_dist_table(results, info, out=sys.stdout):
    print(file=out)
    print("| benchmark | krill | baseline | ratio | foreign load (cores) |", file=out)
    print("|---|---|---|---|---|", file=out)
    for r in results:
        load = f"{r['foreign_cpus_median']:.2f} (max {r['foreign_cpus_max']:.2f})"
        if r["bench"] == "dist_allreduce":
            print(f"| dist_allreduce ({r['bytes'] / 1e6:.0f} MB, {r['buckets']} buckets, 2 ranks) | fused "
                  f"{r['fused_ms']:.1f} ms | raw MPI_Allreduce {r['raw_ms']:.1f} ms | raw/fused {r['ratio']:.3f} "
                  f"(target >= 0.9) | {load} |", file=out)
            print(f"| (reference) raw MPI_Allreduce in bucket-sized calls | | {r['raw_bucket_sized_ms']:.1f} ms | "
                  f"raw/fused {r['raw_bucket_sized_ms'] / r['fused_ms']:.3f} | |", file=out)
        if r["bench"] == "dist_penguin":
            print(f"| dist_penguin training loop | 2 ranks {r['loop_ms'][2]:.1f} ms | 1 rank {r['loop_ms'][1]:.1f} ms |"
                  f" 2/1 {r['loop_ratio_2_over_1']:.2f}x (goal <= 0.6x, must be <= 1) | {load} |", file=out)
            print(f"| dist_penguin whole process | mpirun -np 2: {r['process_s'][2]:.3f} s | 1 process "
                  f"{r['process_s'][1]:.3f} s | 2/1 {r['process_ratio_2_over_1']:.2f}x | {load} |", file=out)
            print(f"| dist_penguin whole process, both under mpirun | mpirun -np 2: {r['process_s'][2]:.3f} s | "
                  f"mpirun -np 1: {r['process_s']['1m']:.3f} s | 2/1 {r['process_ratio_2_over_mpirun_1']:.2f}x | {load} |",
                  file=out)
    print(file=out)
    print(f"medians of {info['settings']['runs']} runs; {info['date']}; {info['cpu_model']}, {info['cpus']} CPUs; "
          f"load average {'/'.join(f'{x:.2f}' for x in info['loadavg_start'])} at start, "
          f"{'/'.join(f'{x:.2f}' for x in info['loadavg_end'])} at end; OMP_NUM_THREADS=1", file=out)


# The new penguin of the lab: raw values for krill predict --row (Island, CulmenLength, CulmenDepth,
# FlipperLength, BodyMass), the notebook's x_new = [[1, 50.4, 15.3, 20, 50]] once prepared.
LAB_ROW = "Dream,50.4,15.3,200,5000"
LAB_CLASS = 1  # what PyTorch predicts for it


def run_lab_raw(args, krill_cli, log):
    """The whole lab from data/penguins.csv: krill as the two processes a user runs (train with the
    lab's config, then predict, which reloads the model directory), timed together; PyTorch as one
    process running the notebook's code (bench/torch_lab_raw.py)."""
    tmp = tempfile.mkdtemp(prefix="krill-bench-lab-raw-")
    model = os.path.join(tmp, "krill")
    argv = {
        "krill": [[krill_cli, "train", "--config", os.path.join("examples", "penguins.toml"), "--out", model, "--force",
                   "-q"],
                  [krill_cli, "predict", model, "--row", LAB_ROW]],
        "pytorch": [[args.python, os.path.join(HERE, "torch_lab_raw.py"), "--threads", str(args.threads), "--out",
                     os.path.join(tmp, "pytorch")]],
    }

    def once(impl):
        procs = []
        t0 = time.perf_counter_ns()
        for cmd in argv[impl]:  # the config's data path is relative to the repository root
            procs.append(subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT))
            if procs[-1].returncode != 0:
                break
        ns = time.perf_counter_ns() - t0
        for cmd, p in zip(argv[impl], procs):
            if p.returncode != 0:
                raise RuntimeError(f"{impl} lab_raw failed ({p.returncode}): {' '.join(cmd)}\n"
                                   f"{p.stderr.strip()[-2000:]}")
        if impl == "krill":
            m = FINAL_RE.search(procs[0].stdout)
            c = re.search(r"Predicted class: .* \(id (\d+), probability ([\d.eE+-]+)\)", procs[1].stdout)
            if not m or not c:
                raise RuntimeError("krill: no final summary or prediction in its output:\n" + procs[0].stdout +
                                   procs[1].stdout)
            out = dict(train_loss=float(m[1]), val_loss=float(m[2]), correct=int(m[3]), total=int(m[4]),
                       predicted_class=int(c[1]), probability=float(c[2]))
        else:
            j = json.loads(procs[0].stdout.strip().splitlines()[-1])
            out = dict(j, probability=j["probabilities"][j["predicted_class"]])
        return {"ns_per_iter": ns, **{k: out[k] for k in ("train_loss", "val_loss", "correct", "total",
                                                          "predicted_class", "probability")}}

    try:
        samples, waited = interleave_processes("lab_raw", once, args, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    keys = ("train_loss", "val_loss", "correct", "total", "predicted_class", "probability")
    last = {impl: {k: ss[-1][k] for k in keys} for impl, ss in samples.items()}
    return summarize("lab_raw", {impl: [s["ns_per_iter"] for s in ss] for impl, ss in samples.items()}, samples,
                     waited, extra={
                         "final": last, "argv": argv,
                         "same_accuracy": last["krill"]["correct"] == last["pytorch"]["correct"]
                         and last["krill"]["total"] == last["pytorch"]["total"],
                         "both_predict_class_1": all(s["predicted_class"] == LAB_CLASS
                                                     for ss in samples.values() for s in ss)})


def summarize(name, ns, samples, waited, extra):
    div = BENCHES[name][2]
    med = {impl: statistics.median(v) / div for impl, v in ns.items()}
    pair_ratios = [p / k for k, p in zip(ns["krill"], ns["pytorch"])]
    foreign = [s["foreign_cpus"] for ss in samples.values() for s in ss]
    return {
        "bench": name, "label": BENCHES[name][0], "unit": BENCHES[name][1],
        "krill_median": med["krill"], "pytorch_median": med["pytorch"],
        "ratio": med["pytorch"] / med["krill"],
        "pair_ratio_median": statistics.median(pair_ratios),
        "krill_min": min(ns["krill"]) / div, "pytorch_min": min(ns["pytorch"]) / div,
        "krill_all": [x / div for x in ns["krill"]], "pytorch_all": [x / div for x in ns["pytorch"]],
        "foreign_cpus_median": statistics.median(foreign), "foreign_cpus_max": max(foreign),
        "blocks_over_max_foreign": sum(s["loaded"] for ss in samples.values() for s in ss),
        "discarded_blocks": sum(len(s["discarded_foreign_cpus"]) for ss in samples.values() for s in ss),
        "waited_quiet_s": waited, "runs": len(ns["krill"]),
        **extra,
    }


# ---------------------------------------------------------------- machine and run info
def machine_info(args, krill_cli):
    model = None
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == "Model name":
                model = v.strip()
    except OSError:
        pass
    flags = open("/proc/cpuinfo").read().split("flags", 1)[1].split("\n", 1)[0].split()
    try:
        rt = subprocess.run([krill_cli, "--runtime-info"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        rt = f"(failed: {e})"
    git = lambda *a: subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu_model": model, "cpus": os.cpu_count(), "avx512f": "avx512f" in flags,
        "loadavg_start": os.getloadavg(), "python_driver": platform.python_version(),
        "krill_runtime_info": rt,
        "git_commit": git("rev-parse", "--short", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--", "src", "include")),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                "OMP_WAIT_POLICY", "ATEN_CPU_CAPABILITY")},
        "settings": {"runs": args.runs, "block_s": args.block_s, "threads": args.threads,
                     "max_foreign": args.max_foreign, "retries": args.retries, "max_wait_s": args.max_wait},
    }


def fmt(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def print_table(results, info, out=sys.stdout):
    rows = [("benchmark", "unit", "krill", "PyTorch", "PyTorch/krill", "foreign load (cores)")]
    for r in results:
        rows.append((r["bench"], r["unit"], fmt(r["krill_median"]), fmt(r["pytorch_median"]), f"{r['ratio']:.1f}x",
                     f"{r['foreign_cpus_median']:.2f} (max {r['foreign_cpus_max']:.2f})"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    line = lambda row: "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) + " |"
    print(file=out)
    print(line(rows[0]), file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for row in rows[1:]:
        print(line(row), file=out)
    print(file=out)
    print(f"medians of {info['settings']['runs']} interleaved runs; {info['date']}; {info['cpu_model']}, "
          f"{info['cpus']} CPUs; load average {'/'.join(f'{x:.2f}' for x in info['loadavg_start'])} at start, "
          f"{'/'.join(f'{x:.2f}' for x in info['loadavg_end'])} at end; threads: krill workers {info['settings']['threads']},"
          f" PyTorch {info['settings']['threads']} + OpenBLAS {info['settings']['threads']}; krill train: its defaults",
          file=out)
    for r in results:
        if r["bench"] == "lab":
            f = r["final"]
            print("lab final accuracy: krill {}/{}, PyTorch {}/{} ({}); final train/val loss: krill {:.6f}/{:.6f}, "
                  "PyTorch {:.6f}/{:.6f}".format(f["krill"]["correct"], f["krill"]["total"], f["pytorch"]["correct"],
                                                 f["pytorch"]["total"], "same" if r["same_accuracy"] else "DIFFERENT",
                                                 f["krill"]["train_loss"], f["krill"]["val_loss"],
                                                 f["pytorch"]["train_loss"], f["pytorch"]["val_loss"]), file=out)
        if r["bench"] == "lab_raw":
            f = r["final"]
            print("lab_raw final accuracy: krill {}/{}, PyTorch {}/{} ({}); predicted class for x_new: krill {} (p={:.4f}),"
                  " PyTorch {} (p={:.4f}) ({}); final train/val loss: krill {:.6f}/{:.6f}, PyTorch {:.6f}/{:.6f}".format(
                      f["krill"]["correct"], f["krill"]["total"], f["pytorch"]["correct"], f["pytorch"]["total"],
                      "same" if r["same_accuracy"] else "DIFFERENT", f["krill"]["predicted_class"],
                      f["krill"]["probability"], f["pytorch"]["predicted_class"], f["pytorch"]["probability"],
                      "both class 1 in every run" if r["both_predict_class_1"] else "NOT class 1 in every run",
                      f["krill"]["train_loss"], f["krill"]["val_loss"], f["pytorch"]["train_loss"],
                      f["pytorch"]["val_loss"]), file=out)
    print("krill runtime:", info["krill_runtime_info"].replace("\n", "\n  "), file=out)
    pw = info.get("pytorch_worker")
    if pw:
        print(f"PyTorch {pw['version']}: torch threads {pw['torch_threads']}, OpenBLAS threads {pw['openblas_threads']}"
              f" ({pw['openblas_config']})", file=out)
    print("environment:", ", ".join(f"{k}={v}" for k, v in info["env"].items() if v is not None) or "(no thread/BLAS "
          "variables set)", file=out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="krill build directory (default ./build)")
    ap.add_argument("--runs", type=int, default=None, help="interleaved runs per benchmark (default 7, --quick 3)")
    ap.add_argument("--quick", action="store_true", help="3 runs of 0.1 s blocks, shorter quiet waits")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BENCHES))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter with torch")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for both workers: krill OpenMP; torch intra-op + OpenBLAS (default 1)")
    ap.add_argument("--block-s", type=float, default=None, help="seconds per timed block (default 0.25, --quick 0.1)")
    add_load_options(ap, "block", 0.5, "half", 3.0)
    args = ap.parse_args()
    args.runs = args.runs or (3 if args.quick else 7)
    args.block_s = args.block_s or (0.1 if args.quick else 0.25)
    resolve_load_options(args)
    only = [b for b in args.only.split(",") if b] or list(BENCHES)
    only = [x for b in only for x in (list(DIST_BENCHES) if b == "dist" else [b])]
    for b in only:
        if b not in BENCHES and b not in DIST_BENCHES:
            ap.error(f"--only: unknown benchmark '{b}' (known: {', '.join(list(BENCHES) + list(DIST_BENCHES))}, dist)")

    build = os.path.abspath(args.build)
    bench_bin = os.path.join(build, "bench", "bench_penguin_step")
    krill_cli = os.path.join(build, "krill")
    needed = ((bench_bin, "bench_penguin_step"),) if any(b in MICRO for b in only) else ()
    needed += ((krill_cli, "krill_cli"),) if any(b in BENCHES for b in only) else ()  # dist_*: bench_dist only
    for path, target in needed:
        if not os.access(path, os.X_OK):
            sys.exit(f"run_bench.py: {path} not found; build it first: cmake --build {args.build} --target {target}")

    log = lambda s: print(s, file=sys.stderr, flush=True)
    info = machine_info(args, krill_cli)
    log(f"{info['cpu_model']}, {info['cpus']} CPUs, load average {info['loadavg_start']}")
    results = []
    micro = [b for b in MICRO if b in only]
    if micro:
        workers = {}
        try:
            workers["krill"] = Worker("krill", [bench_bin, "--serve", "--data", os.path.join(ROOT, "data")])
            workers["pytorch"] = Worker("pytorch", [args.python, os.path.join(HERE, "torch_side.py"), "--serve",
                                                    "--threads", str(args.threads)])
            for w in workers.values():
                info[f"{w.impl}_worker"] = {**w.ready, **w.ask("threads", args.threads)}
            for name in micro:
                log(f"{name}: {BENCHES[name][0]}")
                results.append(run_micro(name, workers, args, log))
        finally:
            for w in workers.values():
                w.close()
    if "lab" in only:
        log(f"lab: {BENCHES['lab'][0]}")
        results.append(run_lab(args, krill_cli, log))
    if "lab_raw" in only:
        log(f"lab_raw: {BENCHES['lab_raw'][0]}")
        results.append(run_lab_raw(args, krill_cli, log))
    dist_names = [b for b in only if b in DIST_BENCHES]
    dist_results = run_dist(dist_names, args, build, log) if dist_names else []
    info["loadavg_end"] = os.getloadavg()
    if results or not dist_results:
        print_table(results, info)
    if dist_results:
        print_dist_table(dist_results, info)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results + dist_results}, f, indent=1)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
