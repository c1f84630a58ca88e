#!/usr/bin/python3
"""PyTorch side of the image-classification benchmarks (bench/image_bench.py, bench/README.md).

Adapted from the peers' baselines in shared/bench/peers/ (lenet_pytorch.py, resnet_pytorch.py,
fashion_mnist_pytorch.py, penguins_ddp.py and common.py's set_threads), by the peer-benchmark
authors; copied here so that the benchmark is self-contained. Run it with /usr/bin/python3 (torch
1.13, torchvision 0.14).

Step workloads (the same work as bench/cnn_step_bench.cpp): zero_grad + forward +
CrossEntropyLoss + item() + backward + SGD(momentum 0.9) step on random data (torch.manual_seed(0)):
  lenet_b4      the CIFAR-10 tutorial net (3x32x32), batch 4, SGD lr 0.001, 32 random batches cycled
  resnet18_b32  torchvision resnet18(num_classes=10), 3x32x32, batch 32, SGD lr 0.01, one batch
  resnet50_b8   torchvision resnet50(num_classes=1000), 3x224x224, batch 8, SGD lr 0.01, one batch

Usage:
  torch_cnn.py [--reps N] [--only a,b]        standalone: N timed ~1 s blocks per step workload
  torch_cnn.py --serve                        for image_bench.py: stdin commands
      calibrate <name> <seconds> | run <name> <steps> [max_seconds] | quit
      (run stops early once max_seconds have passed and answers the steps it did)
  torch_cnn.py fashion [--epochs 2] [--data DIR]
      Fashion-MNIST LeNet (1x28x28, conv1 padding 2), Adam 1e-3, batch 64, DataLoader shuffled
      with a generator seeded 0, pixels scaled to [0,1]; per epoch the training pass's images/s
      (DataLoader included) and the test accuracy. Prints one JSON line.
  torch_cnn.py ddp [--np 2] [--epochs 2]
      the same training with DistributedDataParallel (gloo over 127.0.0.1, torch.multiprocessing
      spawn), DistributedSampler (seed 0, set_epoch), batch 64 per rank, lr 0.001 x np, 1 + 1
      threads per process; the job's images/s per epoch (60000 / rank 0's epoch time between
      barriers) and rank 0's test accuracy. Prints one JSON line.
Threads: --threads T (torch intra-op, OpenMP; default 2) and --blas-threads B (OpenBLAS; default
1): 2 + 1 is PyTorch's best setting for conv nets on these 2-core machines (peers' RESULTS.md).
Debian's torch does not pass set_num_threads on to OpenBLAS, so that is set through the loaded
library.
"""
import argparse
import ctypes
import gzip
import json
import os
import socket
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    _OPENBLAS = ctypes.CDLL("libopenblas.so.0")
    _OPENBLAS.openblas_get_config.restype = ctypes.c_char_p
except (OSError, AttributeError):
    _OPENBLAS = None

FASHION = "/usr/share/datasets/fashion-mnist"


def set_threads(torch_threads, blas_threads=None):
    """torch intra-op (OpenMP, also oneDNN) threads and OpenBLAS threads. OpenBLAS first: in its
    OpenMP build (Debian's libopenblas0-openmp, which krill's setup installs and which then also
    serves torch's libblas.so.3) openblas_set_num_threads(n) also calls omp_set_num_threads(n), so
    the other order would leave torch on n threads too. Afterwards OpenBLAS stays on 1 thread when
    set to 1 (it follows OpenMP's count only when above 1)."""
    if _OPENBLAS is not None:
        _OPENBLAS.openblas_set_num_threads(blas_threads or torch_threads)
    torch.set_num_threads(torch_threads)


def threads_info():
    return {"torch_threads": torch.get_num_threads(),
            "openblas_threads": _OPENBLAS.openblas_get_num_threads() if _OPENBLAS else None,
            "openblas_config": _OPENBLAS.openblas_get_config().decode() if _OPENBLAS else None}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- models
class TutorialNet(nn.Module):  # lenet_pytorch.py's Net: the CIFAR-10 tutorial net
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class FashionLeNet(nn.Module):  # fashion_mnist_pytorch.py's LeNet (conv1 padded by 2 for 28x28)
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


# ---------------------------------------------------------------- per-step workloads
# name: (model, classes, px, batch, lr, random batches cycled, warm-up steps)
SPECS = {
    "lenet_b4": ("lenet", 10, 32, 4, 0.001, 32, 20),
    "resnet18_b32": ("resnet18", 10, 32, 32, 0.01, 1, 3),
    "resnet50_b8": ("resnet50", 1000, 224, 8, 0.01, 1, 3),
}
ORDER = ["lenet_b4", "resnet18_b32", "resnet50_b8"]


class Workload:
    def __init__(self, name):
        arch, classes, px, batch, lr, pool, warmup = SPECS[name]
        self.batch, self.pool, self.warmup = batch, pool, warmup
        torch.manual_seed(0)
        if arch == "lenet":
            self.model = TutorialNet()
        else:
            import torchvision
            self.model = getattr(torchvision.models, arch)(num_classes=classes)
        self.model.train()
        self.data = [(torch.randn(batch, 3, px, px), torch.randint(0, classes, (batch,))) for _ in range(pool)]
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9)
        self.criterion = nn.CrossEntropyLoss()
        self.i, self.last_loss = 0, 0.0

    def step(self):
        x, y = self.data[self.i % self.pool]
        self.i += 1
        self.optimizer.zero_grad()
        loss = self.criterion(self.model(x), y)
        self.last_loss = loss.item()
        loss.backward()
        self.optimizer.step()

    def time_ns(self, n):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            self.step()
        return time.perf_counter_ns() - t0

    def time_ns_capped(self, n, max_ns):
        t0 = time.perf_counter_ns()
        k, ns = 0, 0
        while k < n:
            self.step()
            k += 1
            ns = time.perf_counter_ns() - t0
            if ns > max_ns:
                break
        return k, ns

    def calibrate(self, seconds):
        """Warm up (at least the warm-up steps, 3 steps and 0.2 s), then the step count of a ~seconds block."""
        times = []
        while len(times) < max(3, self.warmup) or sum(times) < 0.2e9:
            times.append(self.time_ns(1))
        t = sorted(times[-3:])[1]  # the median of the last three, so one slow step does not halve the block
        return max(1, round(seconds * 1e9 / t))


def serve():
    workloads = {}
    reply({"ready": True, "impl": "pytorch", "version": torch.__version__, **threads_info()})
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        cmd, name = parts[0], parts[1] if len(parts) > 1 else ""
        if name not in SPECS:
            reply({"error": "unknown benchmark '%s'" % name})
            continue
        if name not in workloads:
            workloads[name] = Workload(name)
        w = workloads[name]
        if cmd == "calibrate":
            reply({"bench": name, "iters": w.calibrate(float(parts[2]) if len(parts) > 2 else 1.0)})
        elif cmd == "run":
            max_s = float(parts[3]) if len(parts) > 3 else 1e9
            iters, ns = w.time_ns_capped(int(parts[2]), max_s * 1e9)
            reply({"bench": name, "iters": iters, "ns_total": ns, "ns_per_iter": ns / iters,
                   "check": "%.6g" % w.last_loss})
        else:
            reply({"error": "unknown command '%s'" % cmd})


def standalone(args):
    for name in ORDER:
        if args.only and name not in args.only.split(","):
            continue
        w = Workload(name)
        n = w.calibrate(1.0)
        per = sorted(w.time_ns(n) / n for _ in range(args.reps))
        med = statistics.median(per)
        reply({"bench": name, "impl": "pytorch", **threads_info(), "ms_per_step_median": med / 1e6,
               "ms_per_step_min": per[0] / 1e6, "steps_per_s": 1e9 / med, "images_per_s": 1e9 / med * w.batch,
               "steps_per_block": n, "reps": args.reps, "check": "%.6g" % w.last_loss})


# ---------------------------------------------------------------- Fashion-MNIST
def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion(data):
    xs = {k: torch.from_numpy(read_idx(os.path.join(data, f"{k}-images-idx3-ubyte.gz")).astype(np.float32) / 255.0)
          .unsqueeze(1) for k in ("train", "t10k")}
    ys = {k: torch.from_numpy(read_idx(os.path.join(data, f"{k}-labels-idx1-ubyte.gz")).astype(np.int64))
          for k in ("train", "t10k")}
    return xs["train"], ys["train"], xs["t10k"], ys["t10k"]


def test_accuracy(model, x_test, y_test):
    model.eval()
    with torch.no_grad():
        correct = sum((model(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum().item()
                      for i in range(0, len(x_test), 1000))
    model.train()
    return correct / len(x_test)


def fashion(args):
    import torch.utils.data as td
    t_load = time.perf_counter()
    x_train, y_train, x_test, y_test = load_fashion(args.data)
    load_s = time.perf_counter() - t_load
    torch.manual_seed(0)
    loader = td.DataLoader(td.TensorDataset(x_train, y_train), batch_size=64, shuffle=True,
                           generator=torch.Generator().manual_seed(0))
    model = FashionLeNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    epochs = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        loss_sum, nb = 0.0, 0
        t0 = time.perf_counter()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            nb += 1
        train_s = time.perf_counter() - t0
        epochs.append({"epoch": epoch, "train_s": train_s, "images_per_s": len(x_train) / train_s,
                       "train_loss": loss_sum / nb, "val_accuracy": test_accuracy(model, x_test, y_test)})
    reply({"impl": "pytorch", "load_s": load_s, "epochs": epochs, **threads_info()})


def ddp_worker(rank, world, port, args, outdir):
    import torch.distributed as dist
    import torch.utils.data as td
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data.distributed import DistributedSampler
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    set_threads(1, 1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    x_train, y_train, x_test, y_test = load_fashion(args.data)
    torch.manual_seed(0)
    ds = td.TensorDataset(x_train, y_train)
    sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = td.DataLoader(ds, batch_size=64, sampler=sampler)
    model = FashionLeNet()
    ddp = DDP(model)  # broadcasts rank 0's parameters, averages gradients in backward
    optimizer = torch.optim.Adam(ddp.parameters(), lr=1e-3 * world)
    criterion = nn.CrossEntropyLoss()
    epochs = []
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch - 1)
        ddp.train()
        loss_sum, nb = 0.0, 0
        dist.barrier()
        t0 = time.perf_counter()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(ddp(xb), yb)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            nb += 1
        dist.barrier()
        train_s = time.perf_counter() - t0
        acc = test_accuracy(model, x_test, y_test) if rank == 0 else None
        epochs.append({"epoch": epoch, "train_s": train_s, "images_per_s": len(x_train) / train_s,
                       "train_loss_rank0": loss_sum / nb, "val_accuracy": acc})
    if rank == 0:
        with open(os.path.join(outdir, "rank0.json"), "w") as f:
            json.dump({"epochs": epochs, "samples_per_rank": len(sampler)}, f)
    dist.destroy_process_group()


def ddp(args):
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as outdir:
        mp.spawn(ddp_worker, args=(args.np, port, args, outdir), nprocs=args.np, join=True)
        res = json.load(open(os.path.join(outdir, "rank0.json")))
    reply({"impl": "pytorch_ddp", "world_size": args.np, "threads_per_process": "1 + 1", **res})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", default="steps", choices=["steps", "fashion", "ddp"])
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--data", default=FASHION)
    args = ap.parse_args()
    if args.mode == "ddp":
        return ddp(args)
    set_threads(args.threads, args.blas_threads)
    if args.mode == "fashion":
        return fashion(args)
    if args.serve:
        return serve()
    return standalone(args)


if __name__ == "__main__":
    main()
