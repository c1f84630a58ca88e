#!/usr/bin/env python3
"""PyTorch side of krill's safetensors interop tests (tests/io/test_safetensors.cpp).

The `safetensors` Python package is not installed here, so the format is implemented below
with struct + json, following the reference implementation (huggingface/safetensors): an
8-byte little-endian header length, a compact JSON header padded with spaces to a multiple of
8 bytes, "__metadata__" first, tensors ordered by (dtype alignment descending, name), data
buffer fully covered.

Usage:
  safetensors_oracle.py write <out_dir> <seed>
      Writes, from seeded random torch tensors (all krill dtypes, 0-d, empty, non-contiguous
      sources, special floats):
        <out_dir>/torch.safetensors          reference-library layout
        <out_dir>/torch_unpadded.safetensors header not padded, header keys in shuffled order
                                              (data order differs from header order)
        <out_dir>/reference.txt               one line per tensor, in torch.safetensors order:
                                              name dtype shape hexbytes   (shape "-" for 0-d,
                                              "0x2" style with 'x', hexbytes "-" when empty)
                                              plus "meta <hexkey> <hexvalue>" lines
  safetensors_oracle.py check <file> <spec>
      Reads a krill-written file and checks it against <spec> (written by the test):
        tensor <name> <dtype> <shape> <kind> <args...>
          kind affine  <start> <step>  values start + step * arange(numel) (bool: != 0)
          kind affineT <start> <step>  2-D: (start + step * arange).reshape(cols, rows).t()
          kind hex     <hexbytes|->    raw little-endian bytes
        meta <hexkey> <hexvalue>
      Checks header padding, key order (= spec order), dtypes, shapes, offsets (contiguous from
      0, covering the buffer), metadata and values (exactly). Exits non-zero on any mismatch.
"""
import json
import random
import struct
import sys

import torch

DTYPES = {  # krill name -> (safetensors name, torch dtype)
    "float32": ("F32", torch.float32),
    "float64": ("F64", torch.float64),
    "float16": ("F16", torch.float16),
    "bfloat16": ("BF16", torch.bfloat16),
    "int64": ("I64", torch.int64),
    "int32": ("I32", torch.int32),
    "uint8": ("U8", torch.uint8),
    "bool": ("BOOL", torch.bool),
}
ST_TO_KRILL = {v[0]: k for k, v in DTYPES.items()}
SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def tensor_bytes(t):
    t = t.contiguous()
    if t.numel() == 0:
        return b""
    if t.dtype == torch.bool:
        return t.to(torch.uint8).numpy().tobytes()
    return t.view(SAME_SIZE_INT[t.element_size()]).numpy().tobytes()


def tensor_from_bytes(data, krill_dtype, shape):
    dt = DTYPES[krill_dtype][1]
    if len(data) == 0:
        return torch.empty(shape, dtype=dt)
    if dt == torch.bool:
        raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        if not bool(((raw == 0) | (raw == 1)).all()):
            raise AssertionError("bool tensor holds bytes other than 0/1")
        return raw.to(torch.bool).reshape(shape)
    return torch.frombuffer(bytearray(data), dtype=dt).reshape(shape)


def serialize(tensors, metadata, pad=True, header_order=None):
    """tensors: list of (name, torch tensor). Data is laid out in the reference order:
    dtype alignment descending, then name. header_order: optional permutation of names."""
    items = sorted(tensors, key=lambda kv: (-kv[1].element_size(), kv[0]))
    entries = {}
    blobs = []
    off = 0
    for name, t in items:
        b = tensor_bytes(t)
        entries[name] = {"dtype": DTYPES[krill_name(t.dtype)][0], "shape": list(t.shape),
                         "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    for name in (header_order or [n for n, _ in items]):
        header[name] = entries[name]
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs), [n for n, _ in items]


def krill_name(torch_dtype):
    for k, (_, dt) in DTYPES.items():
        if dt == torch_dtype:
            return k
    raise KeyError(torch_dtype)


def shape_str(shape):
    return "-" if len(shape) == 0 else "x".join(str(d) for d in shape)


def parse_shape(s):
    return [] if s == "-" else [int(d) for d in s.split("x")]


def random_shape(rng):
    kind = rng.random()
    if kind < 0.15:
        return []
    if kind < 0.25:
        return [rng.choice([0, 3])] + ([0] if rng.random() < 0.5 else [2])
    ndim = rng.randint(1, 4)
    return [rng.randint(1, 5) for _ in range(ndim)]


def random_tensor(rng, dtype, shape):
    if dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        return torch.randn(shape, dtype=torch.float64).mul(rng.choice([1e-3, 1.0, 300.0])).to(dtype)
    if dtype == torch.int64:
        return torch.randint(-(2 ** 62), 2 ** 62, shape, dtype=torch.int64)
    if dtype == torch.int32:
        return torch.randint(-(2 ** 31), 2 ** 31 - 1, shape, dtype=torch.int32)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8)
    if dtype == torch.bool:
        return torch.rand(shape) > 0.5
    raise KeyError(dtype)


def cmd_write(out_dir, seed):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tensors = []
    # A PyTorch-like state dict first, then random extras of every dtype.
    w = torch.randn(10, 5)
    tensors.append(("fc1.weight", w))
    tensors.append(("fc1.bias", torch.randn(10)))
    tensors.append(("fc2.weight", torch.randn(3, 10).t().contiguous().t()))  # non-contiguous source
    tensors.append(("bn.num_batches_tracked", torch.tensor(rng.randint(0, 10 ** 6), dtype=torch.int64)))
    tensors.append(("special", torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"),
                                             1e-45, 3.4028234663852886e38, -1.5], dtype=torch.float32)))
    tensors.append(("empty.f32", torch.empty(0, 4)))
    for i in range(rng.randint(6, 14)):
        kname = rng.choice(list(DTYPES))
        dt = DTYPES[kname][1]
        tensors.append((f"extra.{i}.{kname}", random_tensor(rng, dt, random_shape(rng))))
    # safetensors wants contiguous data: the writer makes it so (as safetensors.torch does).
    tensors = [(n, t.contiguous()) for n, t in tensors]
    metadata = {"format": "pt", "seed": str(seed), "note": "krill interop \u00e9\u4e2d \"quoted\""}

    data, order = serialize(tensors, metadata, pad=True)
    with open(f"{out_dir}/torch.safetensors", "wb") as f:
        f.write(data)
    shuffled = list(order)
    rng.shuffle(shuffled)
    data2, _ = serialize(tensors, metadata, pad=False, header_order=shuffled)
    with open(f"{out_dir}/torch_unpadded.safetensors", "wb") as f:
        f.write(data2)

    by_name = dict(tensors)
    with open(f"{out_dir}/reference.txt", "w") as f:
        for name in order:
            t = by_name[name]
            b = tensor_bytes(t)
            f.write(f"{name} {krill_name(t.dtype)} {shape_str(list(t.shape))} {b.hex() if b else '-'}\n")
        for k, v in metadata.items():
            f.write(f"meta {k.encode().hex()} {v.encode().hex()}\n")
    print(f"wrote {len(tensors)} tensors")


def expected_tensor(dtype_name, shape, kind, args):
    dt = DTYPES[dtype_name][1]
    numel = 1
    for d in shape:
        numel *= d
    if kind in ("affine", "affineT"):
        if dtype_name in ("int64", "int32", "uint8"):
            start, step = int(args[0]), int(args[1])
            vals = torch.arange(numel, dtype=torch.int64) * step + start
        else:
            start, step = float(args[0]), float(args[1])
            vals = torch.arange(numel, dtype=torch.float64) * step + start
        if dtype_name == "bool":
            vals = vals != 0
        else:
            vals = vals.to(dt)
        if kind == "affine":
            return vals.reshape(shape)
        assert len(shape) == 2, "affineT needs a 2-D shape"
        return vals.reshape(shape[1], shape[0]).t()
    if kind == "hex":
        data = b"" if args[0] == "-" else bytes.fromhex(args[0])
        return tensor_from_bytes(data, dtype_name, shape)
    raise ValueError(f"unknown kind {kind}")


def same(a, b):
    if a.dtype != b.dtype or list(a.shape) != list(b.shape):
        return False
    return tensor_bytes(a) == tensor_bytes(b)  # bitwise: NaNs and -0.0 must survive too


def cmd_check(path, spec_path):
    errors = []
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        sys.exit(f"{path}: only {len(blob)} bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if n % 8 != 0:
        errors.append(f"header length {n} is not a multiple of 8")
    raw_header = blob[8:8 + n]
    text = raw_header.decode("utf-8")
    if text.rstrip(" ") != text.rstrip(" ").strip() or not text.startswith("{"):
        errors.append("header has leading whitespace")
    def no_duplicates(pairs):
        d = dict(pairs)
        if len(d) != len(pairs):
            errors.append(f"duplicate keys in a header object: {[k for k, _ in pairs]}")
        return d

    header = json.loads(text, object_pairs_hook=no_duplicates)  # dicts keep the file's key order
    pairs = list(header.items())
    buf = blob[8 + n:]

    spec_tensors, spec_meta = [], {}
    with open(spec_path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "meta":
                k = bytes.fromhex(parts[1]).decode("utf-8")
                v = bytes.fromhex(parts[2]).decode("utf-8") if len(parts) > 2 else ""
                spec_meta[k] = v
            elif parts[0] == "tensor":
                spec_tensors.append((parts[1], parts[2], parse_shape(parts[3]), parts[4], parts[5:]))
            else:
                sys.exit(f"bad spec line: {line!r}")

    meta = header.pop("__metadata__", None)
    if spec_meta:
        if meta != spec_meta:
            errors.append(f"metadata {meta!r} != expected {spec_meta!r}")
    elif meta not in (None, {}):
        errors.append(f"unexpected metadata {meta!r}")
    if [k for k, _ in pairs if k != "__metadata__"] != [s[0] for s in spec_tensors]:
        errors.append(f"tensor order {list(header)} != expected {[s[0] for s in spec_tensors]}")

    off = 0
    for name, dtype_name, shape, kind, args in spec_tensors:
        info = header.get(name)
        if info is None:
            errors.append(f"{name}: missing")
            continue
        if info.get("dtype") != DTYPES[dtype_name][0]:
            errors.append(f"{name}: dtype {info.get('dtype')} != {DTYPES[dtype_name][0]}")
            continue
        if info.get("shape") != shape:
            errors.append(f"{name}: shape {info.get('shape')} != {shape}")
            continue
        b, e = info["data_offsets"]
        if b != off:
            errors.append(f"{name}: data starts at {b}, expected {off} (insertion order, no gaps)")
        off = e
        got = tensor_from_bytes(buf[b:e], dtype_name, shape)
        want = expected_tensor(dtype_name, shape, kind, args)
        if not same(got, want):
            errors.append(f"{name}: values differ\n  got  {got}\n  want {want}")
    if off != len(buf):
        errors.append(f"data buffer is {len(buf)} bytes but tensors end at {off}")
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print(f"ok: {len(spec_tensors)} tensors, {len(spec_meta)} metadata entries")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "write":
        cmd_write(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        cmd_check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
