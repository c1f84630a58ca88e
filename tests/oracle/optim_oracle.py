#!/usr/bin/python3
"""PyTorch oracle for krill's optimizers (tests/optim/test_oracle.cpp).

usage: optim_oracle.py SEED OUTDIR

Makes random float32 parameters and a fixed sequence of STEPS random gradients (seeded by SEED),
runs torch.optim.SGD / Adam / AdamW (single-tensor path, foreach=False) over them in several
configurations, and writes:

  OUTDIR/manifest.txt   text, one record a line:
      steps N
      checkpoints S1 S2 ...            steps after which parameters are recorded
      param I D0 D1 ...                parameter I's shape
      mask STEP B0 B1 ...              1 if parameter I has a gradient at STEP (1-based), else 0
      case NAME OPTIMIZER NGROUPS      then NGROUPS lines:
      group I0,I1,... key=value ...    the group's parameters and options (lr, momentum, ...)
      state NAME I step=S buffers=b1,b2   (final per-parameter state, after the case's lines)
      end
  OUTDIR/init.bin       initial parameters, concatenated in order (float32 little-endian)
  OUTDIR/grads.bin      STEPS x all parameters' gradients (zeros where the mask is 0)
  OUTDIR/NAME.traj.bin  len(checkpoints) x all parameters, after each checkpoint step
  OUTDIR/NAME.state.bin final state buffers, per parameter with state, in the order listed
"""
import os
import sys

import torch

STEPS = 100
CHECKPOINTS = [1, 2, 3, 5, 10, 50, 100]
# Sizes cover: one element, short vectors (scalar tails), matrices, and one parameter large
# enough for krill's multi-threaded path (>= 131072 elements).
SHAPES = [[7], [33, 5], [1], [300, 17], [131101], [16]]
# Parameter 0 has no gradient on every third step (PyTorch skips it; its Adam step count lags).
NO_GRAD = {0: lambda step: step % 3 == 0}

CASES = [
    # name, optimizer, groups: list of (param indices or None for all, options)
    ("sgd_plain", "sgd", [(None, dict(lr=0.1))]),
    ("sgd_momentum", "sgd", [(None, dict(lr=0.05, momentum=0.9))]),
    ("sgd_dampening", "sgd", [(None, dict(lr=0.05, momentum=0.9, dampening=0.3))]),
    ("sgd_nesterov", "sgd", [(None, dict(lr=0.05, momentum=0.9, nesterov=True))]),
    ("sgd_weight_decay", "sgd", [(None, dict(lr=0.05, weight_decay=0.01))]),
    ("sgd_momentum_wd", "sgd", [(None, dict(lr=0.05, momentum=0.9, weight_decay=0.01))]),
    ("sgd_nesterov_wd_maximize", "sgd",
     [(None, dict(lr=0.03, momentum=0.8, nesterov=True, weight_decay=1e-3, maximize=True))]),
    ("sgd_groups", "sgd",
     [([0, 1, 2], dict(lr=0.1, momentum=0.5)), ([3, 4, 5], dict(lr=0.01, momentum=0.9, dampening=0.1))]),
    ("adam_plain", "adam", [(None, dict(lr=1e-3))]),
    ("adam_weight_decay", "adam", [(None, dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1))]),
    ("adam_amsgrad", "adam", [(None, dict(lr=1e-2, amsgrad=True))]),
    ("adam_amsgrad_wd_maximize", "adam",
     [(None, dict(lr=3e-3, eps=1e-6, weight_decay=0.05, amsgrad=True, maximize=True))]),
    ("adam_groups", "adam",
     [([0, 2, 4], dict(lr=1e-2)), ([1, 3, 5], dict(lr=1e-3, betas=(0.5, 0.9), weight_decay=0.01))]),
    ("adamw_default", "adamw", [(None, dict(lr=1e-3))]),
    ("adamw_wd", "adamw", [(None, dict(lr=1e-2, weight_decay=0.1))]),
    ("adamw_amsgrad", "adamw", [(None, dict(lr=1e-2, weight_decay=0.05, amsgrad=True, betas=(0.9, 0.95)))]),
    ("adamw_no_wd", "adamw", [(None, dict(lr=1e-2, weight_decay=0.0))]),
]


def make(optimizer, groups, params):
    torch_groups = []
    for idx, opts in groups:
        ps = params if idx is None else [params[i] for i in idx]
        torch_groups.append(dict(params=ps, **opts))
    if optimizer == "sgd":
        return torch.optim.SGD(torch_groups, lr=0.1, foreach=False)
    if optimizer == "adam":
        return torch.optim.Adam(torch_groups, foreach=False)
    if optimizer == "adamw":
        return torch.optim.AdamW(torch_groups, foreach=False)
    raise ValueError(optimizer)


def fmt(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, tuple):
        return ",".join(repr(float(x)) for x in v)
    return repr(float(v))


def main():
    seed = int(sys.argv[1])
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    torch.set_num_threads(1)

    init = [torch.randn(s, dtype=torch.float32) for s in SHAPES]
    grads = []  # per step: list of tensors or None
    for step in range(1, STEPS + 1):
        scale = 10.0 ** float(torch.empty(()).uniform_(-3, 1))
        row = []
        for i, s in enumerate(SHAPES):
            if i in NO_GRAD and NO_GRAD[i](step):
                row.append(None)
                continue
            g = torch.randn(s, dtype=torch.float32) * scale
            if step % 10 == 4:
                g[g.abs() < 0.3 * scale] = 0.0  # exact zeros now and then
            row.append(g)
        grads.append(row)

    man = [f"steps {STEPS}", "checkpoints " + " ".join(map(str, CHECKPOINTS))]
    for i, s in enumerate(SHAPES):
        man.append(f"param {i} " + " ".join(map(str, s)))
    for step, row in enumerate(grads, 1):
        man.append(f"mask {step} " + " ".join("0" if g is None else "1" for g in row))

    with open(os.path.join(out, "init.bin"), "wb") as f:
        for t in init:
            f.write(t.contiguous().numpy().tobytes())
    with open(os.path.join(out, "grads.bin"), "wb") as f:
        for row in grads:
            for i, g in enumerate(row):
                t = torch.zeros(SHAPES[i]) if g is None else g
                f.write(t.contiguous().numpy().tobytes())

    for name, optimizer, groups in CASES:
        params = [t.clone().requires_grad_(True) for t in init]
        opt = make(optimizer, groups, params)
        man.append(f"case {name} {optimizer} {len(groups)}")
        for idx, opts in groups:
            ids = list(range(len(SHAPES))) if idx is None else idx
            man.append("group " + ",".join(map(str, ids)) + " " + " ".join(f"{k}={fmt(v)}" for k, v in opts.items()))
        traj = open(os.path.join(out, name + ".traj.bin"), "wb")
        for step, row in enumerate(grads, 1):
            for p, g in zip(params, row):
                p.grad = None if g is None else g.clone()
            opt.step()
            if step in CHECKPOINTS:
                for p in params:
                    traj.write(p.detach().contiguous().numpy().tobytes())
        traj.close()
        # Final state, numbered like state_dict() (over all groups in order).
        sd = opt.state_dict()
        order = [p for g in opt.param_groups for p in g["params"]]
        with open(os.path.join(out, name + ".state.bin"), "wb") as f:
            for k, p in enumerate(order):
                st = opt.state.get(p, {})
                bufs = [b for b in ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
                        if st.get(b) is not None]
                if not bufs:
                    continue
                step = float(st["step"]) if "step" in st else -1
                man.append(f"state {name} {k} step={step!r} buffers={','.join(bufs)}")
                for b in bufs:
                    f.write(st[b].detach().contiguous().numpy().tobytes())
        man.append("end")

    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(man) + "\n")
    print(f"optim_oracle: torch {torch.__version__}, seed {seed}, {len(CASES)} cases -> {out}")


if __name__ == "__main__":
    main()
