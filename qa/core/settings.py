"""Where things are by default; environment variables override."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLE_CORPUS = Path(__file__).parents[1] / "sample"  # qa/sample, the bundled letters
INDEX_ENV = "QA_INDEX"


def default_index_dir() -> Path:
    return Path(os.environ.get(INDEX_ENV) or "index")
