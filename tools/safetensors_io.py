"""Minimal safetensors reader/writer (torch + numpy only).

The format: an 8-byte little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian tensor bytes (offsets are relative to the end of
the header). Written by hand because the `safetensors` package is not
available on every machine these tools run on.
"""

import json
import struct

import numpy as np
import torch

# safetensors dtype name -> (torch dtype, bytes per element)
DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
}

# numpy has no bfloat16: 2-byte types travel through numpy as int16 bit patterns.
_BITS = {2: torch.int16}


def _tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(_BITS[2])
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()


def write(path, tensors, dtype=None, metadata=None):
    """Writes {name: tensor} to `path`. With `dtype` ("F32", "F16", "BF16", ...)
    every floating tensor is converted to it; otherwise each keeps its own."""
    names = sorted(tensors)
    header = {}
    blobs = []
    offset = 0
    for name in names:
        t = tensors[name]
        if dtype is not None and t.is_floating_point():
            t = t.to(DTYPES[dtype][0])
        code = next((k for k, (td, _) in DTYPES.items() if td == t.dtype), None)
        if code is None:
            raise ValueError(f"{name}: dtype {t.dtype} has no safetensors code here")
        data = _tensor_bytes(t)
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # the reference writer aligns data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    return offset


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n).decode("utf-8")), 8 + n


def read(path):
    """Returns {name: tensor} in the stored dtypes (metadata dropped)."""
    header, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        raw = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        td, size = DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        count = (e - b) // size
        if td in (torch.bfloat16, torch.float16):
            arr = np.frombuffer(raw, dtype="<i2", count=count, offset=b).copy()
            t = torch.from_numpy(arr).view(td)
        else:
            np_dtype = torch.empty(0, dtype=td).numpy().dtype.newbyteorder("<")
            arr = np.frombuffer(raw, dtype=np_dtype, count=count, offset=b).copy()
            t = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=False))
        out[name] = t.reshape(info["shape"])
    return out
