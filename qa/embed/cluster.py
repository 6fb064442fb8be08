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

Memory decides the number of actors, not only the CPUs: each holds one copy of the model (`ACTOR_MEMORY`), and on a
machine that other work shares, one actor per CPU could not all load it. A local cluster gets as many actors as
MemAvailable (or `$QA_RAY_MEMORY`, if lower) holds beside the driver and a small object store, and Ray is told
these sizes; when not even one fits, the build stops with one line before Ray starts. An actor that dies is not
restarted: the build stops with one line, and its finished batches are kept for the next run.
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

from qa.core.errors import QAError, SettingsError
from qa.embed.batches import ENCODE_BATCH, Batch, SpanVectors

RAY_REQUIREMENT = "ray[data]==2.60.0"  # the version tested (constraints.txt); the `ray` extra of pyproject.toml
CONNECT_SECONDS = 5.0  # to reach a head node's port; ray.init itself would wait for minutes on a wrong address
# An actor that dies (out of memory, a lost node) is not restarted, nor its batch retried: on a machine short of
# memory a restarted actor is killed again while loading the model, a storm of restarts instead of an answer.
ACTOR_RESTARTS = 0
MB = 1024**2
# What one actor may hold: the measured peak RSS of an actor was 1,344 MB with multilingual-e5-small loaded (of it
# ~340 MB torch's and transformers' imports, ~300 MB the XLM-R tokenizer, 449 MB the float32 weights: one copy) and
# 1,536-1,633 MB after embedding tests/integration/test_cluster.py's letters, 1,705 MB after the shared corpus
# (bench/ray_embedding.py; docs/reliability.md, "Ray build under memory pressure"). Rounded up: longer passages.
ACTOR_MEMORY = 2048 * MB
# Ray's shared-memory object store holds the batches in flight: a batch is at most 256 passages (BATCH_PASSAGES),
# its texts < 0.5 MB and its vectors ~4 MB (256 x 384 float32, and as many sentence vectors as sentences: ~10 per
# passage); Ray's default is 30% of the memory (~7 GB here), taken from what the actors need.
OBJECT_STORE_MEMORY = 256 * MB
# Beside the actors and the object store: the driver (letters, passages, the index being written; it loads no model
# with --ray) and Ray's own processes (GCS, raylet, dashboard head and agents, log monitor, autoscaler monitor):
# measured 174 MB and ~510 MB RSS for tests/integration/test_cluster.py's letters; a larger corpus adds its vectors to the driver.
DRIVER_MEMORY = 1024 * MB
# How long ray.init waits for its GCS server to come up; Ray's 30 s ran out once on this 2-core machine with a load
# of 5 and 8 GB taken by other work (tests/integration/test_cluster.py, "Timed out waiting for file .../gcs_server_port_...").
GCS_START_SECONDS = 120
MEMORY_ENV = "QA_RAY_MEMORY"  # caps the memory a local Ray build assumes it has (bytes, or with K/M/G), e.g. 3G
LOCAL = "local"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds this qa package
SOCKET_PATH_MAX = 107  # bytes of an AF_UNIX path (Linux); Ray puts its sockets under its temporary folder ...
RAY_SOCKET_SUFFIX = len("/session_2026-12-01_18-59-31_464370_1234567/sockets/plasma_store")  # ... this deep

_ADDRESS = re.compile(r"^(?:ray://)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})$")


class ClusterError(QAError):
    """Ray is missing, or the cluster cannot be reached or used; nothing was changed."""


def actor_count(available: int, slots: int, actor: int = ACTOR_MEMORY, reserved: int = DRIVER_MEMORY + OBJECT_STORE_MEMORY) -> int:
    """How many actors (one per CPU or GPU, at most `slots`) fit in `available` bytes beside `reserved`; 0: none does."""
    return max(0, min(slots, (available - reserved) // actor))


def available_memory() -> int:
    """The bytes a local build may use: MemAvailable of /proc/meminfo (what can be had without swapping), or
    $QA_RAY_MEMORY when that is lower."""
    available = _meminfo_available()
    cap = os.environ.get(MEMORY_ENV)
    return available if not cap else min(available, parse_bytes(cap))


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")  # no /proc: free pages, a lower bound


def parse_bytes(text: str) -> int:
    """'3G', '512M', '2048K' or plain bytes (powers of 1024), as $QA_RAY_MEMORY is written."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if match is None:
        raise SettingsError(f"{MEMORY_ENV}={text!r}: expected bytes or a size like 3G or 512M")
    return int(float(match[1]) * 1024 ** " KMGT".index(match[2].upper() or " "))


def memory_error(available: int, where: str, reserved: int = DRIVER_MEMORY + OBJECT_STORE_MEMORY) -> ClusterError:
    """The one line for a machine (or cluster) without memory for even one actor."""
    beside = f" beside {_gb(reserved)} for the driver and Ray's object store" if reserved else ""
    return ClusterError(
        f"not enough memory for a Ray build on {where}: {_gb(available)} available, one actor needs {_gb(ACTOR_MEMORY)} "
        f"(one copy of the model){beside}; free memory, raise ${MEMORY_ENV} if it is set, or build without --ray "
        "(one copy of the model, in this process)"
    )


def _gb(size: int) -> str:
    return f"{size / 1024**3:.1f} GB"


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
                 log: Callable[[str], None] = lambda message: None, backend: str | None = None) -> None:
        from qa.embed import onnx_runtime

        self.model = model
        self.backend = onnx_runtime.check_backend(backend or onnx_runtime.default_backend())
        self.address = check_address(address)
        self.num_cpus = num_cpus or len(os.sched_getaffinity(0))  # of a local cluster, at most: memory may allow fewer
        self.temp_dir = temp_dir
        self.log = log
        self.actors: list[Any] = []
        self.device = "cpu"
        self.dimension = 0  # the model's, as the actors report it
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
            if "RAY_gcs_server_port_wait_time_s" not in os.environ:
                self._setenv("RAY_gcs_server_port_wait_time_s", str(GCS_START_SECONDS))
            available = available_memory()
            count = actor_count(available, self.num_cpus)  # before Ray starts: a machine short of memory is one line
            if count < 1:
                raise memory_error(available, "this machine")
            # Ray is told the sizes: its object store (default 30% of the memory) and the memory its actors reserve.
            ray.init(address=LOCAL, num_cpus=count, object_store_memory=OBJECT_STORE_MEMORY, _memory=count * ACTOR_MEMORY,
                     _temp_dir=str(self.temp_dir), include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, configure_logging=False)
            where = f"a local Ray cluster of {count} CPU{'s' if count != 1 else ''}"
            if count < self.num_cpus:
                where += f" (of {self.num_cpus}: {_gb(available)} available, {_gb(ACTOR_MEMORY)} per actor)"
        else:
            try:
                # This package's code is shipped with the job, so the workers run the driver's version of it.
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING, configure_logging=False,
                         runtime_env={"py_modules": [str(PACKAGE_ROOT / "qa")]})
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as error:
                raise ClusterError(f"cannot join the Ray cluster at {self.address}: {_reason(error, first=True)} (a cluster with token "
                                   "authentication needs its token in RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, and RAY_AUTH_MODE=token)") from error
            where = f"the Ray cluster at {self.address}"
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        if gpus:
            self.device, slots, options = "cuda", gpus, {"num_gpus": 1, "num_cpus": 1}
        elif cpus:
            slots, options = cpus, {"num_cpus": 1}
        else:
            raise ClusterError(f"{where} has no CPU or GPU to run an embedder on")
        memory = int(ray.available_resources().get("memory", 0))  # what the nodes let actors reserve now, all together
        count = actor_count(memory, slots, reserved=0)  # a local cluster's is what was computed above
        if count < 1:
            raise memory_error(memory, where, reserved=0)
        # Each actor reserves its model's memory, so Ray places actors only where that is free.
        actor = ray.remote(max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS)(_EmbedActor).options(memory=ACTOR_MEMORY, **options)
        self.actors = [actor.remote(self.model, self.device, self.backend) for _ in range(count)]
        try:
            described = ray.get([a.describe.remote() for a in self.actors])  # each has loaded the model, or raised
        except ray.exceptions.RayError as error:
            raise ClusterError(f"the Ray workers could not load the embedding model {self.model!r}: {_reason(error)}") from error
        if any(info[0] != self.model for info in described):
            raise ClusterError(f"the Ray workers loaded {described[0][0]!r}, not {self.model!r}")
        self.dimension = described[0][1]
        self.log(f"embedding on {where}: {count} actor{'s' if count != 1 else ''}, one per {'GPU' if gpus else 'CPU'} "
                 f"({self.device}, {_gb(ACTOR_MEMORY)} each)")

    def run(self, batches: Sequence[Batch]) -> Iterator[tuple[Batch, np.ndarray, SpanVectors]]:
        from ray.util import ActorPool

        if not batches:
            return
        ray = self._ray
        pool = ActorPool(self.actors)
        results = pool.map_unordered(lambda actor, i: actor.embed.remote(i, batches[i].texts, batches[i].spans), range(len(batches)))
        done = 0
        try:
            for i, vectors, span_vectors in results:
                done += 1
                yield batches[i], vectors, span_vectors
        except (ray.exceptions.RayActorError, ray.exceptions.OutOfMemoryError) as error:
            # Not restarted (ACTOR_RESTARTS): one failure, said once; the batches done so far are saved already.
            raise ClusterError(f"a Ray actor died while embedding, after {done} of {len(batches)} batches: {_reason(error)}; "
                               "the finished batches are kept: run the same command again to embed the rest") from error

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


def _reason(error: BaseException, first: bool = False) -> str:
    """One line of a Ray error: the worker's exit detail when Ray gives one (why an actor died: the memory monitor,
    a signal), else its first or last line."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    for line in lines:
        if "exit detail:" in line.lower():
            return line[line.lower().index("exit detail:") + len("exit detail:"):].strip()
    if not lines:
        return type(error).__name__
    return lines[0] if first else lines[-1]


class _EmbedActor:
    """One model in one worker process (made a Ray actor by RayRunner)."""

    def __init__(self, model: str, device: str, backend: str) -> None:
        from qa.embed.embedding import Embedder

        self.embedder = Embedder(model, device=device, backend=backend)

    def describe(self) -> tuple[str, int]:
        return self.embedder.name, int(self.embedder.dimension)

    def embed(self, i: int, texts: Sequence[str], spans: Sequence[np.ndarray]) -> tuple[int, np.ndarray, SpanVectors]:
        vectors, span_vectors = self.embedder.embed_passages_with_spans(list(texts), list(spans), ENCODE_BATCH)
        return i, vectors, span_vectors
