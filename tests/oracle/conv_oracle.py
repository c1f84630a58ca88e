#!/usr/bin/python3
"""PyTorch oracle for krill's CNN ops and layers (tests/tensor/test_conv_oracle.cpp,
tests/nn/test_conv_layers.cpp).

usage: conv_oracle.py ops --seed S --out DIR [--reps N]
       conv_oracle.py init --seed S          (prints parameters of freshly constructed layers)
       conv_oracle.py repr                   (prints print(model) of a reference model)

`ops` draws random configurations of conv2d, conv2d_relu, conv2d_relu_max_pool2d, max_pool2d, avg_pool2d,
adaptive_avg_pool2d, batch_norm and batch_norm_relu (train and eval) from the seed, runs PyTorch (float32) and
writes, like ops_oracle.py:

  DIR/data.bin        tensors, raw little-endian, each at an 8-byte aligned offset
  DIR/manifest.json   {"seed": S, "cases": [case, ...]}; a case is
      {"name", "op", "params",
       "inputs":  [tensor or null, ...]  (op-specific order, see below),
       "input_layout": "" | "t" (inputs[0] is stored with H and W swapped: use .transpose(2, 3)),
       "outputs": [out, (batch_norm training: running_mean, running_var after the call)],
       "weight":  R (the loss is sum(out * R)),
       "grads":   [gradient or null per differentiable input],
       "exact_outputs", "exact_grads": the same in float64 on the same inputs,
       "magnitude_outputs", "magnitude_grads": for sums of products (conv, avg pools): the float64
                  computation on |inputs| and |R| (sum of |terms| per element), else null}

inputs: conv2d/conv2d_relu/conv2d_relu_max_pool2d [x, weight, bias|null]; pools [x];
        batch_norm, batch_norm_relu [x, running_mean|null, running_var|null, weight|null, bias|null]
grads:  conv [dx|null (a first layer), dweight, dbias|null]; pools [dx]; batch_norm(_relu) [dx, dweight|null, dbias|null]
"""
import argparse
import json
import math
import os
import random
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64"}


class Writer:
    def __init__(self, seed):
        self.blob = bytearray()
        self.cases = []
        self.seed = seed
        self.counts = {}

    def put(self, t):
        if t is None:
            return None
        t = t.detach().contiguous().cpu()
        off = len(self.blob)
        self.blob += t.numpy().tobytes()
        while len(self.blob) % 8:
            self.blob.append(0)
        return {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "offset": off}

    def write(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "data.bin"), "wb") as f:
            f.write(bytes(self.blob))
        with open(os.path.join(out_dir, "manifest.json"), "w") as f:
            json.dump({"seed": self.seed, "cases": self.cases}, f, indent=1)


def run_case(inputs, grad_mask, fn, r=None, to64=False, absval=False):
    """inputs: list of tensors/None; grad_mask: which get gradients; fn(args) -> list of outputs
    (outputs[0] differentiable). Returns (outs, grads, r)."""
    args = []
    for t, rg in zip(inputs, grad_mask):
        if t is None:
            args.append(None)
            continue
        t = t.detach().clone()
        if to64:
            t = t.double()
        if absval:
            t = t.abs()
        args.append(t.requires_grad_(bool(rg)))
    outs = fn(args)
    o = outs[0]
    if r is None:
        r = torch.randn(o.shape, dtype=torch.float64).float()
    rr = r.to(o.dtype)
    if absval:
        rr = rr.abs()
    (o * rr).sum().backward()
    grads = [a.grad if (a is not None and rg) else None for a, rg in zip(args, grad_mask)]
    grads = [g if g is not None or not rg or a is None else torch.zeros_like(a)
             for g, a, rg in zip(grads, args, grad_mask)]
    return outs, grads, r


def bn_magnitude(inputs, r, p):
    """Per element, the sum of |terms| of batch norm's output and gradients (float64), the
    scale of float32 rounding error (for few values per channel dx cancels to nearly zero)."""
    x, rm, rv, wt, b = [t.double() if t is not None else None for t in inputs]
    r = r.double()
    C = x.shape[1]
    dims = [0] + list(range(2, x.dim()))
    shape = [1, C] + [1] * (x.dim() - 2)
    if p["training"]:
        mean = x.mean(dims, keepdim=True)
        var = x.var(dims, unbiased=False, keepdim=True)
    else:
        mean, var = rm.reshape(shape), rv.reshape(shape)
    invstd = 1.0 / torch.sqrt(var + p["eps"])
    xhat = (x - mean) * invstd
    wa = wt.abs().reshape(shape) if wt is not None else torch.ones(shape, dtype=torch.float64)
    ba = b.abs().reshape(shape) if b is not None else torch.zeros(shape, dtype=torch.float64)
    ra = r.abs()
    out = [(xhat.abs() + 1.0) * wa + ba]
    if p["training"] and rm is not None:
        out += [rm.abs() + mean.abs().reshape(-1), rv.abs() + var.reshape(-1) * 2]
    if p["training"]:
        dx = wa * invstd * (ra + ra.mean(dims, keepdim=True) + xhat.abs() * (ra * xhat.abs()).mean(dims, keepdim=True))
    else:
        dx = wa * invstd * ra
    grads = [dx, None, None,
             (ra * xhat.abs()).sum(dims) if wt is not None else None,
             ra.sum(dims) if b is not None else None]
    return out, grads


def add_case(w, op, params, inputs, grad_mask, fn, multilinear, layout="", magnitude=None):
    def leaf(grads):
        # gradients of the stored leaves: with layout "t" the input is stored transposed
        if layout == "t" and grads[0] is not None:
            grads = [grads[0].transpose(2, 3)] + list(grads[1:])
        return grads

    outs, grads, r = run_case(inputs, grad_mask, fn)
    grads = leaf(grads)
    outs64, grads64, _ = run_case(inputs, grad_mask, fn, r, to64=True)
    grads64 = leaf(grads64)
    mag_o, mag_g = None, None
    if multilinear:
        mo, mg, _ = run_case(inputs, grad_mask, fn, r, to64=True, absval=True)
        mag_o = [w.put(t) for t in mo]
        mag_g = [w.put(t) for t in leaf(mg)]
    elif magnitude is not None:
        mo, mg = magnitude(inputs, r)
        mag_o = [w.put(t) for t in mo]
        mag_g = [w.put(t) for t in mg]
    n = w.counts.get(op, 0)
    w.counts[op] = n + 1
    stored = list(inputs)
    if layout == "t":
        stored[0] = inputs[0].transpose(2, 3).contiguous()
    w.cases.append({
        "name": "%s_%d" % (op, n), "op": op, "params": params,
        "inputs": [w.put(t) for t in stored], "input_layout": layout,
        "outputs": [w.put(t) for t in outs], "weight": w.put(r),
        "grads": [w.put(g) for g in grads],
        "exact_outputs": [w.put(t) for t in outs64], "exact_grads": [w.put(g) for g in grads64],
        "magnitude_outputs": mag_o, "magnitude_grads": mag_g,
    })


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64).float()


def gen_conv(w, rnd, reps):
    for i in range(reps):
        relu = i % 5 == 4
        kind = rnd.choice(["plain", "plain", "grouped", "depthwise"])
        if kind == "plain":
            groups = 1
            cin, cout = rnd.randint(1, 8), rnd.randint(1, 8)
        elif kind == "grouped":
            groups = rnd.randint(2, 3)
            cin, cout = groups * rnd.randint(1, 3), groups * rnd.randint(1, 3)
        else:
            groups = rnd.randint(1, 8)
            cin, cout = groups, groups * rnd.choice([1, 1, 2])
        if i % 7 == 3:  # channels that fill oneDNN's 16-wide blocks (blocked layouts)
            groups = 1
            cin, cout = 16 * rnd.randint(1, 2), 16 * rnd.randint(1, 2)
        kh, kw = rnd.randint(1, 5), rnd.randint(1, 5)
        sh, sw = rnd.randint(1, 3), rnd.randint(1, 3)
        dh, dw = rnd.randint(1, 3), rnd.randint(1, 3)
        ph, pw = rnd.randint(0, 2), rnd.randint(0, 2)
        ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
        hmin, wmin = max(1, ekh - 2 * ph), max(1, ekw - 2 * pw)
        H, W = rnd.randint(hmin, hmin + 12), rnd.randint(wmin, wmin + 12)
        N = rnd.randint(1, 4)
        bias = rnd.random() < 0.6
        three_d = i % 11 == 5
        x = randn(N, cin, H, W)
        wt = randn(cout, cin // groups, kh, kw) / math.sqrt(cin // groups * kh * kw)
        b = randn(cout) if bias else None
        params = {"stride": [sh, sw], "padding": [ph, pw], "dilation": [dh, dw], "groups": groups}
        layout = "t" if (rnd.random() < 0.2 and not three_d) else ""
        if three_d:
            x = x[0]
        f = F.conv2d
        fn = (lambda a, p=params: [torch.relu(f(a[0], a[1], a[2], **p))]) if relu else \
             (lambda a, p=params: [f(a[0], a[1], a[2], **p)])
        add_case(w, "conv2d_relu" if relu else "conv2d", params, [x, wt, b], [True, True, bias], fn,
                 multilinear=not relu, layout=layout)


def gen_conv_pool(w, rnd, reps):
    """max_pool2d(relu(conv2d(x))): LeNet's blocks, and random ones; a third with an input that
    needs no gradient (a first layer, for which krill picks other layouts)."""
    for i in range(reps):
        first = i % 3 == 0
        if i < 2:  # LeNet on 28x28: conv 1->6 5x5 pad 2 and 6->16 5x5, each with a 2x2 pool
            cin, cout, k, pad, H, W, groups = (1, 6, 5, 2, 28, 28, 1) if i == 0 else (6, 16, 5, 0, 14, 14, 1)
            kh = kw = k
            sh = sw = dh = dw = 1
            ph = pw = pad
            pk, ps, pp = [2, 2], [2, 2], [0, 0]
            N = rnd.randint(2, 8)
            bias = True
        else:
            groups = 1 if rnd.random() < 0.8 else rnd.randint(2, 3)
            cin = groups * rnd.randint(1, 4 if first else 8)
            cout = groups * rnd.randint(1, 8)
            if i % 7 == 3:
                groups, cin, cout = 1, 16 * rnd.randint(1, 2), 16 * rnd.randint(1, 2)
            kh, kw = rnd.randint(1, 5), rnd.randint(1, 5)
            sh, sw = rnd.randint(1, 2), rnd.randint(1, 2)
            dh, dw = rnd.randint(1, 2), rnd.randint(1, 2)
            ph, pw = rnd.randint(0, 2), rnd.randint(0, 2)
            pk = [rnd.randint(1, 3), rnd.randint(1, 3)]
            ps = list(pk) if rnd.random() < 0.6 else [rnd.randint(1, 3), rnd.randint(1, 3)]
            pp = [rnd.randint(0, pk[0] // 2), rnd.randint(0, pk[1] // 2)]
            ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
            H = rnd.randint(max(1, ekh - 2 * ph) + pk[0], ekh + 12)
            W = rnd.randint(max(1, ekw - 2 * pw) + pk[1], ekw + 12)
            N = rnd.randint(1, 4)
            bias = rnd.random() < 0.7
        x = randn(N, cin, H, W)
        wt = randn(cout, cin // groups, kh, kw) / math.sqrt(cin // groups * kh * kw)
        b = randn(cout) if bias else None
        params = {"stride": [sh, sw], "padding": [ph, pw], "dilation": [dh, dw], "groups": groups,
                  "pool_kernel": pk, "pool_stride": ps, "pool_padding": pp}
        cp = {k: params[k] for k in ("stride", "padding", "dilation", "groups")}
        fn = lambda a, cp=cp, pk=pk, ps=ps, pp=pp: [
            F.max_pool2d(torch.relu(F.conv2d(a[0], a[1], a[2], **cp)), pk, ps, pp)]
        try:
            fn([x, wt, b])
        except RuntimeError:
            continue  # the convolution's output is too small for this pool
        add_case(w, "conv2d_relu_max_pool2d", params, [x, wt, b], [not first, True, bias], fn, multilinear=False)


def gen_pool(w, rnd, reps):
    for i in range(reps):
        op = rnd.choice(["max_pool2d", "avg_pool2d"])
        kh, kw = rnd.randint(1, 4), rnd.randint(1, 4)
        sh, sw = (kh, kw) if rnd.random() < 0.3 else (rnd.randint(1, 3), rnd.randint(1, 3))
        ph, pw = rnd.randint(0, kh // 2), rnd.randint(0, kw // 2)
        dh, dw = (rnd.randint(1, 2), rnd.randint(1, 2)) if op == "max_pool2d" else (1, 1)
        ceil = rnd.random() < 0.4
        ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
        # (at least the dilated kernel: a dilated window can otherwise fall entirely on padding,
        # where PyTorch 1.13's max_pool2d backward writes out of bounds)
        H, W = rnd.randint(ekh, 15), rnd.randint(ekw, 15)
        N, C = rnd.randint(1, 3), rnd.randint(1, 5)
        x = randn(N, C, H, W)
        three_d = i % 9 == 4
        if three_d:
            x = x[0]
        if op == "max_pool2d":
            params = {"kernel_size": [kh, kw], "stride": [sh, sw], "padding": [ph, pw], "dilation": [dh, dw],
                      "ceil_mode": ceil}
            fn = lambda a, p=params: [F.max_pool2d(a[0], **p)]
        else:
            params = {"kernel_size": [kh, kw], "stride": [sh, sw], "padding": [ph, pw], "ceil_mode": ceil,
                      "count_include_pad": rnd.random() < 0.5}
            fn = lambda a, p=params: [F.avg_pool2d(a[0], **p)]
        try:
            fn([x])
        except RuntimeError:
            continue  # output too small for this draw
        layout = "t" if (rnd.random() < 0.2 and not three_d) else ""
        add_case(w, op, params, [x], [True], fn, multilinear=op == "avg_pool2d", layout=layout)
    for i in range(max(4, reps // 3)):
        N, C = rnd.randint(1, 3), rnd.randint(1, 5)
        H, W = rnd.randint(1, 13), rnd.randint(1, 13)
        oh, ow = rnd.randint(1, H + 2), rnd.randint(1, W + 2)
        if i % 4 == 0:  # divisible windows (the oneDNN path)
            oh, ow = rnd.choice([d for d in range(1, H + 1) if H % d == 0]), \
                     rnd.choice([d for d in range(1, W + 1) if W % d == 0])
        x = randn(N, C, H, W)
        params = {"output_size": [oh, ow]}
        add_case(w, "adaptive_avg_pool2d", params, [x], [True],
                 lambda a, p=params: [F.adaptive_avg_pool2d(a[0], p["output_size"])], multilinear=True)


def gen_bn(w, rnd, reps, relu=False):
    op = "batch_norm_relu" if relu else "batch_norm"
    for i in range(reps):
        training = i % 2 == 0
        N, C = rnd.randint(1, 4), rnd.randint(1, 20)
        nd = rnd.choice([4, 4, 4, 2, 3])
        spatial = [rnd.randint(1, 9) for _ in range(nd - 2)]
        if training and N * math.prod(spatial) < 2:
            N = 2
        x = randn(N, C, *spatial) * rnd.uniform(0.5, 3) + rnd.uniform(-2, 2)
        affine = rnd.random() < 0.75
        track = (not training) or rnd.random() < 0.8
        rm = randn(C) * 0.5 if track else None
        rv = torch.rand(C, dtype=torch.float64).float() + 0.5 if track else None
        wt = randn(C) if affine else None
        b = randn(C) if affine else None
        momentum = rnd.choice([0.1, 0.1, 0.3, 0.01])
        eps = rnd.choice([1e-5, 1e-5, 1e-3])
        params = {"training": training, "momentum": momentum, "eps": eps}

        def fn(a, p=params):
            rm_, rv_ = (a[1].detach().clone() if a[1] is not None else None,
                        a[2].detach().clone() if a[2] is not None else None)
            out = F.batch_norm(a[0], rm_, rv_, a[3], a[4], p["training"], p["momentum"], p["eps"])
            if relu:
                out = F.relu(out)
            return [out] + ([rm_, rv_] if (p["training"] and rm_ is not None) else [])

        add_case(w, op, params, [x, rm, rv, wt, b], [True, False, False, affine, affine], fn,
                 multilinear=False, magnitude=lambda i, r, p=params: bn_magnitude(i, r, p))


def cmd_ops(args):
    rnd = random.Random(args.seed)
    torch.manual_seed(args.seed)
    w = Writer(args.seed)
    gen_conv(w, rnd, args.reps)
    gen_conv_pool(w, rnd, max(12, args.reps // 2))
    gen_pool(w, rnd, args.reps)
    gen_bn(w, rnd, max(8, args.reps // 2))
    # relu(batch_norm): the magnitudes of batch_norm bound those of the ReLU's output and gradients
    gen_bn(w, rnd, max(8, args.reps // 2), relu=True)
    w.write(args.out)


# ---- layers ----

def layers(seed):
    torch.manual_seed(seed)
    return [
        ("conv_a", nn.Conv2d(3, 8, 3)),
        ("conv_b", nn.Conv2d(4, 6, (3, 5), stride=2, padding=(1, 2), dilation=(2, 1), groups=2, bias=False)),
        ("conv_c", nn.Conv2d(1, 6, 5)),
        ("bn", nn.BatchNorm2d(6)),
        ("conv_d", nn.Conv2d(6, 6, 3, groups=6)),
    ]


def cmd_init(args):
    for name, m in layers(args.seed):
        for pname, t in m.state_dict().items():
            vals = t.detach().reshape(-1).tolist()
            print("%s.%s %s %s" % (name, pname, list(t.shape), " ".join(repr(float(v)) for v in vals)))


def cmd_repr(args):
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, (3, 5), stride=(2, 1), dilation=2, groups=2, bias=False),
        nn.BatchNorm2d(16),
        nn.AvgPool2d(2, stride=1, padding=1),
        nn.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=2, ceil_mode=True),
        nn.AvgPool2d((2, 3), ceil_mode=True, count_include_pad=False),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.AdaptiveAvgPool2d(3),
        nn.BatchNorm2d(8, eps=1e-3, momentum=0.2, affine=False, track_running_stats=False),
        nn.Flatten(),
    )
    print(model)
    for k, v in model.state_dict().items():
        print("%s %s %s" % (k, list(v.shape), str(v.dtype).replace("torch.", "")))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ops")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--reps", type=int, default=60)
    p = sub.add_parser("init")
    p.add_argument("--seed", type=int, required=True)
    sub.add_parser("repr")
    args = ap.parse_args()
    torch.set_num_threads(1)
    {"ops": cmd_ops, "init": cmd_init, "repr": cmd_repr}[args.cmd](args)


if __name__ == "__main__":
    main()
