"""Embedding backends side by side: torch fp32 and bf16, ONNX Runtime fp32 and int8, on the same texts in one run.

    python bench/backends.py               # 400 passages of the shared corpus's letters, 100 questions
    python bench/backends.py --quick       # 12 passages, 5 questions (the test suite's mode)

Passages go through `embed_passages_with_spans`, what an index build runs (passage and sentence vectors in one
pass), each backend at its own batch size; queries through the uncached `embed_query`. The backends take turns
per round (best of two rounds), so a busy moment of the machine hurts all of them alike. torch-bf16 runs only on a CPU
with bf16 instructions (`runnable_backends`). Quality on the question
sets is eval/kamervragen_split.py --backend and `qa eval --part test` on an index built with --backend.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SHARED_CORPUS, bench_questions, parser, table, write_section  # noqa: E402
from qa.core.settings import SAMPLE_CORPUS  # noqa: E402
from qa.embed.embedding import Embedder, default_model_name  # noqa: E402
from qa.embed.onnx_runtime import BF16_BACKEND, runnable_backends  # noqa: E402
from qa.ingest.chunking import chunk_letter  # noqa: E402
from qa.ingest.reading import read_letters  # noqa: E402

ROUNDS = 2
GEMM_SIZE = 1536  # the fp32 matrix product that measures this machine's ceiling (about the shape of a batch's FFN)


def encoder_flops(tokens: int, hidden: int, layers: int) -> float:
    """Multiply-adds x 2 of one BERT-style encoder pass over `tokens` tokens: per layer the four attention projections
    (4 h^2), the feed-forward (8 h^2, inner size 4 h) per token, and the two attention products (2 L h)."""
    return 2.0 * layers * tokens * (12 * hidden * hidden + 2 * tokens * hidden)


def gemm_ceiling(rounds: int = 5) -> float:
    """GFLOP/s of torch's fp32 matrix product on all cores: the most an fp32 encoder can reach here."""
    import torch

    a, b = torch.randn(GEMM_SIZE, GEMM_SIZE), torch.randn(GEMM_SIZE, GEMM_SIZE)
    torch.matmul(a, b)
    best = min(_timed(lambda: torch.matmul(a, b)) for _ in range(rounds))
    return 2 * GEMM_SIZE**3 / best / 1e9


def _timed(work) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def passages(limit: int) -> tuple[list[str], list[np.ndarray]]:
    folder = SHARED_CORPUS / "letters" if (SHARED_CORPUS / "letters").is_dir() else SAMPLE_CORPUS
    texts: list[str] = []
    spans: list[np.ndarray] = []
    for letter in read_letters([folder]).letters:
        for passage in chunk_letter(letter):
            texts.append(passage.text)
            spans.append(np.asarray([(start - passage.start, end - passage.start) for start, end in passage.sentences()], dtype=np.int64).reshape(-1, 2))
            if len(texts) == limit:
                return texts, spans
    return texts, spans


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--model", default=None, help="Embedding model [default: $QA_MODEL or multilingual-e5-small].")
    args = arguments.parse_args()
    texts, spans = passages(12 if args.quick else 400)
    questions = bench_questions(5 if args.quick else 100)
    name = args.model or default_model_name()
    loaded, embedders = {}, {}
    backends = runnable_backends()
    for backend in backends:
        started = time.perf_counter()
        embedders[backend] = Embedder(name, backend=backend)
        loaded[backend] = time.perf_counter() - started
        embedders[backend].embed_passages_with_spans(texts[:4], spans[:4])  # first-call costs outside the timings
    rates: dict[str, float] = dict.fromkeys(backends, 0.0)
    queries: dict[str, list[float]] = {backend: [] for backend in backends}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(ROUNDS):
        for backend, embedder in embedders.items():
            started = time.perf_counter()
            vectors[backend], _ = embedder.embed_passages_with_spans(texts, spans)
            rates[backend] = max(rates[backend], len(texts) / (time.perf_counter() - started))
            for question in questions:
                started = time.perf_counter()
                embedder._embed_query(question)  # uncached
                queries[backend].append((time.perf_counter() - started) * 1000)
    torch_model = embedders["torch"].model
    assert torch_model is not None
    config = torch_model[0].auto_model.config
    lengths = [len(ids) for ids in torch_model[0].tokenizer([embedders["torch"].passage_prefix + text for text in texts], truncation=True,
                                                            max_length=embedders["torch"].max_length)["input_ids"]]
    gflop = sum(encoder_flops(n, int(config.hidden_size), int(config.num_hidden_layers)) for n in lengths) / len(lengths) / 1e9
    ceiling = gemm_ceiling()
    rows = []
    for backend in backends:
        p50 = statistics.median(queries[backend])
        cosine = float((vectors[backend] * vectors["torch"]).sum(axis=1).min())
        rows.append((backend, f"{loaded[backend]:.1f} s", f"{rates[backend]:.1f}", f"{rates[backend] / rates['torch']:.2f}×",
                     f"{p50:.1f} ms", f"{statistics.median(queries['torch']) / p50:.2f}×", f"{cosine:.4f}",
                     f"{rates[backend] * gflop:.0f} ({rates[backend] * gflop / ceiling:.0%})"))
    headers = ["backend", "load", "passages/s", "vs torch", "query p50", "vs torch", "min cos to torch", "GFLOP/s (of fp32 ceiling)"]
    print(table(headers, rows))
    body = (f"Model {name}; {len(texts)} passages of `{SHARED_CORPUS.name}/letters` ({sum(map(len, texts)) / len(texts):,.0f} characters "
            f"each) and {len(questions)} questions, best of {ROUNDS} rounds, `python bench/backends.py{' --quick' if args.quick else ''}`. "
            "Load: a cached export (the first use of an ONNX backend exports once, ~40 s).\n\n" + table(headers, rows)
            + f"\n\nCompute: a passage averages {statistics.mean(lengths):.0f} tokens, {gflop:.1f} GFLOP of encoder work "
            f"(`encoder_flops`); this machine's fp32 ceiling, torch's {GEMM_SIZE}² matrix product on all cores, is {ceiling:.0f} GFLOP/s. "
            f"A passage rate 3× torch's in fp32 would need {3 * rates['torch'] * gflop / ceiling:.0%} of that ceiling.")
    if BF16_BACKEND not in backends:
        body += f"\n\n{BF16_BACKEND} is left out: this CPU has no bf16 instructions."
    write_section(args.out, "backends", "Embedding backends: torch fp32 and bf16, ONNX fp32 and int8", body)


if __name__ == "__main__":
    main()
