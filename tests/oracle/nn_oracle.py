#!/usr/bin/python3
"""PyTorch oracle for krill's tensor-core, generator and nn unit tests
(tests/tensor/test_tensor.cpp, tests/nn/test_nn.cpp).

usage:
  nn_oracle.py repr CASES_FILE
      CASES_FILE holds tensors, each as two lines:
          case NAME DTYPE REQUIRES_GRAD NDIM D0 D1 ...
          V0 V1 ...            (values in row-major order; floats as %.9g / %.17g, nan, inf, -inf)
      DTYPE is float32, float64, int64 or bool (values 0/1). Prints, for each case,
          @@case NAME
          <repr(tensor)>        (possibly several lines)
      and a final line @@end.

  nn_oracle.py rng SEED
      Runs a fixed sequence of seeded draws (the same sequence test_tensor.cpp makes with krill)
      and prints one line per draw:  NAME DTYPE N V0 V1 ...  (floats as repr(), exact).

  nn_oracle.py init SEED
      torch.manual_seed(SEED), then builds layers and runs init functions in a fixed order
      (the same order test_nn.cpp uses); prints NAME DTYPE N V0 ... per tensor.

  nn_oracle.py models
      print(model) for a fixed list of architectures, each preceded by "@@model NAME";
      a final line @@end.
"""
import math
import sys

import torch
import torch.nn as nn

DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64, "bool": torch.bool}


def emit(name, t):
    t = t.detach().reshape(-1)
    if t.dtype.is_floating_point:
        vals = " ".join(repr(float(v)) for v in t.tolist())
    else:
        vals = " ".join(str(int(v)) for v in t.tolist())
    print(f"{name} {str(t.dtype).replace('torch.', '')} {t.numel()} {vals}".rstrip())


def cmd_repr(path):
    with open(path) as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        head = lines[i].split()
        i += 1
        if not head:
            continue
        assert head[0] == "case", head
        name, dtype, rg, ndim = head[1], DTYPES[head[2]], head[3] == "1", int(head[4])
        shape = [int(x) for x in head[5:5 + ndim]]
        vals = lines[i].split()
        i += 1
        if dtype == torch.bool:
            data = [bool(int(v)) for v in vals]
        elif dtype == torch.int64:
            data = [int(v) for v in vals]
        else:
            data = [float(v) for v in vals]
        t = torch.tensor(data, dtype=dtype).reshape(shape)
        if rg:
            t.requires_grad_(True)
        print(f"@@case {name}")
        print(repr(t))
    print("@@end")


def cmd_rng(seed):
    torch.manual_seed(seed)
    emit("rand5", torch.rand(5))
    t = torch.empty(3, 4)
    t.uniform_(-2, 3)
    emit("uniform34", t)
    emit("randperm10", torch.randperm(10))
    emit("randint7", torch.randint(0, 10, (7,)))
    emit("randn20", torch.randn(20))
    emit("randn5", torch.randn(5))                 # < 16 elements: double Box-Muller, leaves a cached sample
    emit("rand3d", torch.rand(3, dtype=torch.float64))
    emit("randn3", torch.randn(3))                 # starts with the cached sample
    emit("randint43", torch.randint(-5, 5, (4, 3)))
    emit("randperm3", torch.randperm(3))
    emit("randint_big", torch.randint(0, 2 ** 40, (3,)))
    emit("randn37", torch.randn(37))               # tail of 5 recomputed from fresh uniforms
    d = torch.empty(6, dtype=torch.float64)
    d.uniform_(-1, 1)
    emit("uniform6d", d)
    emit("randn20d", torch.randn(20, dtype=torch.float64))
    emit("randn7d", torch.randn(7, dtype=torch.float64))
    n = torch.empty(2, 10)
    n.normal_(3.0, 0.5)
    emit("normal210", n)
    emit("randperm50", torch.randperm(50))
    emit("rand_after", torch.rand(4))
    g = torch.Generator()
    g.manual_seed(seed + 1)
    emit("gen_rand4", torch.rand(4, generator=g))
    emit("gen_randperm6", torch.randperm(6, generator=g))
    emit("default_after_gen", torch.rand(2))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 10)
        self.fc2 = nn.Linear(10, 10)
        self.fc3 = nn.Linear(10, 3)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return torch.log_softmax(self.fc3(x), dim=1)


class PenguinNet(Net):
    pass


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8, bias=False), nn.Sigmoid())
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(p=0.25), nn.Linear(8, 2), nn.Softmax(dim=-1))
        self.norm = nn.Linear(2, 2)


def cmd_init(seed):
    torch.manual_seed(seed)
    l1 = nn.Linear(5, 10)
    l2 = nn.Linear(10, 3)
    emit("l1.weight", l1.weight)
    emit("l1.bias", l1.bias)
    emit("l2.weight", l2.weight)
    emit("l2.bias", l2.bias)
    l3 = nn.Linear(4, 2, bias=False)
    emit("l3.weight", l3.weight)
    net = PenguinNet()
    for name, p in net.named_parameters():
        emit("net." + name, p)
    w = torch.empty(6, 4)
    nn.init.kaiming_uniform_(w)
    emit("kaiming_uniform", w)
    w = torch.empty(3, 5)
    nn.init.xavier_uniform_(w, gain=2.0)
    emit("xavier_uniform", w)
    w = torch.empty(3, 5)
    nn.init.kaiming_uniform_(w, a=0.0, mode="fan_out", nonlinearity="relu")
    emit("kaiming_uniform_relu_out", w)
    w = torch.empty(2, 3, 2)
    nn.init.uniform_(w, -0.5, 0.25)
    emit("uniform", w)
    w = torch.empty(3, 4)
    nn.init.xavier_normal_(w)
    emit("xavier_normal", w)
    w = torch.empty(3, 4)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    emit("kaiming_normal", w)
    emit("after", torch.rand(3))


def cmd_models():
    models = {
        "seq": nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Dropout(0.2), nn.Linear(10, 3), nn.LogSoftmax(dim=1)),
        "penguin": PenguinNet(),
        "encoder": Encoder(),
        "linear_nobias": nn.Linear(3, 1, bias=False),
        "dropout": nn.Dropout(),
        "nested": nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Dropout(p=0.1)),
        "empty_seq": nn.Sequential(),
        "dropout_one": nn.Dropout(p=1.0),
        "dropout_tiny": nn.Dropout(p=1e-05),
        "dropout_small": nn.Dropout(p=0.0001),
        "dropout_digits": nn.Dropout(p=0.123456789),
    }
    for name, m in models.items():
        print(f"@@model {name}")
        print(m)
    print("@@end")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    cmd = sys.argv[1]
    if cmd == "repr":
        cmd_repr(sys.argv[2])
    elif cmd == "rng":
        cmd_rng(int(sys.argv[2]))
    elif cmd == "init":
        cmd_init(int(sys.argv[2]))
    elif cmd == "models":
        cmd_models()
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
