"""Where things are by default; environment variables override."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLE_CORPUS = Path(__file__).parents[1] / "sample"  # qa/sample, the bundled letters
INDEX_ENV = "QA_INDEX"


def default_index_dir() -> Path:
    return Path(os.environ.get(INDEX_ENV) or "index")


def cache_root() -> Path:
    """The project's cache folder (the converted e5 checkpoint, ONNX exports): QA_CACHE_DIR, else
    XDG_CACHE_HOME/kamerbrieven-qa, else ~/.cache/kamerbrieven-qa."""
    if os.environ.get("QA_CACHE_DIR"):
        return Path(os.environ["QA_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "kamerbrieven-qa"
    return Path.home() / ".cache" / "kamerbrieven-qa"
