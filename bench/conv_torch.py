#!/usr/bin/python3
"""PyTorch side of bench/conv_bench.cpp (same workloads, see there).

usage: conv_torch.py <workload> <batch> <iterations> [--threads T]   (run with /usr/bin/python3)
Prints one JSON line: microseconds per iteration, the median of 5 timed blocks.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def features(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return F.max_pool2d(F.relu(self.conv2(h)), 2)

    def forward(self, x):
        h = self.features(x).flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(h)))))


class CifarLeNet(nn.Module):
    """The PyTorch CIFAR-10 tutorial net (krill's nn::LeNet at 3x32x32)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload")
    ap.add_argument("batch", type=int)
    ap.add_argument("iters", type=int)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    B = a.batch
    if a.workload.startswith("lenet"):
        net = LeNet()
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        x = torch.randn(B, 1, 28, 28)
        y = torch.randint(0, 10, (B,))
        if a.workload == "lenet_convs":
            def step():
                net.zero_grad()
                net.features(x).sum().backward()
        else:
            def step():
                opt.zero_grad()
                loss = F.cross_entropy(net(x), y)
                loss.item()
                loss.backward()
                opt.step()
    elif a.workload in ("lenet_cifar", "resnet18_32", "resnet50_224"):
        import torchvision
        px, classes = (224, 1000) if a.workload == "resnet50_224" else (32, 10)
        if a.workload == "lenet_cifar":
            net = CifarLeNet()
        else:
            net = getattr(torchvision.models, a.workload[:8])(num_classes=classes)
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.001 if a.workload == "lenet_cifar" else 0.01, momentum=0.9)
        x = torch.randn(B, 3, px, px)
        y = torch.randint(0, classes, (B,))

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.item()
            loss.backward()
            opt.step()
    elif a.workload == "resnet_conv":
        x = torch.randn(B, 64, 56, 56)
        w = (torch.randn(64, 64, 3, 3) * 0.05).requires_grad_()
        rm, rv = torch.zeros(64), torch.ones(64)
        g, b = torch.ones(64, requires_grad=True), torch.zeros(64, requires_grad=True)

        def step():
            h = F.relu(F.batch_norm(F.conv2d(x, w, None, 1, 1), rm, rv, g, b, True))
            h.sum().backward()
            w.grad = g.grad = b.grad = None
    else:
        raise SystemExit("unknown workload " + a.workload)
    for _ in range(max(3, a.iters // 10)):
        step()
    blocks = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(a.iters):
            step()
        blocks.append((time.perf_counter() - t0) * 1e6 / a.iters)
    print(json.dumps({"side": "torch", "workload": a.workload, "batch": B,
                      "us_per_iter": round(statistics.median(blocks), 2)}))


if __name__ == "__main__":
    main()
