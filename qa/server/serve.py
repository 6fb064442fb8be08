"""Running the app under uvicorn: one process sharing the engine loaded here, or N worker processes."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace

from litestar import Litestar

from qa import index as index_store
from qa.bootstrap import load_engine
from qa.server.app import create_app
from qa.server.settings import SETTINGS_ENV, Settings


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """The index and model load (or the sample index is built) before the server starts, so a problem is one line."""
    import uvicorn

    if workers == 1:
        app = create_app(settings, engine=load_engine(settings.index_dir, settings.model, settings.build_sample))
        _say(f"Serving on http://{host}:{port}/ (API docs at /api/docs)")
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
        return
    # Each worker process loads its own engine; check (or build) the index here first, so a problem
    # is one clear line and not N tracebacks.
    if index_store.exists(settings.index_dir):
        index_store.load(settings.index_dir)
    else:
        load_engine(settings.index_dir, settings.model, settings.build_sample)
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ[SETTINGS_ENV] = json.dumps({"threads": threads, "settings": replace(settings, build_sample=False).to_dict()})
    _say(f"Serving on http://{host}:{port}/ with {workers} workers (API docs at /api/docs)")
    uvicorn.run("qa.server.serve:app_from_environment", factory=True, workers=workers, host=host, port=port, log_level="info", proxy_headers=False)


def app_from_environment() -> Litestar:
    """The app in one of `qa serve --workers N`'s processes; the cores are shared out between them."""
    import torch

    handed = json.loads(os.environ[SETTINGS_ENV])
    torch.set_num_threads(handed["threads"])
    return create_app(Settings.from_dict(handed["settings"]))
