"""The project's tuned models: low-rank adapters (train/lora.py) merged into the bundled e5-small when it loads.

An adapter file holds, for each adapted linear layer, A (rank x in) and B (out x rank) in fp16 and its settings in
the file's metadata; merging adds alpha/rank * B·A to the layer's weight once, so a tuned model runs exactly as
fast as the plain one. Extra tensors in the file (a classifier head) are returned to the caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ADAPTER_DIR = Path(__file__).parents[1] / "models"


def merge(model: Any, path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Add the adapters of `path` into `model`'s weights (a torch module); returns the other tensors and the metadata."""
    import torch
    from safetensors import safe_open

    extra: dict[str, Any] = {}
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        scale = float(metadata["alpha"]) / float(metadata["rank"])
        keys = list(handle.keys())
        for key in keys:
            if key.endswith(".lora_A"):
                name = key.removesuffix(".lora_A")
                linear = model.get_submodule(name)
                a, b = handle.get_tensor(key).float(), handle.get_tensor(f"{name}.lora_B").float()
                with torch.no_grad():
                    linear.weight += (scale * (b @ a)).to(linear.weight.dtype)
            elif not key.endswith(".lora_B"):
                extra[key] = handle.get_tensor(key)
    return extra, metadata
