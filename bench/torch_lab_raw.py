#!/usr/bin/python3
"""The whole penguin lab as one PyTorch process, from the raw CSV: the notebook's code (its Spark
preparation done with pandas, as in shared/bench/peers/common.py), the counterpart of the two
krill processes

  krill train --config examples/penguins.toml --out DIR --force -q
  krill predict DIR --row "Dream,50.4,15.3,200,5000"

Steps, in the notebook's order: pandas.read_csv(data/penguins.csv), dropna(), Island mapped to
its index in sorted order (Biscoe=0, Dream=1, Torgersen=2), casts (int32 / float32),
FlipperLength/10 and BodyMass/100, 4x oversampling (concat twice, the lab's two unions),
train_test_split(test_size=0.3, random_state=0), TensorDataset + DataLoader(batch_size=20,
shuffle=False), PenguinNet 5->10->10->3 (ReLU, ReLU, log_softmax) built right after
torch.manual_seed(seed), CrossEntropyLoss on the log_softmax output, Adam(lr=0.001), 100 epochs
each followed by validation (loss and accuracy), torch.save(state_dict), a new PenguinNet with
load_state_dict(torch.load(...)), eval, and the prediction for x_new = [[1, 50.4, 15.3, 20, 50]].

Prints one JSON line with the final losses, the accuracy and the predicted class (with --verbose
also the notebook's per-epoch lines first). run_bench.py times the whole process, `import torch`
included. --num-workers 1 is the notebook's literal DataLoader setting (a worker process per
epoch); the default 0 is what the peer benchmarks time.
"""
import argparse
import json
import os

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.data as td
from sklearn.model_selection import train_test_split

from torch_side import set_threads

FEATURES = ["Island", "CulmenLength", "CulmenDepth", "FlipperScaled", "MassScaled"]
LABEL = "Species"
X_NEW = [[1, 50.4, 15.3, 20, 50]]


class PenguinNet(nn.Module):
    def __init__(self, hl=10):
        super().__init__()
        self.fc1 = nn.Linear(len(FEATURES), hl)
        self.fc2 = nn.Linear(hl, hl)
        self.fc3 = nn.Linear(hl, 3)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return F.log_softmax(self.fc3(x).float(), dim=1)


def train(model, data_loader, optimizer, loss_criteria, verbose):
    model.train()
    train_loss = 0
    for batch, tensor in enumerate(data_loader):
        data, target = tensor
        optimizer.zero_grad()
        out = model(data)
        loss = loss_criteria(out, target)
        train_loss += loss.item()
        loss.backward()
        optimizer.step()
    avg_loss = train_loss / (batch + 1)
    if verbose:
        print("Training set: Average loss: {:.6f}".format(avg_loss))
    return avg_loss


def test(model, data_loader, loss_criteria, verbose):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        batch_count = 0
        for batch, tensor in enumerate(data_loader):
            batch_count += 1
            data, target = tensor
            out = model(data)
            test_loss += loss_criteria(out, target).item()
            _, predicted = torch.max(out.data, 1)
            correct += torch.sum(target == predicted).item()
    avg_loss = test_loss / batch_count
    if verbose:
        print("Validation set: Average loss: {:.6f}, Accuracy: {}/{} ({:.0f}%)\n".format(
            avg_loss, correct, len(data_loader.dataset), 100.0 * correct / len(data_loader.dataset)))
    return avg_loss, int(correct)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                   "data", "penguins.csv"))
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed before building the model")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenBLAS threads (default 1 + 1)")
    ap.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (the notebook has 1)")
    ap.add_argument("--verbose", action="store_true", help="print the notebook's per-epoch lines")
    ap.add_argument("--out", required=True, help="directory for the saved state_dict")
    args = ap.parse_args()
    set_threads(args.threads)

    # ---- data: the notebook's preparation ----
    islands = ["Biscoe", "Dream", "Torgersen"]
    df = pd.read_csv(args.data).dropna()
    data = pd.DataFrame({
        "Island": df["Island"].map({name: i for i, name in enumerate(islands)}).astype("int32"),
        "CulmenLength": df["CulmenLength"].astype("float32"),
        "CulmenDepth": df["CulmenDepth"].astype("float32"),
        "FlipperScaled": df["FlipperLength"].astype("float32").astype("float64") / 10,
        "MassScaled": df["BodyMass"].astype("float32").astype("float64") / 100,
        LABEL: df[LABEL].astype("int32"),
    })
    for _ in range(1, 3):  # data = data.union(data), twice: 4x oversampling
        data = pd.concat([data, data], ignore_index=True)
    x_train, x_test, y_train, y_test = train_test_split(data[FEATURES].values, data[LABEL].values,
                                                        test_size=0.30, random_state=0)

    train_x, train_y = torch.Tensor(x_train).float(), torch.Tensor(y_train).long()
    test_x, test_y = torch.Tensor(x_test).float(), torch.Tensor(y_test).long()
    train_loader = td.DataLoader(td.TensorDataset(train_x, train_y), batch_size=20, shuffle=False,
                                 num_workers=args.num_workers)
    test_loader = td.DataLoader(td.TensorDataset(test_x, test_y), batch_size=20, shuffle=False,
                                num_workers=args.num_workers)

    # ---- model and training ----
    torch.manual_seed(args.seed)
    model = PenguinNet()
    loss_criteria = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    optimizer.zero_grad()
    for epoch in range(1, args.epochs + 1):
        if args.verbose:
            print("Epoch: {}".format(epoch))
        train_loss = train(model, train_loader, optimizer, loss_criteria, args.verbose)
        test_loss, correct = test(model, test_loader, loss_criteria, args.verbose)

    # ---- save, load into a new model, predict ----
    os.makedirs(args.out, exist_ok=True)
    model_file = os.path.join(args.out, "model.pt")
    torch.save(model.state_dict(), model_file)
    model = PenguinNet()
    model.load_state_dict(torch.load(model_file))
    model.eval()
    x = torch.Tensor(X_NEW).float()
    with torch.no_grad():
        out = model(x)
        _, predicted = torch.max(out.data, 1)
    print(json.dumps({"epochs": args.epochs, "train_loss": train_loss, "val_loss": test_loss, "correct": correct,
                      "total": len(test_y), "predicted_class": int(predicted.item()),
                      "probabilities": [float(p) for p in out.exp()[0]]}))


if __name__ == "__main__":
    main()
