"""Embedding a build on Ray: the batches of qa/embed/batches.py on a pool of actors, one per CPU, or one per GPU.

Each actor loads the project's own embedder (qa/embed/embedding.py: the offline e5 checkpoint, no download) once
and embeds whole batches with the same code as a build in one process, so the vectors are the same (to float
rounding) and the batches' checkpoints are interchangeable: a build interrupted on Ray resumes locally, and
the other way round. The driver (the `qa index build` process) saves each batch as it comes back and writes
the index; the actors need no access to its folder.

Plain actors rather than `ray.data.map_batches`: a batch is the unit that is checkpointed, so each result
must come back whole and under its key as soon as it is done, and its ragged sentence spans need no
conversion to Arrow. `ray.util.ActorPool` hands the next batch to whichever actor is free.

Without an address a local cluster is started for the build and stopped after it, with its files in a
temporary folder of its own and a token in the environment (nothing is written to ~/.ray or /tmp/ray).
With an address (`HOST:PORT` of a head node, `ray://HOST:PORT` for Ray Client, or `auto`), the cluster's
own settings apply, including `RAY_AUTH_MODE`/`RAY_AUTH_TOKEN`; every node needs this package installed
(`pip install 'kamerbrieven-qa[ray]'`), and the embedding model converts itself once per node (offline).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from qa.core.errors import QAError
from qa.embed.batches import ENCODE_BATCH, Batch, SpanVectors

RAY_REQUIREMENT = "ray[data]==2.60.0"  # the version tested (constraints.txt); the `ray` extra of pyproject.toml
CONNECT_SECONDS = 5.0  # to reach a head node's port; ray.init itself would wait for minutes on a wrong address
ACTOR_RESTARTS = 2  # an actor that dies (out of memory, a lost node) is restarted and its batch retried this often
LOCAL = "local"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds this qa package
SOCKET_PATH_MAX = 107  # bytes of an AF_UNIX path (Linux); Ray puts its sockets under its temporary folder ...
RAY_SOCKET_SUFFIX = len("/session_2026-12-01_18-59-31_464370_1234567/sockets/plasma_store")  # ... this deep

_ADDRESS = re.compile(r"^(?:ray://)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})$")


class ClusterError(QAError):
    """Ray is missing, or the cluster cannot be reached or used; nothing was changed."""


def check_address(address: str | None) -> str | None:
    """None (or 'local') for a local cluster, else the address as given; refuses anything that is not one."""
    if address is None or address == LOCAL:
        return None
    if address == "auto":
        return address
    match = _ADDRESS.match(address)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ClusterError(
            f"--ray {address!r} is not a Ray address: give HOST:PORT of the head node, ray://HOST:PORT or auto "
            "(or nothing, for a local cluster; put --ray after the letter folders, or write --ray=ADDRESS)"
        )
    return address


def _reachable(address: str) -> None:
    match = _ADDRESS.match(address)
    if match is None:  # 'auto': Ray finds the cluster itself
        return
    host, port = match["host"].strip("[]"), int(match["port"])
    try:
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({error.strerror or error}); is `ray start --head` running there?") from error


def import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ClusterError(f"--ray needs Ray: pip install 'kamerbrieven-qa[ray]' (or {RAY_REQUIREMENT!r})") from error
    return ray


class RayRunner:
    """A `qa.embed.batches.Runner` on Ray. Use it as a context manager: entering starts or joins the cluster and the
    actors (each loads the model), leaving stops them (and a local cluster)."""

    def __init__(self, model: str, address: str | None = None, num_cpus: int | None = None, temp_dir: Path | None = None,
                 log: Callable[[str], None] = lambda message: None) -> None:
        self.model = model
        self.address = check_address(address)
        self.num_cpus = num_cpus or len(os.sched_getaffinity(0))
        self.temp_dir = temp_dir
        self.log = log
        self.actors: list[Any] = []
        self.device = "cpu"
        self._ray: Any = None
        self._own_temp: Path | None = None
        self._environ: dict[str, str | None] = {}

    def __enter__(self) -> RayRunner:
        if self.address is None:
            # A cluster of our own: token authentication with a token that lives only in this process and its
            # children (Ray would otherwise write one to ~/.ray/auth_token). Ray reads these when imported.
            if "RAY_AUTH_MODE" not in os.environ:
                self._setenv("RAY_AUTH_MODE", "token")
            if os.environ["RAY_AUTH_MODE"] == "token" and not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
                self._setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
        imported = "ray" in sys.modules
        try:
            ray = import_ray()
            if imported and self._environ:
                from ray._raylet import Config  # imported earlier in this process: make it read the settings again

                Config.initialize("")
            if self.address is not None:
                _reachable(self.address)
            self._ray = ray
            self._start(ray)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, ray: Any) -> None:
        import logging

        if self.address is None:
            # All of the local cluster's files (sockets, logs, spilled objects) in a temporary folder of its own.
            if self.temp_dir is None:
                self._own_temp = self.temp_dir = Path(tempfile.mkdtemp(prefix="qa-ray-"))
            if len(str(self.temp_dir)) + RAY_SOCKET_SUFFIX > SOCKET_PATH_MAX:
                raise ClusterError(f"Ray's socket paths would be too long under {self.temp_dir}; set TMPDIR to a folder of at most "
                                   f"{SOCKET_PATH_MAX - RAY_SOCKET_SUFFIX - len('/qa-ray-12345678')} characters, e.g. /tmp")
            # The workers import this very package (a worktree's, not another installed copy): they inherit the environment.
            self._setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])))
            ray.init(address=LOCAL, num_cpus=self.num_cpus, _temp_dir=str(self.temp_dir), include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, configure_logging=False)
            where = f"a local Ray cluster of {self.num_cpus} CPUs"
        else:
            try:
                # This package's code is shipped with the job, so the workers run the driver's version of it.
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING, configure_logging=False,
                         runtime_env={"py_modules": [str(PACKAGE_ROOT / "qa")]})
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as error:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise ClusterError(f"cannot join the Ray cluster at {self.address}: {reason} (a cluster with token authentication "
                                   "needs its token in RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, and RAY_AUTH_MODE=token)") from error
            where = f"the Ray cluster at {self.address}"
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        if gpus:
            self.device, count, options = "cuda", gpus, {"num_gpus": 1, "num_cpus": 1}
        elif cpus:
            count, options = cpus, {"num_cpus": 1}
        else:
            raise ClusterError(f"{where} has no CPU or GPU to run an embedder on")
        actor = ray.remote(max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS)(_EmbedActor).options(**options)
        self.actors = [actor.remote(self.model, self.device) for _ in range(count)]
        try:
            described = ray.get([a.describe.remote() for a in self.actors])  # each has loaded the model, or raised
        except ray.exceptions.RayError as error:
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise ClusterError(f"the Ray workers could not load the embedding model {self.model!r}: {reason}") from error
        if any(info[0] != self.model for info in described):
            raise ClusterError(f"the Ray workers loaded {described[0][0]!r}, not {self.model!r}")
        self.log(f"embedding on {where}: {count} actors, one per {'GPU' if gpus else 'CPU'} ({self.device})")

    def run(self, batches: Sequence[Batch]) -> Iterator[tuple[Batch, np.ndarray, SpanVectors]]:
        from ray.util import ActorPool

        if not batches:
            return
        pool = ActorPool(self.actors)
        results = pool.map_unordered(lambda actor, i: actor.embed.remote(i, batches[i].texts, batches[i].spans), range(len(batches)))
        for i, vectors, span_vectors in results:
            yield batches[i], vectors, span_vectors

    def _setenv(self, name: str, value: str) -> None:
        self._environ.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        ray, self._ray = self._ray, None
        if ray is not None and ray.is_initialized():
            ray.shutdown()
        if self._own_temp is not None:
            shutil.rmtree(self._own_temp, ignore_errors=True)
            self._own_temp = None
        for name, value in self._environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._environ.clear()


class _EmbedActor:
    """One model in one worker process (made a Ray actor by RayRunner)."""

    def __init__(self, model: str, device: str) -> None:
        from qa.embed.embedding import Embedder

        self.embedder = Embedder(model, device=device)

    def describe(self) -> tuple[str, int]:
        return self.embedder.name, int(self.embedder.dimension)

    def embed(self, i: int, texts: Sequence[str], spans: Sequence[np.ndarray]) -> tuple[int, np.ndarray, SpanVectors]:
        vectors, span_vectors = self.embedder.embed_passages_with_spans(list(texts), list(spans), ENCODE_BATCH)
        return i, vectors, span_vectors
