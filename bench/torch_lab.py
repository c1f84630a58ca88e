#!/usr/bin/python3
"""The penguin lab as one PyTorch process: the counterpart of

  krill train --train data/penguins_train.csv --validation data/penguins_val.csv --label Species \
      --hidden 10,10 --batch-size 20 --epochs 100 --optimizer adam --lr 0.001 --no-shuffle --seed 0 \
      --out DIR --force -q

Reads the same CSVs (header row, numeric columns), DataLoader(batch_size=20, shuffle=False),
PenguinNet 5->10->10->3 (ReLU, ReLU, log_softmax) built right after torch.manual_seed(seed),
CrossEntropyLoss on the log_softmax output (as the lab), Adam; every epoch trains and then
validates (loss and accuracy); saves the state_dict to DIR/model.pt. Prints one JSON line with
the final losses and accuracy. run_bench.py times the whole process, import torch included.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.utils.data as td

from torch_side import PenguinNet, set_threads


def read_csv(path, label):
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    li = header.index(label)
    feats = [i for i in range(len(header)) if i != li]
    return torch.tensor(data[:, feats], dtype=torch.float32), torch.tensor(data[:, li], dtype=torch.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--validation", required=True)
    ap.add_argument("--label", default="Species")
    ap.add_argument("--hidden", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenBLAS threads (default 1 + 1)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    set_threads(args.threads)

    train_x, train_y = read_csv(args.train, args.label)
    val_x, val_y = read_csv(args.validation, args.label)
    num_classes = int(train_y.max()) + 1
    train_loader = td.DataLoader(td.TensorDataset(train_x, train_y), batch_size=args.batch_size, shuffle=False)
    val_loader = td.DataLoader(td.TensorDataset(val_x, val_y), batch_size=args.batch_size, shuffle=False)

    torch.manual_seed(args.seed)
    model = PenguinNet(train_x.shape[1], args.hidden, num_classes)
    loss_criteria = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    for epoch in range(1, args.epochs + 1):
        model.train()
        train_loss, nb = 0.0, 0
        for data, target in train_loader:
            optimizer.zero_grad()
            out = model(data)
            loss = loss_criteria(out, target)
            train_loss += loss.item()
            loss.backward()
            optimizer.step()
            nb += 1
        model.eval()
        val_loss, correct, vb = 0.0, 0, 0
        with torch.no_grad():
            for data, target in val_loader:
                out = model(data)
                val_loss += loss_criteria(out, target).item()
                _, predicted = torch.max(out.data, 1)
                correct += torch.sum(target == predicted).item()
                vb += 1

    os.makedirs(args.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.out, "model.pt"))
    print(json.dumps({"epochs": args.epochs, "train_loss": train_loss / nb, "val_loss": val_loss / vb,
                      "correct": int(correct), "total": len(val_y)}))


if __name__ == "__main__":
    main()
