#!/usr/bin/python3
"""PyTorch side of the whole-run equivalence test: the MLP that `krill train` builds (fc1..fcN,
ReLU between, log_softmax output, CrossEntropyLoss on it as in the lab), trained on the same
numeric CSVs with the same options. Prints one JSON object: per-epoch train/val loss and
accuracy, and the final weights' names and values.

  train_run.py --train T.csv --validation V.csv --label Species --hidden 10,10 --batch-size 20
               --epochs 100 --optimizer adam --lr 0.001 [--momentum 0.9] [--weight-decay 0]
               [--shuffle|--no-shuffle] --seed 0 [--init-weights FILE] [--save-init FILE]
"""
import argparse
import csv
import json
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + b:base + e]), dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load(path, label):
    with open(path, newline="") as f:
        r = list(csv.DictReader(f))
    feats = [c for c in r[0].keys() if c != label]
    x = torch.tensor([[float(row[c]) for c in feats] for row in r], dtype=torch.float32)
    y = torch.tensor([int(float(row[label])) for row in r], dtype=torch.int64)
    return x, y


class MLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        for i in range(len(sizes) - 1):
            setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))
        self.n = len(sizes) - 1

    def forward(self, x):
        for i in range(1, self.n):
            x = torch.relu(getattr(self, f"fc{i}")(x))
        return F.log_softmax(getattr(self, f"fc{self.n}")(x), dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--validation", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--hidden", default="10,10")
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--shuffle", dest="shuffle", action="store_true", default=True)
    ap.add_argument("--no-shuffle", dest="shuffle", action="store_false")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-weights")
    ap.add_argument("--save-init")
    a = ap.parse_args()
    torch.set_num_threads(1)
    xt, yt = load(a.train, a.label)
    xv, yv = load(a.validation, a.label)
    classes = int(yt.max()) + 1
    torch.manual_seed(a.seed)
    model = MLP([xt.shape[1]] + [int(h) for h in a.hidden.split(",")] + [classes])
    if a.init_weights:
        model.load_state_dict(read_safetensors(a.init_weights))
    if a.save_init:
        write_safetensors(a.save_init, model.state_dict())
    if a.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    elif a.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    tl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xt, yt), batch_size=a.batch_size,
                                     shuffle=a.shuffle)
    vl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xv, yv), batch_size=a.batch_size,
                                     shuffle=False)
    loss_fn = nn.CrossEntropyLoss()
    curve = []
    for epoch in range(1, a.epochs + 1):
        model.train()
        total, nb = 0.0, 0
        for x, y in tl:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            total += loss.item()
            loss.backward()
            opt.step()
            nb += 1
        model.eval()
        vtotal, vb, correct = 0.0, 0, 0
        with torch.no_grad():
            for x, y in vl:
                out = model(x)
                vtotal += loss_fn(out, y).item()
                correct += int((out.argmax(1) == y).sum())
                vb += 1
        curve.append([epoch, total / nb, vtotal / vb, correct / len(yv)])
    print(json.dumps({"curve": curve,
                      "weights": {k: v.flatten().tolist() for k, v in model.state_dict().items()}}))


if __name__ == "__main__":
    main()
