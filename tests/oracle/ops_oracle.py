#!/usr/bin/python3
"""PyTorch oracle for krill's tensor ops (tests/tensor/test_ops_oracle.cpp).

usage: ops_oracle.py --seed S --out DIR [--family F ...]

Builds random cases for every op family (shapes, broadcasting patterns, dims and parameters
drawn from the seed), computes each case's forward outputs with PyTorch (float32, some float64)
and, for differentiable ops, the gradients of sum(out0 * R) with respect to every input that
requires grad, R a random tensor of out0's shape (so gradients are non-trivial). Writes:

  DIR/data.bin        all tensors, raw little-endian, each at an 8-byte aligned offset
  DIR/manifest.json   {"seed": S, "cases": [case, ...]}; a case is
      {"name", "family", "op", "params": {...},
       "inputs":  [{"dtype", "shape", "offset", "requires_grad", "layout", "view_shape"}, ...],
       "outputs": [{"dtype", "shape", "offset"}, ...],
       "weight":  tensor R for outputs[0] or null (not differentiable),
       "grads":   [tensor or null (input does not require grad), ...],
       "exact_outputs", "exact_grads": for cases with float32 outputs, the same computation in
                  float64 on the same inputs (null entries for integer outputs), else null,
       "magnitude_outputs", "magnitude_grads": for float32 cases of ops whose results are sums of
                  products (MULTILINEAR), the float64 computation on |inputs| with |R|: per
                  element, the sum of the magnitudes of the terms; else null,
       "backward": "mulsum" | "direct"}

Inputs may be non-contiguous views of their stored leaf (layout, see make_layout): "t" stored
with the last two dims swapped and transposed back, "s" every second column of a wider leaf, "e"
a leaf with one row expanded along dim 0; "view_shape" is the argument's shape. Gradients are the
stored leaf's.
"mulsum" asks krill to backpropagate sum(out0 * R) from a scalar, "direct" to call
out0.backward(R); both give the same gradients.

Inputs avoid the points where an op is not differentiable or badly conditioned: log/sqrt/pow
bases are positive, divisors are away from zero, relu/abs/clamp inputs are away from their kinks,
max/min/maximum/minimum have no ties (continuous random values).
"""
import argparse
import json
import os
import random
import sys

import torch

DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.bool: "bool"}

# Ops whose outputs and gradients are sums of products of input elements (and of R) with positive
# coefficients, so that evaluating them on |inputs| and |R| gives sum |terms| per element.
MULTILINEAR = {"mul", "div", "matmul", "mm", "linear", "sum", "mean", "cat", "stack", "index_select", "gather"}

FAMILIES = ["binary", "scalar", "compare", "unary", "matmul", "reduce", "softmax", "loss", "join",
            "index", "view", "edge"]


# ---------------------------------------------------------------------------------------------
# Case writer


def make_layout(g, t, layout):
    """The stored leaf for logical input t and the view that makes the op's argument from it:
      ""  the tensor itself (contiguous)
      "t" stored with the last two dims swapped, argument stored.transpose(-1, -2)
      "s" stored with the last dim doubled (odd columns random), argument stored[..., ::2]
      "e" stored is t[:1], argument stored.expand(t.shape) (stride 0 along dim 0)
    Layouts that do not apply to t's shape fall back to ""."""
    if layout == "t" and t.dim() >= 2:
        return t.transpose(-1, -2).contiguous(), lambda x: x.transpose(-1, -2), "t"
    if layout == "s" and t.dim() >= 1 and t.is_floating_point():
        shape = list(t.shape)
        stored = torch.randn(shape[:-1] + [2 * shape[-1]], generator=g, dtype=torch.float64).to(t.dtype)
        stored[..., ::2] = t
        return stored, lambda x: x[..., ::2], "s"
    if layout == "e" and t.dim() >= 1 and t.shape[0] > 1:
        shape = list(t.shape)
        return t[:1].contiguous(), lambda x, shape=shape: x.expand(shape), "e"
    return t.contiguous(), lambda x: x, ""


class Writer:
    def __init__(self, seed):
        self.blob = bytearray()
        self.cases = []
        self.seed = seed
        self.counts = {}

    def put(self, t):
        t = t.detach().contiguous().cpu()
        off = len(self.blob)
        self.blob += t.numpy().tobytes() if t.dtype != torch.bool else t.to(torch.uint8).numpy().tobytes()
        while len(self.blob) % 8:
            self.blob.append(0)
        return {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "offset": off}

    def case(self, g, family, op, params, inputs, fn, backward=None, magnitude=None):
        """inputs: list of (logical tensor, requires_grad, layout). `magnitude`: the function whose
        float64 evaluation on |inputs| with |R| bounds the sums of |terms| (defaults to fn for ops
        in MULTILINEAR)."""
        if magnitude is None and op in MULTILINEAR:
            magnitude = fn
        # the stored leaves (float32 or as given) and how each argument views its leaf
        prepared = []
        for t, rg, layout in inputs:
            stored, view, layout = make_layout(g, t, layout)
            prepared.append((stored, rg, layout, view))
        differentiable = any(rg for _, rg, _ in inputs)

        def run(to64, absval=False):
            leaves, args = [], []
            for stored, rg, layout, view in prepared:
                if to64 and stored.is_floating_point():
                    stored = stored.to(torch.float64)
                    if absval:
                        stored = stored.abs()
                leaf = stored.clone().requires_grad_(bool(rg))
                args.append(view(leaf))
                leaves.append(leaf)
            outs = (magnitude if absval else fn)(args)
            if not isinstance(outs, (tuple, list)):
                outs = [outs]
            return leaves, list(outs)

        leaves, outs = run(False)
        in_desc = []
        for (stored, rg, layout, view), leaf in zip(prepared, leaves):
            d = self.put(leaf)
            d["requires_grad"] = bool(rg)
            d["layout"] = layout
            d["view_shape"] = list(view(leaf).shape)
            in_desc.append(d)
        out_desc = [self.put(o) for o in outs]
        weight, r = None, None
        grads = [None] * len(inputs)
        if differentiable and outs[0].requires_grad:
            o = outs[0]
            r = torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)
            o.backward(r)
            weight = self.put(r)
            for i, leaf in enumerate(leaves):
                if inputs[i][1]:
                    grads[i] = self.put(leaf.grad if leaf.grad is not None else torch.zeros_like(leaf))
        # float64 evaluation of float32 cases on the same inputs: the (nearly) exact answer, to
        # measure how far krill's and PyTorch's float32 results each are from it
        exact_out, exact_grads = None, None
        if any(o.dtype == torch.float32 for o in outs):
            leaves64, outs64 = run(True)
            exact_out = [self.put(o) if o.is_floating_point() else None for o in outs64]
            if r is not None:
                outs64[0].backward(r.to(outs64[0].dtype))
                exact_grads = [None] * len(inputs)
                for i, leaf in enumerate(leaves64):
                    if inputs[i][1]:
                        exact_grads[i] = self.put(leaf.grad if leaf.grad is not None else torch.zeros_like(leaf))
        # for sums of products: the same computation on magnitudes, sum |terms| per element (the
        # scale of float32 accumulation error, which no implementation avoids)
        mag_out, mag_grads = None, None
        if exact_out is not None and magnitude is not None:
            leaves_m, outs_m = run(True, absval=True)
            mag_out = [self.put(o) if o.is_floating_point() else None for o in outs_m]
            if r is not None:
                outs_m[0].backward(r.to(outs_m[0].dtype).abs())
                mag_grads = [None] * len(inputs)
                for i, leaf in enumerate(leaves_m):
                    if inputs[i][1]:
                        mag_grads[i] = self.put(leaf.grad if leaf.grad is not None else torch.zeros_like(leaf))
        n = self.counts.get(op, 0)
        self.counts[op] = n + 1
        if backward is None:
            backward = "mulsum" if n % 2 == 0 else "direct"
        self.cases.append({
            "name": "%s_%d" % (op, n), "family": family, "op": op, "params": params,
            "inputs": in_desc, "outputs": out_desc, "weight": weight, "grads": grads,
            "exact_outputs": exact_out, "exact_grads": exact_grads,
            "magnitude_outputs": mag_out, "magnitude_grads": mag_grads, "backward": backward,
        })

    def write(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "data.bin"), "wb") as f:
            f.write(bytes(self.blob))
        with open(os.path.join(out_dir, "manifest.json"), "w") as f:
            json.dump({"seed": self.seed, "cases": self.cases}, f, indent=1)


# ---------------------------------------------------------------------------------------------
# Random inputs


class Gen:
    def __init__(self, rnd, g):
        self.rnd = rnd
        self.g = g

    def shape(self, nd=None, lo=1, hi=6):
        if nd is None:
            nd = self.rnd.randint(0, 4)
        return [self.rnd.randint(lo, hi) for _ in range(nd)]

    def dtype(self, p64=0.25):
        return torch.float64 if self.rnd.random() < p64 else torch.float32

    def normal(self, shape, dtype=torch.float32, scale=1.0):
        return (torch.randn(shape, generator=self.g, dtype=torch.float64) * scale).to(dtype)

    def uniform(self, shape, lo, hi, dtype=torch.float32):
        return (torch.rand(shape, generator=self.g, dtype=torch.float64) * (hi - lo) + lo).to(dtype)

    def away(self, shape, lo=0.1, hi=2.0, dtype=torch.float32):
        """|x| in [lo, hi), random sign."""
        mag = self.uniform(shape, lo, hi, dtype)
        sign = torch.randint(0, 2, shape, generator=self.g).to(dtype) * 2 - 1
        return mag * sign

    def small_ints(self, shape, dtype=torch.float32):
        return torch.randint(-2, 3, shape, generator=self.g).to(dtype)

    def layout(self, p=0.3):
        """A non-contiguous argument with probability p: transposed, strided slice or expanded."""
        return self.rnd.choice(["t", "t", "s", "e"]) if self.rnd.random() < p else ""

    def bcast_pair(self, n=2):
        """Shapes that broadcast together: the output shape with leading dims dropped and some
        dims set to 1, independently per operand."""
        out = self.shape(self.rnd.randint(0, 4))
        shapes = []
        for _ in range(n):
            nd = self.rnd.randint(0, len(out)) if self.rnd.random() < 0.5 else len(out)
            s = out[len(out) - nd:]
            shapes.append([1 if (d != 1 and self.rnd.random() < 0.3) else d for d in s])
        return shapes

    def idx(self, shape, hi):
        return torch.randint(0, hi, shape, generator=self.g)


def wrapneg(rnd, d, nd):
    """d in [0, nd): returns d or d - nd at random (negative dims)."""
    return d - nd if rnd.random() < 0.5 else d


# ---------------------------------------------------------------------------------------------
# Families


def fam_binary(w, G, reps):
    rnd = G.rnd
    for op in ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]:
        for i in range(reps + 2):
            sa, sb = G.bcast_pair()
            if i == 0:  # one operand 0-d
                sa = G.shape(rnd.randint(1, 3)); sb = []
            dt = G.dtype()
            params = {}
            if op in ("add", "sub") and rnd.random() < 0.5:
                params["alpha"] = round(rnd.uniform(-2, 2), 3)
            if op in ("add", "sub", "mul", "div"):
                params["spelling"] = rnd.choice(["fn", "operator", "method"]) if "alpha" not in params else "fn"
            if op == "div":
                a, b = G.normal(sa, dt), G.away(sb, 0.5, 2.0, dt)
            elif op == "pow":
                a, b = G.uniform(sa, 0.5, 2.0, dt), G.uniform(sb, -2.0, 2.0, dt)
            else:
                a, b = G.normal(sa, dt), G.normal(sb, dt)
            rga, rgb = True, True
            if rnd.random() < 0.2:
                rga, rgb = rnd.choice([(True, False), (False, True)])
            alpha = params.get("alpha", 1)
            f = {
                "add": lambda x: torch.add(x[0], x[1], alpha=alpha),
                "sub": lambda x: torch.sub(x[0], x[1], alpha=alpha),
                "mul": lambda x: x[0] * x[1],
                "div": lambda x: x[0] / x[1],
                "pow": lambda x: torch.pow(x[0], x[1]),
                "maximum": lambda x: torch.maximum(x[0], x[1]),
                "minimum": lambda x: torch.minimum(x[0], x[1]),
            }[op]
            mag = (lambda x, al=abs(alpha): x[0] + al * x[1]) if op in ("add", "sub") else None
            w.case(G.g, "binary", op, params, [(a, rga, G.layout()), (b, rgb, G.layout())], f, magnitude=mag)
    # a larger same-shape case (contiguous fast paths) and a broadcast row/column one
    for op in ["add", "mul", "div"]:
        a = G.normal([37, 65])
        b = G.away([37, 65], 0.5, 2.0)
        fn = {"add": lambda x: x[0] + x[1], "mul": lambda x: x[0] * x[1], "div": lambda x: x[0] / x[1]}[op]
        # (add's magnitude: |a| + |b| is add itself, so fn serves)
        w.case(G.g, "binary", op, {"spelling": "fn"}, [(a, True, ""), (b, True, "")], fn, magnitude=fn)
        c = G.away([37, 1], 0.5, 2.0)
        w.case(G.g, "binary", op, {"spelling": "fn"}, [(G.normal([1, 65]), True, ""), (c, True, "")], fn,
               magnitude=fn)


def fam_scalar(w, G, reps):
    rnd = G.rnd
    for op in ["add_scalar", "sub_scalar", "rsub_scalar", "mul_scalar", "div_scalar", "rdiv_scalar", "pow_scalar"]:
        for i in range(reps + 1):
            s = G.shape()
            dt = G.dtype()
            sc = round(rnd.uniform(-3, 3), 3)
            if op == "div_scalar" and abs(sc) < 0.25:
                sc = 0.5
            if op == "pow_scalar":
                sc = rnd.choice([2.0, 3.0, 0.5, -1.5, 0.0, 1.0, -1.0, round(rnd.uniform(-2.5, 2.5), 3)])
            if op == "rdiv_scalar" or (op == "pow_scalar" and sc != int(sc)):
                x = G.uniform(s, 0.5, 2.0, dt) if op == "pow_scalar" else G.away(s, 0.5, 2.0, dt)
            elif op == "pow_scalar":
                x = G.away(s, 0.3, 2.0, dt)
            else:
                x = G.normal(s, dt)
            spelling = rnd.choice(["fn", "operator"]) if op != "pow_scalar" else rnd.choice(["fn", "method"])
            f = {
                "add_scalar": lambda x: x[0] + sc,
                "sub_scalar": lambda x: x[0] - sc,
                "rsub_scalar": lambda x: sc - x[0],
                "mul_scalar": lambda x: x[0] * sc,
                "div_scalar": lambda x: x[0] / sc,
                "rdiv_scalar": lambda x: sc / x[0],
                "pow_scalar": lambda x: torch.pow(x[0], sc),
            }[op]
            w.case(G.g, "scalar", op, {"scalar": sc, "spelling": spelling}, [(x, True, G.layout())], f)


def fam_compare(w, G, reps):
    for op in ["eq", "ne", "lt", "le", "gt", "ge"]:
        for i in range(reps):
            sa, sb = G.bcast_pair()
            dt = G.dtype()
            a, b = G.small_ints(sa, dt), G.small_ints(sb, dt)
            f = getattr(torch, op)
            w.case(G.g, "compare", op, {}, [(a, False, G.layout()), (b, False, "")], lambda x, f=f: f(x[0], x[1]))


def fam_unary(w, G, reps):
    rnd = G.rnd
    for op in ["relu", "sigmoid", "tanh", "exp", "log", "sqrt", "neg", "abs", "clamp"]:
        for i in range(reps + 1):
            s = G.shape()
            dt = G.dtype()
            params = {}
            if op in ("log", "sqrt"):
                x = G.uniform(s, 0.1, 4.0, dt)
            elif op in ("relu", "abs"):
                x = G.away(s, 0.01, 2.0, dt)
            elif op == "clamp":
                lo = round(rnd.uniform(-1.0, 0.0), 2)
                hi = round(rnd.uniform(lo + 0.1, 1.2), 2)
                x = G.normal(s, dt, 1.5)
                # keep inputs at least 1e-2 away from the bounds (the gradient's kinks)
                for bound in (lo, hi):
                    near = (x - bound).abs() < 1e-2
                    x = torch.where(near, x + 0.05, x)
                params = {"min": lo, "max": hi}
            elif op == "exp":
                x = G.normal(s, dt, 2.0)
            else:
                x = G.normal(s, dt, 2.0)
            spelling = rnd.choice(["fn", "method"]) if op != "clamp" else "fn"
            params["spelling"] = spelling
            if op == "clamp":
                f = lambda x, lo=params["min"], hi=params["max"]: torch.clamp(x[0], lo, hi)
            else:
                f = lambda x, op=op: getattr(torch, op)(x[0])
            w.case(G.g, "unary", op, params, [(x, True, G.layout())], f)
    for op in ["relu", "sigmoid", "tanh", "exp"]:  # one larger contiguous case each
        x = G.away([50, 41], 0.01, 3.0)
        w.case(G.g, "unary", op, {"spelling": "fn"}, [(x, True, "")], lambda x, op=op: getattr(torch, op)(x[0]))


def fam_matmul(w, G, reps):
    rnd = G.rnd
    d = lambda: rnd.randint(1, 7)

    def mm_case(op, sa, sb, big=False):
        a, b = G.normal(sa), G.normal(sb)
        rga, rgb = True, True
        if rnd.random() < 0.15:
            rga, rgb = rnd.choice([(True, False), (False, True)])
        f = (lambda x: torch.matmul(x[0], x[1])) if op == "matmul" else (lambda x: torch.mm(x[0], x[1]))
        w.case(G.g, "matmul", op, {"spelling": rnd.choice(["fn", "method"]) if op == "matmul" else "fn"},
               [(a, rga, G.layout(0.35)), (b, rgb, G.layout(0.35))], f)

    for _ in range(reps):
        k = d()
        m, n = d(), d()
        mm_case("matmul", [k], [k])                       # 1D . 1D
        mm_case("matmul", [m, k], [k])                    # 2D . 1D
        mm_case("matmul", [k], [k, n])                    # 1D . 2D
        mm_case("matmul", [m, k], [k, n])                 # 2D . 2D
        mm_case("matmul", [d(), m, k], [k, n])            # 3D . 2D
        mm_case("matmul", [d(), d(), m, k], [k])          # 4D . 1D
        mm_case("matmul", [k], [d(), k, n])               # 1D . 3D
        mm_case("matmul", [m, k], [d(), k, n])            # 2D . 3D
        b1, b2 = d(), d()
        mm_case("matmul", [b1, m, k], [b1, k, n])         # batched, same batch
        mm_case("matmul", [b1, 1, m, k], [b2, k, n])      # broadcast batch dims
        mm_case("matmul", [1, b2, m, k], [b1, 1, k, n])
        mm_case("mm", [m, k], [k, n])
    mm_case("matmul", [33, 70], [70, 45])                 # larger (BLAS blocking)
    mm_case("mm", [64, 17], [17, 80])
    # above the small-product loop: oneDNN's matmul, every transposition through the layouts
    mm_case("mm", [72, 90], [90, 65])
    mm_case("matmul", [3, 40, 96], [96, 88])
    for _ in range(reps + 1):
        in_f, out_f = d(), d()
        for xs in ([in_f], [d(), in_f], [d(), d(), in_f]):
            bias = rnd.random() < 0.6
            x, wt = G.normal(xs), G.normal([out_f, in_f])
            inputs = [(x, rnd.random() < 0.85, G.layout(0.3)), (wt, True, G.layout(0.3))]
            if bias:
                inputs.append((G.normal([out_f]), True, ""))
            f = (lambda a: torch.nn.functional.linear(a[0], a[1], a[2])) if bias else \
                (lambda a: torch.nn.functional.linear(a[0], a[1]))
            w.case(G.g, "matmul", "linear", {"bias": bias}, inputs, f)
    x, wt = G.normal([5, 37]), G.normal([9, 37])          # few rows: one dot product per element (tail of 5)
    w.case(G.g, "matmul", "linear", {"bias": False}, [(x, True, ""), (wt, True, "")],
           lambda a: torch.nn.functional.linear(a[0], a[1]))
    x, wt = G.normal([70, 120]), G.normal([90, 120])      # LeNet's fc1 scale: forward and both gradients
    w.case(G.g, "matmul", "linear", {"bias": True}, [(x, True, G.layout(0.5)), (wt, True, ""), (G.normal([90]), True, "")],
           lambda a: torch.nn.functional.linear(a[0], a[1], a[2]))
    x, wt = G.normal([4, 9, 48]), G.normal([40, 48])
    w.case(G.g, "matmul", "linear", {"bias": True}, [(x, True, ""), (wt, True, ""), (G.normal([40]), True, "")],
           lambda a: torch.nn.functional.linear(a[0], a[1], a[2]))


def fam_reduce(w, G, reps):
    rnd = G.rnd
    for op in ["sum", "mean"]:
        for i in range(reps + 3):
            s = G.shape(rnd.randint(1, 4)) if i else []
            dt = G.dtype()
            nd = len(s)
            mode = rnd.choice(["all", "dim", "dims", "dims"]) if nd else rnd.choice(["all", "dim"])
            if mode == "all":
                dims = None
            elif mode == "dim" or nd == 0:
                dims = [wrapneg(rnd, rnd.randrange(max(nd, 1)), max(nd, 1))]
            else:
                k = rnd.randint(1, nd)
                dims = [wrapneg(rnd, x, nd) for x in rnd.sample(range(nd), k)]
            keepdim = rnd.random() < 0.5 and dims is not None
            spelling = rnd.choice(["fn", "method"])
            x = G.normal(s, dt)

            def f(a, op=op, dims=dims, keepdim=keepdim):
                t = getattr(torch, op)
                return t(a[0]) if dims is None else t(a[0], dim=dims, keepdim=keepdim)
            w.case(G.g, "reduce", op, {"dims": dims, "keepdim": keepdim, "spelling": spelling},
                   [(x, True, G.layout())], f)
    for op in ["sum", "mean"]:  # larger: vectorised accumulators, multiple rows
        x = G.normal([23, 19, 11])
        for dims in (None, [0], [1], [-1], [0, 2]):
            w.case(G.g, "reduce", op, {"dims": dims, "keepdim": False, "spelling": "fn"}, [(x, True, "")],
                   lambda a, op=op, dims=dims: getattr(torch, op)(a[0]) if dims is None else
                   getattr(torch, op)(a[0], dim=dims))
    for op in ["max_all", "min_all"]:
        for i in range(reps):
            s = G.shape(rnd.randint(0, 4))
            dt = G.dtype()
            x = G.normal(s, dt)
            t = torch.max if op == "max_all" else torch.min
            w.case(G.g, "reduce", op, {"spelling": rnd.choice(["fn", "method"])}, [(x, True, G.layout())],
                   lambda a, t=t: t(a[0]))
    for op in ["max_dim", "min_dim", "argmax_dim", "argmin_dim"]:
        for i in range(reps + 1):
            s = G.shape(rnd.randint(1, 4))
            dt = G.dtype()
            nd = len(s)
            dim = wrapneg(rnd, rnd.randrange(nd), nd)
            keepdim = rnd.random() < 0.5
            x = G.normal(s, dt)
            t = {"max_dim": torch.max, "min_dim": torch.min, "argmax_dim": torch.argmax,
                 "argmin_dim": torch.argmin}[op]

            def f(a, t=t, dim=dim, keepdim=keepdim, op=op):
                r = t(a[0], dim, keepdim)
                return (r[0], r[1]) if op in ("max_dim", "min_dim") else r
            w.case(G.g, "reduce", op, {"dim": dim, "keepdim": keepdim, "spelling": rnd.choice(["fn", "method"])},
                   [(x, op in ("max_dim", "min_dim"), G.layout())], f)
    for i in range(reps):
        x = G.normal(G.shape(rnd.randint(0, 4)), G.dtype())
        w.case(G.g, "reduce", "argmax_all", {"spelling": rnd.choice(["fn", "method"])}, [(x, False, G.layout())],
               lambda a: torch.argmax(a[0]))


def fam_softmax(w, G, reps):
    rnd = G.rnd
    for op in ["softmax", "log_softmax"]:
        for i in range(reps + 2):
            s = G.shape(rnd.randint(1, 4), 1, 7)
            nd = len(s)
            dim = wrapneg(rnd, rnd.randrange(nd), nd)
            x = G.normal(s, torch.float32, rnd.choice([1.0, 3.0]))
            t = getattr(torch, op)
            # not expanded: equal values along dim make the broadcast source's gradient sum to
            # exactly 0 (see fam_loss), leaving only rounding noise to compare
            lay = G.layout()
            lay = "s" if lay == "e" else lay
            w.case(G.g, "softmax", op, {"dim": dim, "spelling": rnd.choice(["fn", "method"])},
                   [(x, True, lay)], lambda a, t=t, dim=dim: t(a[0], dim))
        x = G.normal([16, 100], torch.float32, 2.0)  # larger rows
        t = getattr(torch, op)
        w.case(G.g, "softmax", op, {"dim": 1, "spelling": "fn"}, [(x, True, "")], lambda a, t=t: t(a[0], 1))
        w.case(G.g, "softmax", op, {"dim": 0, "spelling": "fn"}, [(x, True, "")], lambda a, t=t: t(a[0], 0))


def fam_loss(w, G, reps):
    rnd = G.rnd
    F = torch.nn.functional
    for op in ["nll_loss", "cross_entropy"]:
        for red in ["mean", "sum", "none"]:
            for i in range(reps):
                one_d = i == 0 and red != "none"
                n, c = rnd.randint(1, 8), rnd.randint(2, 7)
                if op == "nll_loss":
                    x = torch.log_softmax(G.normal([n, c], torch.float32, 2.0), 1)
                else:
                    x = G.normal([n, c], torch.float32, 2.0)
                tgt = G.idx([n], c)
                ii = -100
                if rnd.random() < 0.6 and n > 1:
                    ii = rnd.choice([-100, rnd.randrange(c)])
                    mask = torch.rand([n], generator=G.g) < 0.3
                    mask[rnd.randrange(n)] = False  # keep one valid target (mean over none is nan)
                    if ii >= 0:
                        mask = mask | (tgt == ii)
                        keep = rnd.randrange(n)
                        tgt[keep] = (ii + 1) % c
                        mask[keep] = False
                    tgt = torch.where(mask, torch.full_like(tgt, ii), tgt)
                if one_d:
                    x, tgt = x[0], tgt[0]
                    ii = -100
                t = getattr(F, op)
                # not expanded: a broadcast class dimension makes every logit equal, and the
                # gradient of the broadcast source then sums to exactly 0 (softmax sums to 1),
                # leaving only rounding noise to compare (krill 1.5e-8 against torch's 0, seen
                # for one seed)
                lay = G.layout(0.2)
                lay = "s" if lay == "e" else lay
                w.case(G.g, "loss", op, {"reduction": red, "ignore_index": ii},
                       [(x, True, lay), (tgt, False, "")],
                       lambda a, t=t, red=red, ii=ii: t(a[0], a[1], reduction=red, ignore_index=ii))
    x = G.normal([64, 33], torch.float32, 2.0)
    w.case(G.g, "loss", "cross_entropy", {"reduction": "mean", "ignore_index": -100},
           [(x, True, ""), (G.idx([64], 33), False, "")], lambda a: F.cross_entropy(a[0], a[1]))
    for red in ["mean", "sum", "none"]:
        for i in range(reps):
            s = G.shape()
            rgt = rnd.random() < 0.5
            w.case(G.g, "loss", "mse_loss", {"reduction": red},
                   [(G.normal(s), True, G.layout()), (G.normal(s), rgt, "")],
                   lambda a, red=red: F.mse_loss(a[0], a[1], reduction=red))


def fam_join(w, G, reps):
    rnd = G.rnd
    for i in range(reps + 2):
        nd = rnd.randint(1, 4)
        base = G.shape(nd)
        dim = rnd.randrange(nd)
        k = rnd.randint(1, 4)
        dt = G.dtype()
        ts = []
        for j in range(k):
            s = list(base)
            s[dim] = rnd.randint(1, 5)
            ts.append((G.normal(s, dt), rnd.random() < 0.8, G.layout(0.2)))
        w.case(G.g, "join", "cat", {"dim": wrapneg(rnd, dim, nd)}, ts,
               lambda a, dim=dim: torch.cat(a, dim))
    for i in range(reps + 2):
        nd = rnd.randint(0, 3)
        base = G.shape(nd)
        dim = rnd.randrange(nd + 1)
        k = rnd.randint(1, 4)
        dt = G.dtype()
        ts = [(G.normal(base, dt), rnd.random() < 0.8, G.layout(0.2)) for _ in range(k)]
        w.case(G.g, "join", "stack", {"dim": wrapneg(rnd, dim, nd + 1)}, ts,
               lambda a, dim=dim: torch.stack(a, dim))


def fam_index(w, G, reps):
    rnd = G.rnd
    for i in range(reps + 2):
        nd = rnd.randint(1, 4)
        s = G.shape(nd)
        dim = rnd.randrange(nd)
        dt = G.dtype()
        ishape = [] if i == 0 else [rnd.randint(1, 7)]
        idx = G.idx(ishape, s[dim])
        w.case(G.g, "index", "index_select", {"dim": wrapneg(rnd, dim, nd), "spelling": rnd.choice(["fn", "method"])},
               [(G.normal(s, dt), True, G.layout()), (idx, False, "")],
               lambda a, dim=dim: torch.index_select(a[0], dim, a[1]))
    for i in range(reps + 2):
        nd = rnd.randint(1, 4)
        s = G.shape(nd)
        dim = rnd.randrange(nd)
        dt = G.dtype()
        ishape = [rnd.randint(1, s[e]) if e != dim else rnd.randint(1, 6) for e in range(nd)]
        idx = G.idx(ishape, s[dim])
        w.case(G.g, "index", "gather", {"dim": wrapneg(rnd, dim, nd), "spelling": rnd.choice(["fn", "method"])},
               [(G.normal(s, dt), True, G.layout()), (idx, False, "")],
               lambda a, dim=dim: torch.gather(a[0], dim, a[1]))
    for i in range(reps + 2):
        sc, sa, sb = G.bcast_pair(3)
        dt = G.dtype()
        cond = torch.rand(sc, generator=G.g) < 0.5
        rga, rgb = rnd.choice([(True, True), (True, True), (True, False), (False, True)])
        w.case(G.g, "index", "where", {},
               [(cond, False, ""), (G.normal(sa, dt), rga, G.layout()), (G.normal(sb, dt), rgb, "")],
               lambda a: torch.where(a[0], a[1], a[2]))


def random_reshape(rnd, shape):
    n = 1
    for x in shape:
        n *= x
    primes, m, p = [], n, 2
    while m > 1:
        while m % p == 0:
            primes.append(p)
            m //= p
        p += 1
    k = rnd.randint(1, 4)
    dims = [1] * k
    for p in primes:
        dims[rnd.randrange(k)] *= p
    if rnd.random() < 0.5:
        dims[rnd.randrange(k)] = -1
    return dims


POSTS = [None, None, "sum0", "square", "exp_mean"]


def apply_post(post, t):
    if post is None:
        return t
    if post == "sum0":
        return t.sum(0) if t.dim() > 0 else t * 1.0
    if post == "square":
        return t * t
    if post == "exp_mean":
        return t.exp().mean()
    raise ValueError(post)


def fam_view(w, G, reps):
    rnd = G.rnd

    def vcase(op, params, x, f, layout=None):
        post = rnd.choice(POSTS)
        params = dict(params)
        params["post"] = post
        w.case(G.g, "view", op, params, [(x, True, G.layout() if layout is None else layout)],
               lambda a: apply_post(post, f(a[0])))

    for i in range(reps + 1):
        s = G.shape(rnd.randint(0, 4))
        dt = G.dtype()
        x = G.normal(s, dt)
        shp = random_reshape(rnd, s)
        vcase("reshape", {"shape": shp}, x, lambda t, shp=shp: t.reshape(shp))
        x = G.normal(s, dt)
        vcase("view", {"shape": shp}, x, lambda t, shp=shp: t.view(shp), layout="")
        s = G.shape(rnd.randint(1, 4))
        nd = len(s)
        x = G.normal(s, dt)
        d0, d1 = wrapneg(rnd, rnd.randrange(nd), nd), wrapneg(rnd, rnd.randrange(nd), nd)
        vcase("transpose", {"d0": d0, "d1": d1}, x, lambda t, d0=d0, d1=d1: t.transpose(d0, d1))
        perm = [wrapneg(rnd, p, nd) for p in rnd.sample(range(nd), nd)]
        vcase("permute", {"dims": perm}, G.normal(s, dt), lambda t, perm=perm: t.permute(perm))
        # slice with step: start/stop may be None, negative or past the end
        dim = rnd.randrange(nd)
        n = s[dim]
        start = rnd.choice([None, rnd.randint(-n, n - 1)])
        stop = rnd.choice([None, rnd.randint(-n, n + 2)])
        step = rnd.randint(1, 3)
        ix = [slice(None)] * dim + [slice(start, stop, step)]
        dd = wrapneg(rnd, dim, nd)
        # an empty slice is legal but gives nothing to compare; keep at least one element
        if torch.empty(s)[tuple(ix)].numel() == 0:
            start, stop, ix = None, None, [slice(None)] * dim + [slice(None, None, step)]
        vcase("slice", {"dim": dd, "start": start, "stop": stop, "step": step}, G.normal(s, dt),
              lambda t, ix=ix: t[tuple(ix)])
        length = rnd.randint(1, n)
        st = rnd.randint(0, n - length)
        if rnd.random() < 0.3:
            st -= n
        vcase("narrow", {"dim": dd, "start": st, "length": length}, G.normal(s, dt),
              lambda t, dd=dd, st=st, length=length: t.narrow(dd, st, length))
        index = rnd.randint(-n, n - 1)
        vcase("select", {"dim": dd, "index": index}, G.normal(s, dt),
              lambda t, dd=dd, index=index: t.select(dd, index))
        # expand: size-1 dims grow, new leading dims, -1 keeps a dim
        s1 = [1 if rnd.random() < 0.5 else v for v in s]
        target = [rnd.randint(1, 4) for _ in range(rnd.randint(0, 2))]
        target += [rnd.randint(1, 5) if v == 1 else (-1 if rnd.random() < 0.3 else v) for v in s1]
        vcase("expand", {"shape": target}, G.normal(s1, dt), lambda t, target=target: t.expand(target))
        ud = wrapneg(rnd, rnd.randrange(nd + 1), nd + 1)
        vcase("unsqueeze", {"dim": ud}, G.normal(s, dt), lambda t, ud=ud: t.unsqueeze(ud))
        sq = [1 if rnd.random() < 0.4 else v for v in s]
        sd = wrapneg(rnd, rnd.randrange(nd), nd)
        vcase("squeeze_dim", {"dim": sd}, G.normal(sq, dt), lambda t, sd=sd: t.squeeze(sd))
        vcase("squeeze_all", {}, G.normal(sq, dt), lambda t: t.squeeze())
        a, b = sorted([rnd.randrange(nd), rnd.randrange(nd)])
        fa, fb = wrapneg(rnd, a, nd), wrapneg(rnd, b, nd)
        vcase("flatten", {"start": fa, "end": fb}, G.normal(s, dt), lambda t, fa=fa, fb=fb: t.flatten(fa, fb))
        vcase("contiguous", {}, G.normal(s, dt), lambda t: t.contiguous())
    vcase("flatten", {"start": 0, "end": -1}, G.normal([]), lambda t: t.flatten())
    vcase("t", {}, G.normal([rnd.randint(2, 5), rnd.randint(2, 5)]), lambda t: t.t())
    vcase("t", {}, G.normal([rnd.randint(1, 5)]), lambda t: t.t())


def fam_edge(w, G, reps):
    """Fixed special cases: kinks and ties (PyTorch's conventions), zero-size tensors, 0-d
    tensors, mixed and integer dtypes, saturating inputs, BLAS-sized products."""
    T = lambda v, dt=torch.float32: torch.tensor(v, dtype=dt)
    F = torch.nn.functional
    c = lambda op, params, inputs, fn, **kw: w.case(G.g, "edge", op, params, inputs, fn, **kw)
    # kinks: relu/abs at 0 (gradient 0), clamp at its bounds (gradient 1: inclusive)
    z = T([-1.5, 0.0, 2.0, 0.0, -0.0, 0.5])
    c("relu", {"spelling": "fn"}, [(z, True, "")], lambda a: torch.relu(a[0]))
    c("abs", {"spelling": "fn"}, [(z, True, "")], lambda a: torch.abs(a[0]))
    c("clamp", {"min": -0.5, "max": 0.5}, [(T([-0.5, 0.5, 0.0, -0.7, 0.9, 0.5]), True, "")],
      lambda a: torch.clamp(a[0], -0.5, 0.5))
    # ties: maximum/minimum split the gradient, max/min of all distribute it evenly, max/min
    # along a dim and argmax pick the first index
    ta, tb = T([[1., 2., 3.], [0., -1., 2.]]), T([[1., 0., 3.], [0., 5., 2.]])
    for op in ("maximum", "minimum"):
        c(op, {}, [(ta, True, ""), (tb, True, "")], lambda a, op=op: getattr(torch, op)(a[0], a[1]))
    c("maximum", {}, [(ta, True, ""), (T([1., 2., 2.]), True, "")], lambda a: torch.maximum(a[0], a[1]))
    tie = T([[1., 3., 3., 0.], [2., 2., -1., 2.], [-4., -4., -4., -4.]])
    c("max_all", {"spelling": "fn"}, [(tie, True, "")], lambda a: torch.max(a[0]))
    c("min_all", {"spelling": "fn"}, [(tie, True, "")], lambda a: torch.min(a[0]))
    for dim in (0, 1):
        for op, t in (("max_dim", torch.max), ("min_dim", torch.min)):
            c(op, {"dim": dim, "keepdim": False, "spelling": "fn"}, [(tie, True, "")],
              lambda a, t=t, dim=dim: tuple(t(a[0], dim)))
        c("argmax_dim", {"dim": dim, "keepdim": True, "spelling": "fn"}, [(tie, False, "")],
          lambda a, dim=dim: torch.argmax(a[0], dim, True))
        c("argmin_dim", {"dim": dim, "keepdim": False, "spelling": "fn"}, [(tie, False, "")],
          lambda a, dim=dim: torch.argmin(a[0], dim))
    c("argmax_all", {"spelling": "fn"}, [(tie, False, "")], lambda a: torch.argmax(a[0]))
    # pow at a zero base: d/d exponent is 0 there (PyTorch masks 0 * log 0)
    c("pow", {}, [(T([0., 1.5, 0., 2.]), True, ""), (T([1.5, 2., 3., 0.5]), True, "")],
      lambda a: torch.pow(a[0], a[1]))
    for e in (0.0, 2.0, 3.0):
        c("pow_scalar", {"scalar": e, "spelling": "fn"}, [(T([0., -1.5, 2., 0.]), True, "")],
          lambda a, e=e: torch.pow(a[0], e))
    # 0-d tensors
    s0 = G.normal([])
    c("sum", {"dims": [0], "keepdim": False, "spelling": "fn"}, [(s0, True, "")], lambda a: a[0].sum(0))
    c("sum", {"dims": [-1], "keepdim": True, "spelling": "fn"}, [(s0, True, "")], lambda a: a[0].sum(-1, True))
    c("max_dim", {"dim": 0, "keepdim": False, "spelling": "fn"}, [(s0, True, "")], lambda a: tuple(torch.max(a[0], 0)))
    c("max_all", {"spelling": "method"}, [(s0, True, "")], lambda a: a[0].max())
    c("argmax_all", {"spelling": "fn"}, [(s0, False, "")], lambda a: torch.argmax(a[0]))
    for op, f, params in (("unsqueeze", lambda t: t.unsqueeze(0), {"dim": 0}),
                          ("squeeze_all", lambda t: t.squeeze(), {}),
                          ("squeeze_dim", lambda t: t.squeeze(-1), {"dim": -1}),
                          ("reshape", lambda t: t.reshape([1, 1, 1]), {"shape": [1, 1, 1]}),
                          ("flatten", lambda t: t.flatten(), {"start": 0, "end": -1})):
        params = dict(params, post="square")
        c(op, params, [(G.normal([]), True, "")], lambda a, f=f: apply_post("square", f(a[0])))
    c("reshape", {"shape": [], "post": None}, [(G.normal([1, 1]), True, "")], lambda a: a[0].reshape([]))
    c("select", {"dim": 0, "index": -1, "post": None}, [(G.normal([3]), True, "")], lambda a: a[0].select(0, -1))
    # sum/mean over an empty dim list reduce everything (PyTorch 1.13)
    x = G.normal([3, 4])
    c("sum", {"dims": [], "keepdim": False, "spelling": "fn"}, [(x, True, "")], lambda a: a[0].sum(dim=[]))
    c("mean", {"dims": [], "keepdim": False, "spelling": "fn"}, [(x, True, "")], lambda a: a[0].mean(dim=[]))
    # zero-size tensors
    e03, e20 = G.normal([0, 3]), G.normal([2, 0])
    c("sum", {"dims": [0], "keepdim": False, "spelling": "fn"}, [(e03, True, "")], lambda a: a[0].sum(0))
    c("sum", {"dims": None, "keepdim": False, "spelling": "fn"}, [(e03, True, "")], lambda a: a[0].sum())
    c("mean", {"dims": [0], "keepdim": True, "spelling": "fn"}, [(e03, True, "")], lambda a: a[0].mean(0, True))
    c("matmul", {"spelling": "fn"}, [(e20, True, ""), (G.normal([0, 3]), True, "")], lambda a: a[0] @ a[1])
    c("matmul", {"spelling": "fn"}, [(e03, True, ""), (G.normal([3, 2]), True, "")], lambda a: a[0] @ a[1])
    c("linear", {"bias": True}, [(G.normal([0, 4]), True, ""), (G.normal([3, 4]), True, ""), (G.normal([3]), True, "")],
      lambda a: F.linear(a[0], a[1], a[2]))
    c("add", {"spelling": "fn"}, [(e03, True, ""), (G.normal([3]), True, "")], lambda a: a[0] + a[1])
    c("exp", {"spelling": "fn"}, [(e20, True, "")], lambda a: torch.exp(a[0]))
    c("softmax", {"dim": 1, "spelling": "fn"}, [(e03, True, "")], lambda a: torch.softmax(a[0], 1))
    c("cat", {"dim": 0}, [(e03, True, ""), (G.normal([2, 3]), True, "")], lambda a: torch.cat(a, 0))
    c("cat", {"dim": 1}, [(G.normal([2, 2]), True, ""), (e20, True, ""), (G.normal([2, 1]), True, "")],
      lambda a: torch.cat(a, 1))
    c("index_select", {"dim": 0, "spelling": "fn"}, [(G.normal([3, 2]), True, ""), (torch.zeros(0, dtype=torch.int64), False, "")],
      lambda a: torch.index_select(a[0], 0, a[1]))
    c("slice", {"dim": 0, "start": 2, "stop": 2, "step": 1, "post": None}, [(G.normal([4, 2]), True, "")],
      lambda a: a[0][2:2])
    c("narrow", {"dim": 1, "start": 1, "length": 0, "post": None}, [(G.normal([2, 3]), True, "")],
      lambda a: a[0].narrow(1, 1, 0))
    # losses: every target ignored (mean is nan, gradient zero), extreme logits
    c("nll_loss", {"reduction": "mean", "ignore_index": -100},
      [(G.normal([3, 4]), True, ""), (T([-100, -100, -100], torch.int64), False, "")],
      lambda a: F.nll_loss(a[0], a[1]))
    c("nll_loss", {"reduction": "sum", "ignore_index": 2},
      [(G.normal([3, 4]), True, ""), (T([2, 2, 2], torch.int64), False, "")],
      lambda a: F.nll_loss(a[0], a[1], reduction="sum", ignore_index=2))
    big = T([[1000., -1000., 0., 999.], [-50., 60., 55., 58.], [0., 0., 0., 0.]])
    tg = T([0, 1, 3], torch.int64)
    for red in ("mean", "none"):
        c("cross_entropy", {"reduction": red, "ignore_index": -100}, [(big, True, ""), (tg, False, "")],
          lambda a, red=red: F.cross_entropy(a[0], a[1], reduction=red))
    for op in ("softmax", "log_softmax"):
        for dim in (0, 1):
            c(op, {"dim": dim, "spelling": "fn"}, [(big, True, "")], lambda a, op=op, dim=dim: getattr(torch, op)(a[0], dim))
    # -inf entries (attention-style masks); an all -inf row is nan in PyTorch
    inf = float("inf")
    masked = T([[-inf, 0.5, 1.0, -inf], [2.0, -inf, 0.5, 1.0], [0.3, -1.0, -inf, 0.2]])
    for op in ("softmax", "log_softmax"):
        c(op, {"dim": 1, "spelling": "fn"}, [(masked, True, "")], lambda a, op=op: getattr(torch, op)(a[0], 1))
        c(op, {"dim": -1, "spelling": "fn"}, [(T([[-inf, -inf, -inf], [0., 1., -inf]]), True, "")],
          lambda a, op=op: getattr(torch, op)(a[0], -1))
    c("cross_entropy", {"reduction": "sum", "ignore_index": -100}, [(masked, True, ""), (T([1, 0, 3], torch.int64), False, "")],
      lambda a: F.cross_entropy(a[0], a[1], reduction="sum"))
    c("max_dim", {"dim": 1, "keepdim": False, "spelling": "fn"}, [(masked, True, "")], lambda a: tuple(torch.max(a[0], 1)))
    c("exp", {"spelling": "fn"}, [(masked, True, "")], lambda a: torch.exp(a[0]))
    # negative bases: d/d exponent is log(x) * x^y = nan, in PyTorch too
    c("pow", {}, [(T([-2.0, -1.5, 3.0]), True, ""), (T([2.0, 3.0, 2.0]), True, "")], lambda a: torch.pow(a[0], a[1]))
    sat = T([-60., -20., -5., 0., 5., 20., 60.])
    for op in ("sigmoid", "tanh"):
        c(op, {"spelling": "fn"}, [(sat, True, "")], lambda a, op=op: getattr(torch, op)(a[0]))
    c("exp", {"spelling": "fn"}, [(T([-100., -80., 0., 80.]), True, "")], lambda a: torch.exp(a[0]))
    c("log", {"spelling": "fn"}, [(T([1e-30, 1e-10, 1., 1e30]), True, "")], lambda a: torch.log(a[0]))
    c("sqrt", {"spelling": "fn"}, [(T([1e-30, 1e-10, 1., 1e30]), True, "")], lambda a: torch.sqrt(a[0]))
    # mixed dtypes: float32 with float64 promotes to float64; the float32 input's gradient is float32
    a32, b64 = G.normal([3, 4]), G.normal([4], torch.float64)
    for op in ("add", "sub", "mul", "div"):
        fn = {"add": lambda a: a[0] + a[1], "sub": lambda a: a[0] - a[1], "mul": lambda a: a[0] * a[1],
              "div": lambda a: a[0] / a[1]}[op]
        bb = b64 if op != "div" else G.away([4], 0.5, 2.0, torch.float64)
        c(op, {"spelling": "fn"}, [(a32, True, ""), (bb, True, "")], fn)
    c("where", {}, [(torch.rand([3, 4], generator=G.g) < 0.5, False, ""), (a32, True, ""), (b64, True, "")],
      lambda a: torch.where(a[0], a[1], a[2]))
    c("cat", {"dim": 0}, [(G.normal([1, 4]), True, ""), (G.normal([2, 4], torch.float64), True, "")],
      lambda a: torch.cat(a, 0))
    # integer tensors with float tensors and with scalars
    i64 = torch.randint(-5, 6, [3, 4], generator=G.g)
    c("mul", {"spelling": "fn"}, [(i64, False, ""), (a32, True, "")], lambda a: a[0] * a[1])
    c("add", {"spelling": "fn"}, [(a32, True, ""), (i64, False, "")], lambda a: a[0] + a[1])
    c("div", {"spelling": "fn"}, [(G.normal([3, 4]), True, ""), (torch.randint(1, 6, [4], generator=G.g), False, "")],
      lambda a: a[0] / a[1])
    j64 = torch.randint(-5, 6, [4], generator=G.g)
    for op in ("add", "sub", "mul", "maximum", "minimum"):
        f = {"add": lambda a: a[0] + a[1], "sub": lambda a: a[0] - a[1], "mul": lambda a: a[0] * a[1],
             "maximum": lambda a: torch.maximum(a[0], a[1]), "minimum": lambda a: torch.minimum(a[0], a[1])}[op]
        c(op, {"spelling": "fn"}, [(i64, False, ""), (j64, False, "")], f)
    c("add", {"alpha": 3}, [(i64, False, ""), (j64, False, "")], lambda a: torch.add(a[0], a[1], alpha=3))
    c("div", {"spelling": "fn"}, [(i64, False, ""), (torch.randint(1, 6, [4], generator=G.g), False, "")],
      lambda a: a[0] / a[1])
    # krill's scalar parameter is a double, so it decides by value: an integral scalar keeps an
    # integer tensor integral (PyTorch with a Python int), a fractional one gives float32 (PyTorch
    # with a Python float); torch is given the matching Python type
    for op, sc in (("add_scalar", 2), ("mul_scalar", 3), ("mul_scalar", 2.5), ("div_scalar", 2),
                   ("sub_scalar", 1.5), ("sub_scalar", 4), ("rsub_scalar", 1), ("rsub_scalar", 0.5),
                   ("pow_scalar", 2), ("pow_scalar", 0.5), ("add_scalar", -1.25)):
        f = {"add_scalar": lambda a, s=sc: a[0] + s, "mul_scalar": lambda a, s=sc: a[0] * s,
             "div_scalar": lambda a, s=sc: a[0] / s, "sub_scalar": lambda a, s=sc: a[0] - s,
             "rsub_scalar": lambda a, s=sc: s - a[0], "pow_scalar": lambda a, s=sc: torch.pow(a[0], s)}[op]
        base = i64 if op != "pow_scalar" or sc == int(sc) else i64.abs()
        c(op, {"scalar": float(sc), "spelling": "fn"}, [(base, False, "")], f)
    c("rdiv_scalar", {"scalar": 2.0, "spelling": "fn"}, [(torch.randint(1, 6, [5], generator=G.g), False, "")],
      lambda a: 2.0 / a[0])
    c("sum", {"dims": [1], "keepdim": False, "spelling": "fn"}, [(i64, False, "")], lambda a: a[0].sum(1))
    c("sum", {"dims": None, "keepdim": False, "spelling": "fn"}, [(i64, False, "")], lambda a: a[0].sum())
    c("max_dim", {"dim": 1, "keepdim": True, "spelling": "fn"}, [(i64, False, "")], lambda a: tuple(torch.max(a[0], 1, True)))
    c("max_all", {"spelling": "fn"}, [(i64, False, "")], lambda a: torch.max(a[0]))
    c("argmax_dim", {"dim": 0, "keepdim": False, "spelling": "fn"}, [(i64, False, "")], lambda a: torch.argmax(a[0], 0))
    c("neg", {"spelling": "fn"}, [(i64, False, "")], lambda a: torch.neg(a[0]))
    c("abs", {"spelling": "fn"}, [(i64, False, "")], lambda a: torch.abs(a[0]))
    c("relu", {"spelling": "fn"}, [(i64, False, "")], lambda a: torch.relu(a[0]))
    c("clamp", {"min": -2.0, "max": 3.0}, [(i64, False, "")], lambda a: torch.clamp(a[0], -2, 3))
    for op in ("eq", "lt", "ge"):
        c(op, {}, [(i64, False, ""), (T([0., 1.5, -2., 3.]), False, "")], lambda a, op=op: getattr(torch, op)(a[0], a[1]))
    c("cat", {"dim": 1}, [(i64, False, ""), (j64.reshape(1, 4).expand(3, 4).contiguous(), False, "")],
      lambda a: torch.cat(a, 1))
    c("index_select", {"dim": 1, "spelling": "fn"}, [(i64, False, ""), (T([3, 0, 3], torch.int64), False, "")],
      lambda a: torch.index_select(a[0], 1, a[1]))
    c("gather", {"dim": 1, "spelling": "fn"}, [(i64, False, ""), (T([[3, 0], [1, 1], [2, 0]], torch.int64), False, "")],
      lambda a: torch.gather(a[0], 1, a[1]))
    c("where", {}, [(i64 > 0, False, ""), (i64, False, ""), (j64, False, "")], lambda a: torch.where(a[0], a[1], a[2]))
    c("transpose", {"d0": 0, "d1": 1, "post": None}, [(i64, False, "")], lambda a: a[0].transpose(0, 1))
    # products large enough for the BLAS path (above the small-product kernel's 64^3 multiply-adds)
    c("matmul", {"spelling": "fn"}, [(G.normal([70, 80]), True, ""), (G.normal([80, 60]), True, "t")],
      lambda a: a[0] @ a[1])
    c("matmul", {"spelling": "fn"}, [(G.normal([2, 65, 70]), True, ""), (G.normal([70, 66]), True, "")],
      lambda a: a[0] @ a[1])
    c("matmul", {"spelling": "fn"}, [(G.normal([3, 50, 70]), True, "t"), (G.normal([3, 70, 66]), True, "")],
      lambda a: a[0] @ a[1])
    c("linear", {"bias": True}, [(G.normal([4, 40, 64]), True, ""), (G.normal([72, 64]), True, ""),
                                 (G.normal([72]), True, "")], lambda a: F.linear(a[0], a[1], a[2]))
    c("linear", {"bias": False}, [(G.normal([130, 64]), True, "t"), (G.normal([72, 64]), True, "t")],
      lambda a: F.linear(a[0], a[1]))


FAMILY_FNS = {
    "binary": fam_binary, "scalar": fam_scalar, "compare": fam_compare, "unary": fam_unary,
    "matmul": fam_matmul, "reduce": fam_reduce, "softmax": fam_softmax, "loss": fam_loss,
    "join": fam_join, "index": fam_index, "view": fam_view, "edge": fam_edge,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--family", action="append", help="only these families (default: all)")
    ap.add_argument("--reps", type=int, default=4, help="random cases per op and pattern")
    args = ap.parse_args()
    torch.set_num_threads(1)
    fams = args.family or FAMILIES
    w = Writer(args.seed)
    for fam in fams:
        if fam not in FAMILY_FNS:
            sys.exit("unknown family " + fam)
        rnd = random.Random("%d-%s" % (args.seed, fam))
        g = torch.Generator().manual_seed(rnd.getrandbits(62))
        FAMILY_FNS[fam](w, Gen(rnd, g), args.reps)
    w.write(args.out)
    print("ops_oracle: %d cases, %d bytes" % (len(w.cases), len(w.blob)))


if __name__ == "__main__":
    main()
