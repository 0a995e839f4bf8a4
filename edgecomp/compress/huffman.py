"""The Deep-Compression archive: clustered, pruned weights Huffman-coded into one file.

Per layer it stores the shape, a float32 codebook, the positions of non-zero weights as
Huffman-coded gaps, their cluster indices Huffman-coded, and the bias as float16.
Decoding gives back exactly the clustered weights (biases at float16 precision).

The coder is written here with heapq: no maintained PyPI package offers canonical
Huffman codes with exact bit accounting over integer symbols in a format we control,
and the whole coder is some sixty lines.
"""

from __future__ import annotations

import heapq
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from edgecomp.atomic import atomic_write_bytes
from edgecomp.errors import InputError

MAGIC = b"ECDC"
VERSION = 1
# Gaps between kept weights are capped as in Deep Compression: the symbol MAX_GAP means
# "skip MAX_GAP positions, no weight here", which keeps the gap alphabet (and its table)
# small even where a layer is almost empty.
MAX_GAP = 31


def code_lengths(symbols: list[int]) -> dict[int, int]:
    """Huffman code length per symbol (a single distinct symbol gets length 1)."""
    counts = Counter(symbols)
    if len(counts) == 1:
        return {next(iter(counts)): 1}
    heap = [(count, index, {symbol: 0}) for index, (symbol, count) in enumerate(counts.items())]
    heapq.heapify(heap)
    tie = len(heap)
    while len(heap) > 1:
        c1, _, a = heapq.heappop(heap)
        c2, _, b = heapq.heappop(heap)
        merged = {s: d + 1 for s, d in {**a, **b}.items()}
        heapq.heappush(heap, (c1 + c2, tie, merged))
        tie += 1
    return heap[0][2]


def canonical_codes(lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Canonical codes (value, length): only the lengths need storing."""
    codes, code, previous = {}, 0, 0
    for symbol, length in sorted(lengths.items(), key=lambda item: (item[1], item[0])):
        code <<= length - previous
        codes[symbol] = (code, length)
        code += 1
        previous = length
    return codes


def encode(symbols: list[int]) -> bytes:
    """Table (symbol, length pairs) + count + bit stream, padded to a byte."""
    lengths = code_lengths(symbols) if symbols else {}
    codes = canonical_codes(lengths)
    bits = "".join(format(codes[s][0], f"0{codes[s][1]}b") for s in symbols)
    padded = bits + "0" * (-len(bits) % 8)
    stream = int(padded, 2).to_bytes(len(padded) // 8, "big") if padded else b""
    table = b"".join(struct.pack("<HB", s, l) for s, l in sorted(lengths.items()))
    return struct.pack("<II", len(lengths), len(symbols)) + table + stream


def decode(data: bytes, offset: int) -> tuple[list[int], int]:
    """Inverse of encode, starting at `offset`; returns the symbols and the next offset."""
    entries, count = struct.unpack_from("<II", data, offset)
    offset += 8
    lengths = {}
    for _ in range(entries):
        symbol, length = struct.unpack_from("<HB", data, offset)
        lengths[symbol] = length
        offset += 3
    lookup = {(code, length): s for s, (code, length) in canonical_codes(lengths).items()}
    symbols, code, length = [], 0, 0
    position = offset
    while len(symbols) < count:
        if position >= len(data):
            raise InputError("compressed archive is truncated (a Huffman stream ends early).")
        byte = data[position]
        for bit in range(7, -1, -1):
            code = (code << 1) | ((byte >> bit) & 1)
            length += 1
            if (code, length) in lookup:
                symbols.append(lookup[(code, length)])
                code = length = 0
                if len(symbols) == count:
                    break
        position += 1
    return symbols, position


def write_archive(layers: dict[str, dict], path: Path) -> int:
    """Write layers {name: {weight: ndarray, codebook: ndarray, indices: ndarray, bias}}.

    `indices` holds each weight's cluster index with -1 for pruned zeros. Returns the
    exact file size in bytes.
    """
    parts = [MAGIC, struct.pack("<HI", VERSION, len(layers))]
    for name, layer in layers.items():
        indices = layer["indices"].reshape(-1)
        positions = np.flatnonzero(indices >= 0)
        gaps = []
        for gap in np.diff(np.concatenate([[-1], positions])).tolist():
            while gap > MAX_GAP:
                gaps.append(MAX_GAP)  # a skip with no weight
                gap -= MAX_GAP
            gaps.append(gap - 1)  # symbols 0..MAX_GAP-1: skip that many, then a weight
        encoded_name = name.encode()
        shape = layer["indices"].shape
        bias = layer.get("bias")
        parts += [struct.pack("<H", len(encoded_name)), encoded_name,
                  struct.pack("<B", len(shape)), struct.pack(f"<{len(shape)}I", *shape),
                  struct.pack("<H", len(layer["codebook"])),
                  np.asarray(layer["codebook"], dtype=np.float32).tobytes(),
                  encode(gaps), encode(indices[positions].astype(np.int64).tolist())]
        if bias is None:
            parts.append(struct.pack("<I", 0))
        else:
            parts += [struct.pack("<I", len(bias)), np.asarray(bias, np.float16).tobytes()]
    data = b"".join(parts)
    atomic_write_bytes(path, data)
    return path.stat().st_size


def read_archive(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Decode an archive into {layer: {"weight": tensor, "bias": tensor or None}}."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise InputError(f"{path} is not an edgecomp compressed archive.")
    try:
        version, count = struct.unpack_from("<HI", data, 4)
        if version != VERSION:
            raise InputError(f"{path}: archive version {version} is not supported.")
        offset, layers = 10, {}
        for _ in range(count):
            (name_len,) = struct.unpack_from("<H", data, offset)
            name = data[offset + 2:offset + 2 + name_len].decode()
            offset += 2 + name_len
            (ndim,) = struct.unpack_from("<B", data, offset)
            shape = struct.unpack_from(f"<{ndim}I", data, offset + 1)
            offset += 1 + 4 * ndim
            (clusters,) = struct.unpack_from("<H", data, offset)
            codebook = np.frombuffer(data, np.float32, clusters, offset + 2)
            offset += 2 + 4 * clusters
            gaps, offset = decode(data, offset)
            indices, offset = decode(data, offset)
            weight = np.zeros(int(np.prod(shape)), np.float32)
            positions, cursor = [], -1
            for gap in gaps:
                if gap == MAX_GAP:
                    cursor += MAX_GAP
                else:
                    cursor += gap + 1
                    positions.append(cursor)
            weight[np.asarray(positions, dtype=np.int64)] = \
                codebook[np.asarray(indices, dtype=np.int64)]
            (bias_len,) = struct.unpack_from("<I", data, offset)
            offset += 4
            bias = None
            if bias_len:
                bias = torch.from_numpy(np.frombuffer(data, np.float16, bias_len, offset)
                                        .astype(np.float32))
                offset += 2 * bias_len
            layers[name] = {"weight": torch.from_numpy(weight.reshape(shape)), "bias": bias}
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is truncated or corrupt ({exc}).") from exc
    return layers
