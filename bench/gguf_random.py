#!/usr/bin/python3
"""Writes a GGUF file of a llama-shaped model with random Q4_0 weights, for llama-bench.

Our own small writer (Python's standard library only), from the GGUF format as llama.cpp
documents it (docs/gguf.md in its tree; version 3, little-endian, 32-byte alignment):
  header     "GGUF", u32 version, u64 tensor count, u64 key/value count
  key/value  string key, u32 type, value (strings are u64 length + bytes)
  tensor     string name, u32 dimensions, u64 each (the row length first), u32 ggml type,
             u64 offset of its data from the start of the data section (aligned)
  data       each tensor's bytes, every one starting on the alignment
Every matrix is Q4_0 (ggml's 18-byte blocks: an fp16 scale, then 16 bytes of nibbles) with
random nibbles and one scale per matrix, 0.25 / sqrt(row length), as fleet-agent's probe
holds its weights; the norms are F32 ones. The vocabulary is "no_vocab" with
llama.vocab_size tokens: llama-bench draws random token ids and needs no tokenizer.

usage: gguf_random.py OUT --dim D --layers L --ffn F --heads H --kv-heads K --vocab V [--name N]
"""
import argparse
import math
import os
import struct
import sys

GGUF_VERSION = 3
ALIGNMENT = 32
# gguf value types
U32, F32, STRING = 4, 6, 8
# ggml tensor types
GGML_F32, GGML_Q4_0 = 0, 2
QK4_0, Q4_0_BYTES = 32, 18


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == U32:
        return out + struct.pack("<I", value)
    if vtype == F32:
        return out + struct.pack("<f", value)
    if vtype == STRING:
        return out + gguf_string(value)
    raise ValueError(f"value type {vtype} not written here")


def q4_0_random(rows, cols):
    if cols % QK4_0:
        raise ValueError(f"a Q4_0 row must be a multiple of {QK4_0} weights, got {cols}")
    blocks = rows * cols // QK4_0
    data = bytearray(os.urandom(blocks * Q4_0_BYTES))
    scale = struct.pack("<e", 0.25 / math.sqrt(cols))
    data[0::Q4_0_BYTES] = scale[0:1] * blocks
    data[1::Q4_0_BYTES] = scale[1:2] * blocks
    return bytes(data)


def tensors(a):
    """(name, dims with the row length first, ggml type, rows, cols) in llama.cpp's names."""
    head_dim = a.dim // a.heads
    kv_dim = head_dim * a.kv_heads
    yield ("token_embd.weight", [a.dim, a.vocab], GGML_Q4_0, a.vocab, a.dim)
    for i in range(a.layers):
        b = f"blk.{i}."
        yield (b + "attn_norm.weight", [a.dim], GGML_F32, 1, a.dim)
        yield (b + "attn_q.weight", [a.dim, a.dim], GGML_Q4_0, a.dim, a.dim)
        yield (b + "attn_k.weight", [a.dim, kv_dim], GGML_Q4_0, kv_dim, a.dim)
        yield (b + "attn_v.weight", [a.dim, kv_dim], GGML_Q4_0, kv_dim, a.dim)
        yield (b + "attn_output.weight", [a.dim, a.dim], GGML_Q4_0, a.dim, a.dim)
        yield (b + "ffn_norm.weight", [a.dim], GGML_F32, 1, a.dim)
        yield (b + "ffn_gate.weight", [a.dim, a.ffn], GGML_Q4_0, a.ffn, a.dim)
        yield (b + "ffn_up.weight", [a.dim, a.ffn], GGML_Q4_0, a.ffn, a.dim)
        yield (b + "ffn_down.weight", [a.ffn, a.dim], GGML_Q4_0, a.dim, a.ffn)
    yield ("output_norm.weight", [a.dim], GGML_F32, 1, a.dim)
    yield ("output.weight", [a.dim, a.vocab], GGML_Q4_0, a.vocab, a.dim)


def nbytes(ttype, rows, cols):
    return rows * cols * 4 if ttype == GGML_F32 else rows * cols // QK4_0 * Q4_0_BYTES


def pad(n):
    return (ALIGNMENT - n % ALIGNMENT) % ALIGNMENT


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    for name in ("dim", "layers", "ffn", "heads", "kv-heads", "vocab"):
        p.add_argument("--" + name, type=int, required=True)
    p.add_argument("--name", default="random")
    a = p.parse_args()
    if min(a.dim, a.layers, a.ffn, a.heads, a.kv_heads, a.vocab) <= 0:
        p.error("every dimension must be positive")
    if a.dim % QK4_0 or a.ffn % QK4_0 or a.dim % a.heads or a.heads % a.kv_heads:
        p.error("dim and ffn must be multiples of 32, heads must divide dim and kv heads divide heads")

    meta = [
        kv("general.architecture", STRING, "llama"),
        kv("general.name", STRING, a.name),
        kv("general.alignment", U32, ALIGNMENT),
        kv("general.file_type", U32, 2),  # LLAMA_FTYPE_MOSTLY_Q4_0
        kv("llama.context_length", U32, 2048),
        kv("llama.embedding_length", U32, a.dim),
        kv("llama.block_count", U32, a.layers),
        kv("llama.feed_forward_length", U32, a.ffn),
        kv("llama.attention.head_count", U32, a.heads),
        kv("llama.attention.head_count_kv", U32, a.kv_heads),
        kv("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
        kv("llama.rope.dimension_count", U32, a.dim // a.heads),
        kv("llama.vocab_size", U32, a.vocab),
        kv("tokenizer.ggml.model", STRING, "no_vocab"),
    ]
    plan = list(tensors(a))
    infos, offset = [], 0
    for name, dims, ttype, rows, cols in plan:
        infos.append(gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) +
                     struct.pack("<I", ttype) + struct.pack("<Q", offset))
        offset += nbytes(ttype, rows, cols)
        offset += pad(offset)
    head = b"GGUF" + struct.pack("<IQQ", GGUF_VERSION, len(plan), len(meta)) + b"".join(meta) + b"".join(infos)
    tmp = a.out + ".part"
    with open(tmp, "wb") as f:
        f.write(head + b"\0" * pad(len(head)))
        for name, dims, ttype, rows, cols in plan:
            data = struct.pack("<f", 1.0) * (rows * cols) if ttype == GGML_F32 else q4_0_random(rows, cols)
            f.write(data + b"\0" * pad(len(data)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, a.out)
    print(f"{a.out}: {len(plan)} tensors, {offset / 2**20:.0f} MiB of weights", file=sys.stderr)


if __name__ == "__main__":
    main()
