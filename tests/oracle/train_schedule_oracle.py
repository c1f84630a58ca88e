#!/usr/bin/python3
"""PyTorch oracle for krill's learning-rate schedule (tests/train/test_trainer_schedule.cpp).

usage: train_schedule_oracle.py

For each case (base lr, epochs, iterations per epoch, warm-up epochs, power) runs an SGD
optimizer through torch.optim.lr_scheduler stepped once per iteration:
  - warm-up: LinearLR(start_factor=1/W, end_factor=1, total_iters=W-1) over W = warm-up steps,
    i.e. lr = base * (step + 1) / W;
  - then PolynomialLR(total_iters=T-W, power), i.e. lr = base * (1 - (step - W) / (T - W))^power;
  chained with SequentialLR(milestones=[W]) (PolynomialLR alone when W = 0, LinearLR alone when
  W = T), and checks on the way that it equals the hand formula. Prints one line per case:
      case BASE EPOCHS ITERS WARMUP POWER lr0 lr1 ... lr(T-1)
  where lr_s is the learning rate the optimizer step `s` (0-based) uses.
"""
import warnings

import torch

warnings.filterwarnings("ignore")

CASES = [
    # base, epochs, iterations per epoch, warm-up epochs, power
    (0.001, 5, 7, 0, 1.0),
    (0.001, 5, 7, 1, 1.0),
    (0.1, 4, 3, 2, 1.0),
    (0.05, 6, 5, 1, 2.0),
    (0.02, 3, 4, 1, 0.9),
    (0.1, 2, 1, 1, 1.0),   # one iteration per epoch
    (0.01, 2, 6, 2, 1.0),  # warm-up only (W = T)
    (0.01, 3, 5, 5, 1.0),  # warm-up longer than training: clamped to T
]


def hand(base, t, w, power, s):
    if s < w:
        return base * (s + 1) / w
    return base * (1.0 - (s - w) / (t - w)) ** power


def torch_lrs(base, t, w, power):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    scheds = []
    if w > 0:
        # total_iters must be >= 1; with W = 1 the start factor is already 1.
        scheds.append(torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / w, end_factor=1.0,
                                                        total_iters=max(w - 1, 1)))
    if t > w:
        scheds.append(torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=t - w, power=power))
    if len(scheds) == 2:
        sched = torch.optim.lr_scheduler.SequentialLR(opt, scheds, milestones=[w])
    else:
        sched = scheds[0]
    out = []
    for _ in range(t):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def main():
    for base, epochs, iters, warmup_epochs, power in CASES:
        t = epochs * iters
        w = min(warmup_epochs * iters, t)
        lrs = torch_lrs(base, t, w, power)
        for s, v in enumerate(lrs):
            h = hand(base, t, w, power, s)
            assert abs(v - h) <= 1e-12 * max(abs(h), 1e-12) + 1e-15, (base, epochs, iters, warmup_epochs, power, s, v, h)
        print("case", base, epochs, iters, warmup_epochs, power, " ".join(repr(v) for v in lrs))


if __name__ == "__main__":
    main()
