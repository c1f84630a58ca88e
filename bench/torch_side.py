#!/usr/bin/python3
"""PyTorch side of the in-process benchmarks: the same workloads as bench/penguin_step.cpp.

  penguin_step  the lab's PenguinNet (5->10->10->3, ReLU, ReLU, log_softmax), batch 20 (the first
                20 rows of data/penguins_train.csv), CrossEntropyLoss on the log_softmax output,
                Adam(1e-3): zero_grad + forward + loss + item() + backward + step
  add           c = a + b on 1-element float tensors with requires_grad=True
  gemm_tiny     torch.matmul [20,5] x [5,10]
  gemm_256      torch.matmul [256,256] x [256,256]

Usage (run with /usr/bin/python3, which has torch):
  torch_side.py [--reps N] [--data DIR] [--threads T]   standalone, one JSON line per benchmark
  torch_side.py --serve [--data DIR] [--threads T]       for run_bench.py: stdin commands
      calibrate <bench> <seconds> | run <bench> <iters> | threads <n> | quit
Threads: T torch intra-op (OpenMP) threads and T OpenBLAS threads (default 1 + 1). Debian's torch
runs GEMMs in the system OpenBLAS (pthread build) and does not pass set_num_threads on to it, so
OpenBLAS is set directly through the already-loaded library.
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    _OPENBLAS = ctypes.CDLL("libopenblas.so.0")
    _OPENBLAS.openblas_get_config.restype = ctypes.c_char_p
except (OSError, AttributeError):
    _OPENBLAS = None


def set_threads(torch_threads, blas_threads=None):
    torch.set_num_threads(torch_threads)
    if _OPENBLAS is not None:
        _OPENBLAS.openblas_set_num_threads(blas_threads or torch_threads)


def threads_info():
    return {"torch_threads": torch.get_num_threads(),
            "openblas_threads": _OPENBLAS.openblas_get_num_threads() if _OPENBLAS else None,
            "openblas_config": _OPENBLAS.openblas_get_config().decode() if _OPENBLAS else None}


class PenguinNet(torch.nn.Module):  # the lab's model
    def __init__(self, n_in=5, hl=10, n_out=3):
        super().__init__()
        self.fc1 = torch.nn.Linear(n_in, hl)
        self.fc2 = torch.nn.Linear(hl, hl)
        self.fc3 = torch.nn.Linear(hl, n_out)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return torch.nn.functional.log_softmax(self.fc3(x).float(), dim=1)


def read_penguin_batch(path, rows=20):
    xs, ys = [], []
    with open(path) as f:
        next(f)  # header
        for line in f:
            v = line.strip().split(",")
            xs.append([float(t) for t in v[:5]])
            ys.append(int(v[5]))
            if len(ys) == rows:
                break
    return torch.tensor(xs, dtype=torch.float32), torch.tensor(ys, dtype=torch.int64)


def make_benches(data_dir):
    torch.manual_seed(0)
    benches = {}

    x, y = read_penguin_batch(os.path.join(data_dir, "penguins_train.csv"))
    model = PenguinNet()
    loss_criteria = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    last = [0.0]

    def penguin_step(n):
        for _ in range(n):
            optimizer.zero_grad()
            out = model(x)
            loss = loss_criteria(out, y)
            last[0] = loss.item()
            loss.backward()
            optimizer.step()

    benches["penguin_step"] = (penguin_step, lambda: "%.6g" % last[0])

    a = torch.randn(1, requires_grad=True)
    b = torch.randn(1, requires_grad=True)

    def add(n):
        for _ in range(n):
            c = a + b  # noqa: F841

    benches["add"] = (add, lambda: "graph" if (a + b).grad_fn is not None else "no-graph")

    for name, (m, k, n_) in {"gemm_tiny": (20, 5, 10), "gemm_256": (256, 256, 256)}.items():
        A, B = torch.randn(m, k), torch.randn(k, n_)

        def gemm(n, A=A, B=B):
            mm = torch.matmul
            for _ in range(n):
                c = mm(A, B)  # noqa: F841

        benches[name] = (gemm, lambda A=A, B=B: "%f" % torch.matmul(A, B).sum().item())
    return benches


def time_ns(fn, n):
    t0 = time.perf_counter_ns()
    fn(n)
    return time.perf_counter_ns() - t0


def calibrate(fn, seconds):
    """Warm up (at least 0.1 s and 200 iterations), then the iteration count of a `seconds` block."""
    n, warm, warm_iters = 1, 0, 0
    while warm < 0.1e9 or warm_iters < 200:
        t = time_ns(fn, n)
        warm += t
        warm_iters += n
        if t < 0.02e9:
            n *= 2
    t = time_ns(fn, n)
    return max(1, int(seconds * 1e9 / (t / n)))


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(benches):
    reply({"ready": True, "impl": "pytorch", "version": torch.__version__, **threads_info()})
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        cmd = parts[0]
        if cmd == "threads":
            set_threads(int(parts[1]))
            reply({"threads": torch.get_num_threads(), **threads_info()})
            continue
        name = parts[1] if len(parts) > 1 else ""
        if name not in benches:
            reply({"error": "unknown benchmark '%s'" % name})
            continue
        fn, check = benches[name]
        if cmd == "calibrate":
            reply({"bench": name, "iters": calibrate(fn, float(parts[2]) if len(parts) > 2 else 0.2)})
        elif cmd == "run":
            iters = int(parts[2])
            ns = time_ns(fn, iters)
            reply({"bench": name, "iters": iters, "ns_total": ns, "ns_per_iter": ns / iters, "check": check()})
        else:
            reply({"error": "unknown command '%s'" % cmd})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "data"))
    args = ap.parse_args()
    set_threads(args.threads)
    benches = make_benches(args.data)
    if args.serve:
        return serve(benches)
    for name in ("penguin_step", "add", "gemm_tiny", "gemm_256"):
        fn, check = benches[name]
        n = calibrate(fn, 0.2)
        per = [time_ns(fn, n) / n for _ in range(args.reps)]
        reply({"bench": name, "impl": "pytorch", "ns_median": statistics.median(per), "ns_min": min(per),
               "iters": n, "reps": args.reps, "check": check()})


if __name__ == "__main__":
    main()
