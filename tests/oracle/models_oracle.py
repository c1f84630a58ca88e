#!/usr/bin/python3
"""PyTorch / torchvision 0.14 oracle for krill's image models (tests/nn/test_models.cpp).

usage: models_oracle.py structure            print(model) and state-dict entries, as JSON
       models_oracle.py init --seed S        per-tensor fingerprints of freshly built models
       models_oracle.py forward --seed S --out DIR
                                             weights, inputs, outputs and gradients (safetensors)
       models_oracle.py time [--threads 2] [--reps 5]
                                             median forward+backward times (not a test)

Models (keys): lenet (the CIFAR-10 tutorial net, 3x32x32, 10 classes), lenet_1x28 (the same net
adapted to 1x28x28), resnet18/34/50 and densenet121 (num_classes 10, 3 channels), and for init
resnet18_c1 / densenet121_c1 (1 input channel: torchvision's classes with the first convolution
built for 1 channel).

`structure` and `init` print a line "@@JSON@@" and then one JSON object.
`structure`: {key: {"repr": print(model) text, "state": [[name, shape, dtype], ...]}}.

`init` runs torch.manual_seed(S) before building each model and prints {key: {name: {"shape",
"head": first 8 values, "tail": last 8 values, "sum", "sumsq" (float64)}}}.

`forward` writes one safetensors file per case to DIR (keys: "w.<state-dict name>" weights,
"x" input, "y" int64 targets, "eval_out", "train_out", "loss", "grad.<name>" gradients of
cross_entropy(train_out, y), "after.<name>" BatchNorm running stats after the train-mode forward;
for resnet18 and densenet121 also "exact.<same>": the same steps in float64 on the same weights,
so a test can tell krill's float32 error from PyTorch's where BatchNorm over few values makes
the float32 result ill-conditioned):
  resnet18.safetensors     resnet18(num_classes=10), BN affine and running stats randomised,
                           x [4, 3, 64, 64]: eval forward, then train forward + backward
  densenet121.safetensors  densenet121(num_classes=10), BN randomised, x [8, 3, 32, 32]: eval
                           forward, then a train forward (outputs and running stats only)
  lenet.safetensors, lenet_1x28.safetensors: train forward + backward, all gradients
"""
import argparse
import copy
import json
import os
import statistics
import struct
import sys
import time
import types

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.models.densenet as tv_densenet
import torchvision.models.resnet as tv_resnet


class LeNet(nn.Module):
    """The PyTorch CIFAR-10 tutorial's Net, with fc1's input from the image size; images under 32 px
    are padded by 2 in conv1 (LeNet-5 on 28x28 MNIST, as bench/peers' Fashion-MNIST LeNet)."""

    def __init__(self, in_channels=3, height=32, width=32, num_classes=10):
        super().__init__()
        pad = 2 if min(height, width) < 32 else 0
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        h = ((height + 2 * pad - 4) // 2 - 4) // 2
        w = ((width + 2 * pad - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * h * w, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def with_in_channels(module, ctor, channels, **kw):
    """Builds a torchvision model whose first convolution (hard-wired to 3 input channels) takes
    `channels`, drawing exactly as krill does: the module's `nn` is swapped for one whose Conv2d
    rewrites in_channels 3 -> channels for the 7x7 stem."""

    class StemConv2d(nn.Conv2d):
        def __init__(self, in_channels, out_channels, kernel_size, *a, **k):
            if in_channels == 3 and kernel_size == 7:
                in_channels = channels
            super().__init__(in_channels, out_channels, kernel_size, *a, **k)

    proxy = types.SimpleNamespace(**{k: getattr(nn, k) for k in dir(nn) if not k.startswith("__")})
    proxy.Conv2d = StemConv2d
    saved = module.nn
    module.nn = proxy
    try:
        return ctor(**kw)
    finally:
        module.nn = saved


BUILDERS = {
    "lenet": lambda: LeNet(3, 32, 32, 10),
    "lenet_1x28": lambda: LeNet(1, 28, 28, 10),
    "resnet18": lambda: torchvision.models.resnet18(num_classes=10),
    "resnet34": lambda: torchvision.models.resnet34(num_classes=10),
    "resnet50": lambda: torchvision.models.resnet50(num_classes=10),
    "densenet121": lambda: torchvision.models.densenet121(num_classes=10),
    "resnet18_c1": lambda: with_in_channels(tv_resnet, torchvision.models.resnet18, 1, num_classes=10),
    "densenet121_c1": lambda: with_in_channels(tv_densenet, torchvision.models.densenet121, 1, num_classes=10),
}
STRUCTURE_KEYS = ["lenet", "lenet_1x28", "resnet18", "resnet34", "resnet50", "densenet121"]


def emit(obj):
    # A marker line, then the JSON (warnings a library prints stay before the marker).
    sys.stdout.write("@@JSON@@\n")
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")


def cmd_structure(args):
    out = {}
    for key in STRUCTURE_KEYS:
        m = BUILDERS[key]()
        out[key] = {
            "repr": repr(m),
            "state": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in m.state_dict().items()],
        }
    emit(out)


def cmd_init(args):
    out = {}
    for key in BUILDERS:
        torch.manual_seed(args.seed)
        m = BUILDERS[key]()
        entry = {}
        for k, v in m.state_dict().items():
            flat = v.detach().reshape(-1)
            d = flat.double()
            entry[k] = {
                "shape": list(v.shape),
                "head": [float(x) for x in flat[:8].tolist()],
                "tail": [float(x) for x in flat[-8:].tolist()],
                "sum": float(d.sum()),
                "sumsq": float((d * d).sum()),
            }
        out[key] = entry
    emit(out)


ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save_safetensors(tensors, path):
    """tensors: list of (name, tensor), written in this order (8-byte aligned header)."""
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        t = t.detach().contiguous().cpu()
        b = t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def randomise_bn(model, g):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def run_steps(model, x, y, grad_names, eval_first, prefix):
    """eval forward (optional), train forward (+ backward when grad_names is not None), and the
    BatchNorm buffers after it, as (name, tensor) items named with `prefix`."""
    items = []
    if eval_first:
        model.eval()
        with torch.no_grad():
            items.append((prefix + "eval_out", model(x)))
    model.train()
    out = model(x)
    items.append((prefix + "train_out", out))
    if grad_names is not None:
        loss = F.cross_entropy(out, y)
        loss.backward()
        items.append((prefix + "loss", loss.reshape(1)))
        params = dict(model.named_parameters())
        for n in grad_names or params:
            items.append((prefix + "grad." + n, params[n].grad))
    for k, v in model.state_dict().items():
        if "running_" in k:
            items.append((prefix + "after." + k, v))
    return items


def forward_case(model, x, y, path, grad_names, eval_first, exact=False):
    # clone: the train-mode forward updates the BatchNorm buffers in place
    items = [("w." + k, v.clone()) for k, v in model.state_dict().items()]
    items += [("x", x), ("y", y)]
    model64 = copy.deepcopy(model).double() if exact else None
    items += run_steps(model, x, y, grad_names, eval_first, "")
    if exact:
        items += run_steps(model64, x.double(), y, grad_names, eval_first, "exact.")
    save_safetensors(items, path)


def cmd_forward(args):
    os.makedirs(args.out, exist_ok=True)
    g = torch.Generator().manual_seed(args.seed + 1)

    torch.manual_seed(args.seed)
    m = torchvision.models.resnet18(num_classes=10)
    randomise_bn(m, g)
    x = torch.randn(4, 3, 64, 64, generator=g)
    y = torch.randint(0, 10, (4,), generator=g)
    grads = ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
             "layer2.0.downsample.1.bias", "layer3.1.bn2.bias", "layer4.1.conv2.weight", "fc.weight", "fc.bias"]
    forward_case(m, x, y, os.path.join(args.out, "resnet18.safetensors"), grads, True, exact=True)

    torch.manual_seed(args.seed)
    m = torchvision.models.densenet121(num_classes=10)
    randomise_bn(m, g)
    x = torch.randn(8, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (8,), generator=g)
    forward_case(m, x, y, os.path.join(args.out, "densenet121.safetensors"), None, True, exact=True)

    for key, shape in (("lenet", (4, 3, 32, 32)), ("lenet_1x28", (3, 1, 28, 28))):
        torch.manual_seed(args.seed)
        m = BUILDERS[key]()
        x = torch.randn(*shape, generator=g)
        y = torch.randint(0, 10, (shape[0],), generator=g)
        forward_case(m, x, y, os.path.join(args.out, key + ".safetensors"), [], True)


def cmd_time(args):
    torch.set_num_threads(args.threads)
    cases = [("resnet18", torchvision.models.resnet18, 32, 32), ("resnet50", torchvision.models.resnet50, 224, 8)]
    for name, ctor, size, batch in cases:
        m = ctor(num_classes=10)
        m.train()
        x = torch.randn(batch, 3, size, size)
        y = torch.randint(0, 10, (batch,))
        times = []
        for i in range(args.reps + 1):
            t0 = time.perf_counter()
            m.zero_grad()
            F.cross_entropy(m(x), y).backward()
            times.append(time.perf_counter() - t0)
        med = statistics.median(times[1:])
        print("%s %dpx batch %d: forward+backward median %.1f ms (%.1f img/s), threads %d" %
              (name, size, batch, med * 1e3, batch / med, args.threads))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("structure")
    p = sub.add_parser("init")
    p.add_argument("--seed", type=int, required=True)
    p = sub.add_parser("forward")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("time")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    if args.cmd != "time":
        torch.set_num_threads(2)
    {"structure": cmd_structure, "init": cmd_init, "forward": cmd_forward, "time": cmd_time}[args.cmd](args)


if __name__ == "__main__":
    main()
