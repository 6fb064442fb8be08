"""Embedding on Ray against one process: the same build of the shared corpus with a local Ray cluster and without.

    python bench/ray_embedding.py                      # the shared corpus (~530 passages): ~10 minutes on 2 cores
    python bench/ray_embedding.py --letters 40         # its first 40 letters
    python bench/ray_embedding.py --quick              # 3 letters, the test suite's mode

The builds are `qa index build` without the command line (qa/index/local/ `update`), in this process, with the model
loaded once before: one process embeds with torch's threads on every core (then again with one thread, what a
core does alone); `--ray` starts a local cluster with one
actor per core (one torch thread each), every actor loading the same offline model, and hands them the same batches
(qa/embed/batches.py). The embedding phase is timed from the build's "embedding" line to its "writing" line; Ray's start-up
(the cluster and the actors' model loading) is timed apart. Then the two indexes are compared: the same passages,
passage vectors and in-context sentence vectors (max absolute difference).

On one machine Ray can only lose: the same cores do the same matrix products, plus a scheduler, and each actor holds
its own copy of the model. What it buys is that the same code runs on a cluster of N machines (docs/deployment.md).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import SHARED_CORPUS, parser, peak_rss_mb, table, write_section  # noqa: E402
from qa.core.settings import SAMPLE_CORPUS  # noqa: E402
from qa.embed.cluster import RayRunner  # noqa: E402
from qa.embed.embedding import Embedder, default_model_name  # noqa: E402
from qa.index import local as index_store  # noqa: E402
from qa.ingest.reading import read_letters  # noqa: E402


def timed_build(folder: Path, embedder: Embedder, letters: list, runner: object = None) -> tuple[index_store.UpdateSummary, float]:
    """The build, and the seconds of its embedding phase."""
    marks: dict[str, float] = {}

    def log(message: str) -> None:
        marks.setdefault(message.split()[0], time.perf_counter())

    summary = index_store.update(folder, embedder, add=letters, replace_all=True, log=log, runner=runner)  # type: ignore[arg-type]
    return summary, marks["writing"] - marks["embedding"]


def _actor_peak_rss_mb(actor: object) -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


MODEL_RSS = """
import resource, sys
from qa.embed.embedding import Embedder
embedder = Embedder(sys.argv[1])
embedder.embed_query("Wanneer moet de afbouw afgerond zijn?")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def model_rss_mb(model: str) -> float:
    """Peak RSS of a fresh process that loads the model and embeds one question: what every server process and actor holds at least."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", MODEL_RSS, model], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    return float(result.stdout.split()[-1])


def compare(a_folder: Path, b_folder: Path) -> tuple[bool, float, float]:
    a, b = index_store.load(a_folder), index_store.load(b_folder)
    same_passages = [(p.id, p.start, p.end) for p in a.passages] == [(p.id, p.start, p.end) for p in b.passages]
    rows = list(range(len(a.passages)))
    passage = float(np.abs(a.passage_vectors(rows) - b.passage_vectors(rows)).max()) if rows else 0.0
    same_spans = np.array_equal(a.sentence_spans, b.sentence_spans)
    sentence = float(np.abs(a.sentence_vectors.astype(np.float32) - b.sentence_vectors.astype(np.float32)).max()) if same_spans else float("inf")
    return same_passages and same_spans, passage, sentence


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--corpus", type=Path, default=SHARED_CORPUS, help="Letters to build from [default: the shared corpus].")
    arguments.add_argument("--letters", type=int, default=None, help="Only the first N letters.")
    arguments.add_argument("--model", default=None, help="Embedding model [default: $QA_MODEL or multilingual-e5-small].")
    args = arguments.parse_args()
    if args.quick:
        corpus, limit = [SAMPLE_CORPUS / "letters" / name for name in ("kst-27925-781.txt", "kst-33279-1.txt", "kst-34700-6.txt")], None
    else:
        corpus, limit = [args.corpus], args.letters
    letters = read_letters(corpus).letters[:limit]

    embedder = Embedder(args.model or default_model_name(), backend="torch")  # torch: its thread count is what the one-core figure sets
    embedder.embed_passages(["opwarmen"] * 32)  # first-call costs outside the timings
    workspace = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    load_before = os.getloadavg()[0]
    try:
        single, single_seconds = timed_build(workspace / "single", embedder, letters)
        single_rss = peak_rss_mb()
        load_one = os.getloadavg()[0]
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # what one core does, for the per-core figure
        try:
            _, one_thread_seconds = timed_build(workspace / "one-thread", embedder, letters)
        finally:
            torch.set_num_threads(threads)
        load_between = os.getloadavg()[0]
        started = time.perf_counter()
        with RayRunner(embedder.name, backend=embedder.backend) as runner:
            import ray

            startup = time.perf_counter() - started
            actors, device = len(runner.actors), runner.device
            distributed, ray_seconds = timed_build(workspace / "ray", embedder, letters, runner)
            actor_rss = max(ray.get([actor.__ray_call__.remote(_actor_peak_rss_mb) for actor in runner.actors]))
        load_after = os.getloadavg()[0]
        same, passage_difference, sentence_difference = compare(workspace / "single", workspace / "ray")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)

    cores = RayRunner(embedder.name).num_cpus
    model_rss = model_rss_mb(embedder.name)
    passages = single.passages
    rows = [
        ("one process (torch threads on every core)", f"{passages:,}", f"{single_seconds:,.1f} s", f"{passages / single_seconds:.2f}",
         f"{passages / single_seconds / cores:.2f}", "–", f"{single_rss:,.0f} MB (the process)", f"{load_before:.1f}"),
        ("one process, one torch thread", f"{passages:,}", f"{one_thread_seconds:,.1f} s", f"{passages / one_thread_seconds:.2f}",
         f"{passages / one_thread_seconds:.2f}", "–", "", f"{load_one:.1f}"),
        (f"local Ray cluster, {actors} actors ({device}, one thread each)", f"{distributed.passages:,}", f"{ray_seconds:,.1f} s",
         f"{passages / ray_seconds:.2f}", f"{passages / ray_seconds / actors:.2f}", f"{startup:.1f} s", f"{actor_rss:,.0f} MB (each actor)",
         f"{load_between:.1f}"),
    ]
    headers = ["build", "passages", "embedding", "passages/s", "per core", "Ray start-up", "peak RSS", "load before"]
    print(table(headers, rows))
    print(f"model alone: {model_rss:,.0f} MB")
    print(f"same passages and spans: {same}; max |difference|: passage vectors {passage_difference:.2e}, sentence vectors {sentence_difference:.2e}")
    assert same and passage_difference < 1e-4 and sentence_difference < 4e-3, "the Ray build differs from the single-process build"
    body = (
        f"{len(letters)} letters ({'3 sample letters' if args.quick else str(args.corpus.name) + (f', the first {limit}' if limit else '')}), "
        f"model {embedder.name}, {cores} cores, `python bench/ray_embedding.py{' --quick' if args.quick else ''}`. "
        "Embedding phase only (the build's \"embedding\" to \"writing\" lines); Ray's start-up is the local cluster and its actors "
        "loading the model, before the build.\n\n"
        + table(headers, rows)
        + f"\n\nThe two indexes: the same passages and sentence spans; passage vectors differ by at most {passage_difference:.1e}, "
        f"sentence vectors (float16) by at most {sentence_difference:.1e}. The load average (1 min) is the machine's before each "
        f"build (other work shares it); {load_after:.1f} after the last. A fresh process that loads the model and embeds one "
        f"question holds {model_rss:,.0f} MB (peak RSS): what every actor and every `qa serve` process needs at least.\n\n"
        "On a quiet machine Ray cannot gain: the same cores do the same matrix products, with a scheduler and one model per "
        "actor on top. On a busy one it can come out ahead, as it may have here: torch's threads within one matrix product "
        "wait for the slowest of them, and on cores shared with other work one of them is often descheduled, while one-thread "
        "actors do not wait for each other. Either way the point is that the same build runs on a cluster, where throughput "
        "grows with the actors (one per core or GPU of every node; [deployment.md](deployment.md)), and that each actor holds "
        "its own model, so memory grows with them too."
    )
    write_section(args.out, "ray_embedding", "Embedding on Ray against one process", body)


if __name__ == "__main__":
    main()
