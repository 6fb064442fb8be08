"""Opening the index for a long-running process, building the bundled sample letters on a first run.

Core, not web: `qa serve` calls it before the server starts and the app calls it at start-up, so a
missing index is one clear message either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from qa import index as index_store
from qa.engine import Engine
from qa.settings import SAMPLE_CORPUS


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_engine(index_dir: Path, model: str | None = None, build_sample: bool = True, say: Callable[[str], None] = _stderr) -> Engine:
    """Open the index; on a first run build the bundled sample letters, or say what to run."""
    if not index_store.exists(index_dir):
        if not build_sample:
            raise index_store.IndexStateError(
                f"no index in {index_dir.absolute()}. Build one with `qa index build --index {index_dir}` "
                f"(the bundled sample letters) or `qa index build PATH ... --index {index_dir}` (your own letters)."
            )
        from qa.embedding import Embedder, default_model_name
        from qa.letters import read_letters

        model = model or default_model_name()
        report = read_letters([SAMPLE_CORPUS])
        say(f"No index in {index_dir.absolute()} yet: building one from the {len(report.letters)} bundled sample letters with {model}.")
        say(f"(For your own letters: qa index build PATH ... --index {index_dir})")
        embedder = Embedder(model)
        summary = index_store.update(index_dir, embedder, add=report.letters, replace_all=True, log=say, progress_bar=True)
        say(f"Index ready: {summary.letters} letters, {summary.passages} passages in {summary.seconds:.0f} s.")
        engine = Engine(index_store.load(index_dir), embedder)  # the model is loaded already
    else:
        say(f"Loading the index in {index_dir.absolute()} and its model ...")
        engine = Engine.open(index_dir, model)
    engine.search("opwarmen", k=1)  # the first query pays for lazy initialisation, not the first user
    say(f"Ready: {len(engine.index.letters)} letters, {len(engine.index.passages)} passages, model {engine.index.model}.")
    return engine
