#!/usr/bin/env python3
"""numpy/PyTorch side of krill's image data tests (tests/data/test_image_data.cpp,
tests/data/test_transforms.cpp). torchvision is not installed: its transforms are written out
here with the same torch ops (ToTensor = x.float() / 255, Normalize = sub_(mean).div_(std),
RandomCrop = zero F.pad then a slice, hflip = flip(-1)).

Usage:
  image_oracle.py idx <dir> <out.json> <i,j,...>
      Reads train-*/t10k-* IDX .gz files with gzip + numpy; writes the counts, sizes, and for
      the given indices (training and t10k) the label and all pixels.
  image_oracle.py transforms <dir>
      Reads <dir>/spec.json and <dir>/images.u8 (uint8 [n, c, h, w]); for each case writes
      <dir>/<name>.f32: the transformed batch, float32.
"""
import gzip
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def idx(directory, out, indices):
    res = {}
    for split in ["train", "t10k"]:
        images = read_idx(os.path.join(directory, split + "-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(directory, split + "-labels-idx1-ubyte.gz"))
        res[split] = {
            "n": int(images.shape[0]), "h": int(images.shape[1]), "w": int(images.shape[2]),
            "n_labels": int(labels.shape[0]),
            "label_counts": np.bincount(labels, minlength=10).tolist(),
            "samples": [{"i": i, "label": int(labels[i]), "pixels": images[i].reshape(-1).tolist()}
                        for i in indices if i < images.shape[0]],
        }
    with open(out, "w") as f:
        json.dump(res, f)


def transforms(directory):
    spec = json.load(open(os.path.join(directory, "spec.json")))
    n, c, h, w = spec["n"], spec["c"], spec["h"], spec["w"]
    raw = np.fromfile(os.path.join(directory, "images.u8"), dtype=np.uint8).reshape(n, c, h, w)
    x = torch.from_numpy(raw.copy())
    for case in spec["cases"]:
        mean = torch.tensor(case["mean"], dtype=torch.float32) if case["mean"] else None
        std = torch.tensor(case["std"], dtype=torch.float32) if case["std"] else None
        outs = []
        for k in range(n):
            img = x[k]
            if case["resize"]:
                # Resize on float: interpolate(x / 255), bilinear, align_corners=False, no antialias
                t = F.interpolate(img.float().div(255).unsqueeze(0), size=tuple(case["resize"]), mode="bilinear",
                                  align_corners=False).squeeze(0)
                if case["crop"]:
                    top, left, flip = case["draws"][k]
                    p = case["pad"]
                    t = F.pad(t, (p, p, p, p), value=0.0)
                    t = t[:, top:top + case["crop"][0], left:left + case["crop"][1]]
                    if flip:
                        t = t.flip(-1)
                elif case["draws"] and case["draws"][k][2]:
                    t = t.flip(-1)
            else:
                t = img
                if case["crop"]:
                    top, left, flip = case["draws"][k]
                    p = case["pad"]
                    t = F.pad(t.unsqueeze(0), (p, p, p, p), value=0).squeeze(0)  # uint8 zero padding
                    t = t[:, top:top + case["crop"][0], left:left + case["crop"][1]]
                    if flip:
                        t = t.flip(-1)
                elif case["draws"] and case["draws"][k][2]:
                    t = t.flip(-1)
                t = t.float().div(255)  # ToTensor
            if mean is not None:
                m = mean if mean.numel() == c else mean.expand(c)
                s = std if std.numel() == c else std.expand(c)
                t = t.sub(m[:, None, None]).div(s[:, None, None])  # Normalize
            outs.append(t.contiguous())
        torch.stack(outs).numpy().astype(np.float32).tofile(os.path.join(directory, case["name"] + ".f32"))


def main():
    mode = sys.argv[1]
    if mode == "idx":
        idx(sys.argv[2], sys.argv[3], [int(v) for v in sys.argv[4].split(",")])
    elif mode == "transforms":
        transforms(sys.argv[2])
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
