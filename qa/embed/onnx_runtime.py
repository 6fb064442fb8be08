"""The embedder on ONNX Runtime: the same model, exported once, fused (and optionally quantised to int8), run without torch.

sentence-transformers' own ONNX backend needs optimum, whose releases pin transformers 4.x (this project runs 5.x),
so the export is done here with what torch and onnxruntime ship: `torch.onnx.export` of the transformer (the tuned
model with its adapter already merged), onnxruntime's transformer optimiser (fused attention, LayerNorm, GELU), then
for onnx-int8 dynamic int8 quantisation per channel (the feed-forward outputs stay fp32). The result is cached beside the model checkpoint in a folder named by a
fingerprint of everything that went in (weights, adapter, recipe, onnxruntime version), built in a temporary folder
under a lock and renamed into place, so concurrent processes export once and a half-written export is never used.
Pooling (mean or CLS) and normalisation are sentence-transformers' own steps, redone in numpy on the token vectors,
which the index needs anyway for sentence vectors (embedding.py). Figures: docs/benchmarks.md (bench/indexing.py,
bench/latency.py, eval/backends.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.core.errors import ModelError
from qa.core.locks import make_once
from qa.core.settings import cache_root

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

# torch: sentence-transformers; onnx (the default): ONNX Runtime in fp32, the same vectors (cos >= 0.99999) with queries
# embedded ~3x faster; onnx-int8: int8 weights except the feed-forward outputs, passages ~1.5x and queries ~5x torch's
# rate, hybrid R@1/R@5 within 0.01 of fp32 on both test sets but one unanswerable letters question less declined
# (docs/benchmarks.md), so it is a choice for bulk builds, not the default.
# torch-bf16: torch with its matrix products in bfloat16 (autocast), only on a CPU with bf16 instructions (AVX512-BF16 or
# AMX; without them torch emulates bf16, slower than fp32): vectors as torch's (cos >= 0.99998), passages 2.0x torch's
# rate on an AMD EPYC with AVX512-BF16, 2.6x on a Xeon with AMX (docs/benchmarks.md).
BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")
TORCH_BACKENDS = ("torch", "torch-bf16")  # run by sentence-transformers, not exported
BF16_BACKEND = "torch-bf16"
DEFAULT_BACKEND = "onnx"
BACKEND_ENV = "QA_BACKEND"
THREADS_ENV = "OMP_NUM_THREADS"  # a session's threads: set per worker by `qa serve --workers` and per actor by Ray
LEGACY_BACKEND = "torch"  # what an index whose manifest names no backend was built with
# Bump when export, optimisation or quantisation change: old exports are then never used. 1: "onnx" was int8; 2: fp32;
# 3: exported with eager attention, which the optimiser fuses into its Attention op (recipe 2 traced torch's SDPA, which
# it could not fuse: passages 1.5x faster in fp32, 1.8x in int8, the same vectors); 4: onnx-int8 keeps the feed-forward
# output in fp32 (_after_gelu).
EXPORT_RECIPE = 4
OPSET = 17
# Texts per session run. Unlike torch, ONNX Runtime gains little from batching here: passages/s on 240 passages of the
# shared corpus, 2 cores, recipe 3: fp32 batch 1 16.6, 2 16.6, 4 16.9, 8 17.2; int8 batch 1 30.8, 2 27.7, 4 28.0
# (torch 18.9 at batch 8). Recipe 2 measured int8 8 22.5, 16 17.3, 32 12.9: small batches pad least.
BATCH_SIZE = 2
_MARKER = "export.json"  # written last: a folder without it is never used


def vector_identity(model: str, backend: str) -> str:
    """The name vectors are kept under (build checkpoints, saved questions' query vectors), so vectors of another
    backend are never mixed in; torch's is the bare model name, as before there were backends."""
    return model if backend == LEGACY_BACKEND else f"{model}@{backend}"


def default_backend() -> str:
    return os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ModelError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return backend


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Does this CPU multiply in bf16 (AVX512-BF16 or AMX)? Read from the kernel's flags, not from torch, which says
    yes wherever it can emulate bf16. Off Linux: no."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def runnable_backends() -> list[str]:
    """The backends this CPU can run: torch-bf16 only with bf16 instructions."""
    return [backend for backend in BACKENDS if backend != BF16_BACKEND or cpu_has_bf16()]


def check_bf16() -> None:
    if not cpu_has_bf16():
        raise ModelError(f"the {BF16_BACKEND} backend needs a CPU with bf16 instructions (AVX512-BF16 or AMX), which this one "
                         "lacks: torch would emulate them, slower than fp32. Use onnx-int8 for fast builds here, or onnx.")


def session_threads() -> int:
    """$OMP_NUM_THREADS when set (each of N workers or actors gets its share), else every core of this process."""
    value = os.environ.get(THREADS_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else len(os.sched_getaffinity(0))


def fingerprint(name: str, source: str, adapter: Path | None, backend: str) -> str:
    """What an export depends on. Weight files count by name, size and modification time (hashing 470 MB on every
    start would cost a second); the adapter, which is small, by content."""
    parts: dict[str, Any] = {"name": name, "backend": backend, "recipe": EXPORT_RECIPE, "onnxruntime": _onnxruntime_version()}
    folder = Path(source)
    if folder.is_dir():
        parts["source"] = str(folder.resolve())
        parts["files"] = sorted((path.name, path.stat().st_size, path.stat().st_mtime_ns)
                                for path in folder.iterdir() if path.suffix in (".safetensors", ".bin", ".json"))
    else:
        parts["source"] = source  # a hub name: whatever sentence-transformers resolves it to
    if adapter is not None:
        parts["adapter"] = hashlib.sha256(adapter.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _onnxruntime_version() -> str:
    import onnxruntime  # its own version: the distribution may be onnxruntime-gpu or -openvino

    return str(onnxruntime.__version__)


def export_dir(name: str, source: str, adapter: Path | None, backend: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(name).name)
    return cache_root() / "onnx" / f"{safe}-{backend}-{fingerprint(name, source, adapter, backend)}"


def is_complete(folder: Path) -> bool:
    return (folder / _MARKER).is_file()


def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_export(folder: Path, load: Callable[[], SentenceTransformer], backend: str,
                  log: Callable[[str], None] = _log_stderr) -> Path:
    """The export in `folder`, made from `load()`'s model on first use (about 30 s for e5-small)."""

    def export(into: Path) -> None:
        started = time.perf_counter()
        log(f"Exporting the embedding model to ONNX ({backend}) into {folder} (one-off) ...")
        _export(load(), into, quantize=backend == "onnx-int8")
        log(f"Exported in {time.perf_counter() - started:.1f} s")

    try:
        return make_once(folder, is_complete, export)
    except OSError as error:  # a read-only home, a file where the folder should be, a full disk
        raise ModelError(f"cannot write the ONNX export into {folder.parent} ({error.strerror or error}); "
                         f"set QA_CACHE_DIR to a writable folder, or {BACKEND_ENV}=torch") from error


def _export(model: SentenceTransformer, folder: Path, quantize: bool) -> None:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    transformer, pooling = model[0], _pooling_mode(model)
    bert = transformer.auto_model.eval()
    bert.set_attn_implementation("eager")  # the graph the optimiser can fuse into one Attention op per layer (recipe 3)
    config = bert.config

    class LastHiddenState(torch.nn.Module):
        """Keyword arguments in, token vectors out: BertModel's positional order changed across transformers 5."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    sample = transformer.tokenizer(["passage: een voorbeeld"], return_tensors="pt")
    raw = folder / "raw.onnx"
    dynamic = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's and the legacy exporter's warnings say nothing to a user here
        torch.onnx.export(LastHiddenState(), (sample["input_ids"], sample["attention_mask"]), str(raw),
                          input_names=["input_ids", "attention_mask"], output_names=["token_embeddings"],
                          dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "token_embeddings": dynamic},
                          opset_version=OPSET, dynamo=False)
    fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=int(config.num_attention_heads),
                                     hidden_size=int(config.hidden_size))
    optimised = folder / ("fused.onnx" if quantize else "model.onnx")
    fused.save_model_to_file(str(optimised))
    raw.unlink()
    if quantize:
        quantize_dynamic(str(optimised), str(folder / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=_after_gelu(onnx.load(str(optimised)).graph),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # the fused ops have no shape info
        optimised.unlink()
    transformer.tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    settings = {"pooling": pooling, "max_length": int(model.max_seq_length), "dimension": int(config.hidden_size),
                "pad_id": int(transformer.tokenizer.pad_token_id or 0), "prompts": dict(model.prompts or {}), "recipe": EXPORT_RECIPE, "quantized": quantize,
                "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (folder / _MARKER).write_text(json.dumps(settings, indent=1), encoding="utf-8")


def _after_gelu(graph: Any) -> list[str]:
    """The MatMuls fed by a GELU (each layer's feed-forward output), kept in fp32 by onnx-int8 (recipe 4): GELU's
    outputs have outliers that one dynamic int8 scale per tensor cannot hold. Measured on 240 passages, recipe 3 graph:
    min cos to fp32 0.9934 -> 0.9987 (mean 0.99673 -> 0.99917), at 1.38x instead of 1.62x fp32's passages/s."""
    gelu = {output for node in graph.node if "Gelu" in node.op_type for output in node.output}
    return [node.name for node in graph.node if node.op_type == "MatMul" and gelu.intersection(node.input)]


def _pooling_mode(model: SentenceTransformer) -> str:
    """mean or cls: the two poolings redone here; any other model stays on the torch backend."""
    modules = list(model)
    pooling = modules[1] if len(modules) > 1 else None
    mode = str(getattr(pooling, "pooling_mode", "") or "")
    if not mode:
        config = pooling.get_config_dict() if pooling is not None and hasattr(pooling, "get_config_dict") else {}
        mode = "mean" if config.get("pooling_mode_mean_tokens") else "cls" if config.get("pooling_mode_cls_token") else ""
    rest = [type(module).__name__ for module in modules[2:]]
    if mode not in ("mean", "cls") or any(name != "Normalize" for name in rest):  # a Dense layer would be dropped
        raise ModelError(f"the onnx backend runs models with mean or CLS pooling; this one has {modules!r}: use --backend torch")
    return mode


@dataclass
class OnnxEncoder:
    """An ONNX Runtime session and its tokenizer: token vectors, pooled sentence vectors, character offsets."""

    folder: Path

    def __post_init__(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.settings = json.loads((self.folder / _MARKER).read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = session_threads()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(self.settings["max_length"]))
        self.tokenizer.no_padding()
        self.dimension = int(self.settings["dimension"])

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Unit sentence vectors (n, dimension), and per text its token vectors and their (start, end) offsets.

        Longest first, so each batch pads to texts of about its own length."""
        import numpy as np  # here, not at the top: the CLI reads BACKENDS without paying numpy's import

        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.full((len(batch), width), int(self.settings["pad_id"]), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, : len(encodings[i].ids)] = encodings[i].ids
                mask[row, : len(encodings[i].ids)] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            if self.settings["pooling"] == "cls":
                pooled = hidden[:, 0]
            else:
                pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            for row, i in enumerate(batch):
                vectors[i] = pooled[row]
                tokens[i] = hidden[row, : len(encodings[i].ids)]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        offsets = [np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2) for encoding in encodings]
        return vectors / np.where(norms > 0, norms, 1.0), tokens, offsets
