"""Opening the index for a long-running process, building the bundled sample letters on a first run.

Core, not web: `qa serve` calls it before the server starts and the app calls it at start-up, so a
missing index is one clear message either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from qa.answer.engine import Engine
from qa.core.settings import SAMPLE_CORPUS
from qa.index import stores as store


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_engine(where: Path | store.Location, model: str | None = None, build_sample: bool = True,
                say: Callable[[str], None] = _stderr) -> Engine:
    """Open the index (a local folder or any store); on a first run build the bundled sample letters, or say what to run."""
    location = store.Location("local", where) if isinstance(where, Path) else where
    index_dir = location.data_dir
    option = f"--index {index_dir}" if location.kind == "local" else f"--store {location}"
    shown = index_dir.absolute() if location.kind == "local" else location
    if not store.exists(location):
        if not build_sample:
            raise store.IndexStateError(
                f"no index in {shown}. Build one with `qa index build {option}` "
                f"(the bundled sample letters) or `qa index build PATH ... {option}` (your own letters)."
            )
        from qa.embed.embedding import Embedder, default_model_name
        from qa.ingest.reading import read_letters

        model = model or default_model_name()
        report = read_letters([SAMPLE_CORPUS])
        say(f"No index in {shown} yet: building one from the {len(report.letters)} bundled sample letters with {model}.")
        say(f"(For your own letters: qa index build PATH ... {option})")
        embedder = Embedder(model)
        summary = store.update(location, embedder, add=report.letters, replace_all=True, log=say, progress_bar=True)
        say(f"Index ready: {summary.letters} letters, {summary.passages} passages in {summary.seconds:.0f} s.")
        engine = Engine(store.load(location), embedder)  # the model is loaded already
    else:
        say(f"Loading the index in {shown} and its model ...")
        engine = Engine.open(location, model)
    engine.search("opwarmen", k=1)  # the first query pays for lazy initialisation, not the first user
    say(f"Ready: {len(engine.index.letters)} letters, {len(engine.index.passages)} passages, model {engine.index.model}.")
    return engine
