"""Our lexical search against SQLite FTS5 with bm25() ranking, the engine of tkconv (a popular search tool
for Tweede Kamer documents): build time, index size and query latency on the bulk corpus, and recall on the
question set.

    cd /work/main && . .venv/bin/activate && python bench/peer.py [--quick] [--no-dense] [--out docs/benchmarks.md]

1. Latency: the bulk corpus (`BULK`, 5,023 documents) chunked as `qa` does; the same passage texts indexed in our
   `LexicalIndex` (bm25s, Dutch stemming and stop words) and in an FTS5 table (`unicode61 remove_diacritics 2`,
   in a temporary file); ≥ 200 Dutch questions (`bench_questions`), top 10 by `bm25(table)`.
2. Recall@1/5/10 and MRR on the answerable questions of `eval/questions.jsonl` over the 204 letters of the shared
   corpus, counted as `qa.answer.evaluation` counts a hit, for FTS5 queried as a keyword box (AND of all the words, or of
   the content words) and as an OR of the content words, our BM25, and (unless --no-dense) our dense and hybrid
   search on a real index.

A natural question ANDed word for word rarely matches any passage, so FTS5 gets an OR query of the question's
words, quoted (so hyphens, quotes and AND/OR/NOT/NEAR in a question are words, not syntax), diacritics folded,
without our stop words; a control run feeds FTS5 our own stemmed tokens to separate the analysis from the engine.
`--quick` (the test suite's mode) implies --no-dense and indexes only the first 300 bulk documents.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import (  # noqa: E402
    BULK,
    QUESTIONS_FILE,
    SHARED_CORPUS,
    bench_questions,
    parser,
    peak_rss_mb,
    percentiles,
    table,
    write_section,
)

from qa.answer.evaluation import Question, normalise, read_questions  # noqa: E402
from qa.index.filters import Filters  # noqa: E402
from qa.index.lexical import STOPWORDS, LexicalIndex, fold, tokenize  # noqa: E402
from qa.index.local import Index  # noqa: E402
from qa.ingest.chunking import Passage, chunk_letter  # noqa: E402
from qa.ingest.letter import Letter  # noqa: E402
from qa.ingest.reading import read_bulk, read_letters

TITLE = "Lexical search against SQLite FTS5 (tkconv's engine)"
TOKENIZER = "unicode61 remove_diacritics 2"
LIMIT = 10
LATENCY_QUESTIONS = 300
QUICK_BULK_DOCUMENTS = 300
_WORD = re.compile(r"[^\W_]+")  # words as FTS5 unicode61 splits them (qa.index.lexical.tokenize keeps "_" inside words)

Ranker = Callable[[str], list[int]]  # question -> passage rows, best first


# --- FTS5 ---------------------------------------------------------------------------------------


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_and(question: str) -> str | None:
    """A keyword box: every word must occur (FTS5's default), each quoted as tkconv asks for words with hyphens."""
    words = _WORD.findall(fold(question))
    return " ".join(_quote(word) for word in words) or None


def content_words(question: str) -> list[str]:
    """The question's words less our stop words and single letters, as our tokeniser keeps them but unstemmed."""
    return [word for word in _WORD.findall(fold(question)) if word not in STOPWORDS and (len(word) > 1 or word.isdigit())]


def fts_and_content(question: str) -> str | None:
    """A keyword box fed only the question's content words (what a practised user types): all must occur."""
    return " ".join(_quote(word) for word in dict.fromkeys(content_words(question))) or None


def fts_or(question: str) -> str | None:
    """Any content word may occur."""
    return " OR ".join(_quote(word) for word in dict.fromkeys(content_words(question))) or None


def fts_or_stemmed(question: str) -> str | None:
    """The control: exactly our tokens (stemmed), for a table that holds our tokens."""
    return " OR ".join(_quote(token) for token in dict.fromkeys(tokenize(question))) or None


class Fts5:
    """One FTS5 table of passages in a temporary SQLite file; rowid = passage row + 1."""

    def __init__(self, folder: Path, texts: Sequence[str], name: str = "passages") -> None:
        self.path = folder / f"{name}.sqlite3"
        started = time.perf_counter()
        self.db = sqlite3.connect(self.path)
        self.db.execute(f"CREATE VIRTUAL TABLE passages USING fts5(body, tokenize={_quote(TOKENIZER)})")
        with self.db:
            self.db.executemany("INSERT INTO passages(rowid, body) VALUES (?, ?)", ((row + 1, text) for row, text in enumerate(texts)))
            self.db.execute("INSERT INTO passages(passages) VALUES ('optimize')")  # one b-tree, as for a finished index
        self.build_seconds = time.perf_counter() - started
        self.errors: list[str] = []

    def sizes(self) -> tuple[int, int]:
        """Bytes of the whole file, and of the stored passage text in it (the rest is the index)."""
        content = self.db.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE 'passages_content%'").fetchone()[0]
        return self.path.stat().st_size, int(content)

    def ranker(self, make_query: Callable[[str], str | None]) -> Ranker:
        statement = "SELECT rowid FROM passages WHERE passages MATCH ? ORDER BY bm25(passages) LIMIT ?"

        def rank(question: str) -> list[int]:
            query = make_query(question)
            if query is None:
                return []
            try:
                return [rowid - 1 for (rowid,) in self.db.execute(statement, (query, LIMIT))]
            except sqlite3.OperationalError as error:  # a query the escaping let through: a bug to report
                self.errors.append(f"{query!r}: {error}")
                return []

        return rank

    def close(self) -> None:
        self.db.close()


# --- ours ---------------------------------------------------------------------------------------


def our_ranker(lexical: LexicalIndex) -> Ranker:
    """`qa.index.local.Index.lexical_ranking` itself: tokenise, score every passage, top 10 by argpartition and sort."""
    index = SimpleNamespace(lexical=lexical, allowed_rows=lambda filters: None)
    return lambda question: [row for row, _ in Index.lexical_ranking(index, question, Filters(), LIMIT)]  # type: ignore[arg-type]


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def timed(function: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def latencies(rank: Ranker, questions: Sequence[str]) -> tuple[list[float], int]:
    """Milliseconds per question (after one untimed pass), and how many questions got no passage at all."""
    for question in questions:
        rank(question)
    milliseconds, empty = [], 0
    for question in questions:
        started = time.perf_counter()
        rows = rank(question)
        milliseconds.append((time.perf_counter() - started) * 1000)
        empty += not rows
    return milliseconds, empty


def passages_of(letters: Sequence[Letter]) -> tuple[list[Passage], list[str]]:
    """Passages in the order `qa.index.local.update` writes them, and the text both engines index."""
    passages = [passage for letter in letters for passage in chunk_letter(letter)]
    titles = {letter.id: letter.title for letter in letters}
    return passages, [passage.index_text(titles[passage.letter_id]) for passage in passages]


# --- part 1: latency on the bulk corpus ---------------------------------------------------------------


@dataclass
class LatencyResult:
    documents: int
    passages: int
    questions: int
    rows: list[list[object]]
    fts_errors: list[str]


def latency_part(quick: bool, folder: Path) -> LatencyResult:
    bulk = read_bulk(BULK)
    items = list(itertools.islice(bulk, QUICK_BULK_DOCUMENTS) if quick else bulk)
    letters = [item for item in items if isinstance(item, Letter)]
    passages, texts = passages_of(letters)
    questions = bench_questions(LATENCY_QUESTIONS)
    print(f"latency: {len(letters)} bulk documents ({len(items) - len(letters)} unreadable), {len(passages)} passages, "
          f"{len(questions)} questions", flush=True)

    lexical, our_build = timed(lambda: LexicalIndex.build(texts))
    (folder / "bm25").mkdir()
    lexical.save(folder / "bm25")  # type: ignore[union-attr]
    our_bytes = folder_bytes(folder / "bm25")
    fts = Fts5(folder, texts)
    fts_bytes, fts_content = fts.sizes()

    rows: list[list[object]] = []
    engines: list[tuple[str, Ranker, float, str]] = [
        ("ours: BM25, Dutch stems, stop words (bm25s)", our_ranker(lexical), our_build, f"{our_bytes / 1e6:.1f}"),  # type: ignore[arg-type]
        ("FTS5, OR of content words", fts.ranker(fts_or), fts.build_seconds,
         f"{(fts_bytes - fts_content) / 1e6:.1f} ({fts_bytes / 1e6:.1f} with text)"),
        ("FTS5, AND of all words (keyword box)", fts.ranker(fts_and), fts.build_seconds, "same table"),
        ("FTS5, AND of content words", fts.ranker(fts_and_content), fts.build_seconds, "same table"),
    ]
    for name, rank, build, size in engines:
        milliseconds, empty = latencies(rank, questions)
        p50, p95, p99 = percentiles(milliseconds)
        rows.append([name, build, size, p50, p95, p99, f"{empty}/{len(questions)}"])
        print(f"  {name}: build {build:.1f} s, index MB {size}, p50 {p50:.2f} / p95 {p95:.2f} / p99 {p99:.2f} ms, "
              f"{empty} questions without a result", flush=True)
    fts.close()
    return LatencyResult(len(letters), len(passages), len(questions), rows, fts.errors)


# --- part 2: recall on the question set ------------------------------------------------------------


def rank_of_hit(rows: Sequence[int], passages: Sequence[Passage], question: Question) -> int | None:
    """As `qa.answer.evaluation.evaluate` counts: the first passage of the expected letter that contains the answer span."""
    span = normalise(question.answer_span or "")
    return next((i + 1 for i, row in enumerate(rows)
                 if passages[row].letter_id == question.doc_id and span in normalise(passages[row].text)), None)


def scores(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {
        "recall@1": sum(r is not None and r <= 1 for r in ranks) / n,
        "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "recall@10": sum(r is not None and r <= 10 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
    }


@dataclass
class RecallResult:
    letters: int
    passages: int
    questions: int
    ranks: dict[str, list[int | None]]
    empty: dict[str, int]
    fts_errors: list[str]
    dense_build_seconds: float | None


def recall_part(dense: bool, folder: Path) -> RecallResult:
    report = read_letters([SHARED_CORPUS])  # what `qa index build ../shared/corpus` reads
    for error in report.errors:
        print(f"  skipped: {error}")
    letters = report.letters
    passages, texts = passages_of(letters)
    questions = [q for q in read_questions(QUESTIONS_FILE) if q.answerable and q.doc_id and q.answer_span and not q.is_follow_up]
    print(f"recall: {len(letters)} letters, {len(passages)} passages, {len(questions)} answerable questions", flush=True)

    fts = Fts5(folder, texts, "recall")
    control = Fts5(folder, [" ".join(tokenize(text)) for text in texts], "control")
    rankers: dict[str, Ranker] = {
        "FTS5, AND of all words (keyword box)": fts.ranker(fts_and),
        "FTS5, AND of content words": fts.ranker(fts_and_content),
        "FTS5, OR of content words": fts.ranker(fts_or),
        "FTS5, OR of our stemmed tokens (control)": control.ranker(fts_or_stemmed),
        "ours: BM25": our_ranker(LexicalIndex.build(texts)),
    }
    ranks: dict[str, list[int | None]] = {}
    empty: dict[str, int] = {}
    for name, rank in rankers.items():
        results = [rank(q.question) for q in questions]
        ranks[name] = [rank_of_hit(rows, passages, q) for rows, q in zip(results, questions)]
        empty[name] = sum(not rows for rows in results)
    fts.close()
    control.close()

    dense_seconds = None
    if dense:
        dense_seconds = dense_ranks(letters, questions, folder / "index", ranks, empty)
    return RecallResult(len(letters), len(passages), len(questions), ranks, empty, fts.errors + control.errors, dense_seconds)


def dense_ranks(letters: list[Letter], questions: list[Question], folder: Path,
                ranks: dict[str, list[int | None]], empty: dict[str, int]) -> float:
    """A real index as `qa index build` writes it, searched through `qa.answer.engine.Engine`; returns its build seconds."""
    from qa.answer.engine import Engine
    from qa.embed.embedding import Embedder
    from qa.index import local as index_store

    embedder = Embedder("multilingual-e5-small")
    print("  building the e5 index (a few minutes)", flush=True)
    summary = index_store.update(folder, embedder, add=letters, replace_all=True)
    engine = Engine(index_store.load(folder), embedder)
    engine_lexical = []
    for mode, name in (("dense", "ours: dense (e5-small)"), ("hybrid", "ours: hybrid (e5-small + BM25)"), ("lexical", None)):
        hits = [engine.search(q.question, k=LIMIT, mode=mode) for q in questions]  # type: ignore[arg-type]
        found = [next((i + 1 for i, hit in enumerate(row) if hit.letter.id == q.doc_id
                       and normalise(q.answer_span or "") in normalise(hit.passage.text)), None) for row, q in zip(hits, questions)]
        if name is None:
            engine_lexical = found
        else:
            ranks[name], empty[name] = found, sum(not row for row in hits)
    if engine_lexical != ranks["ours: BM25"]:
        print("  WARNING: the engine's lexical mode ranks differently from the standalone BM25 index", flush=True)
    return summary.seconds


# --- report ---------------------------------------------------------------------------------------


def markdown(latency: LatencyResult, recall: RecallResult, quick: bool) -> str:
    figures = {name: scores(ranks) for name, ranks in recall.ranks.items()}
    recall_rows = [[name, *(f"{value:.3f}" for value in figures[name].values()), f"{recall.empty[name]}/{recall.questions}"]
                   for name in recall.ranks]
    ours, fts = recall.ranks["ours: BM25"], recall.ranks["FTS5, OR of content words"]
    only_ours = sum((a or 99) <= 5 < (b or 99) for a, b in zip(ours, fts))
    only_fts = sum((b or 99) <= 5 < (a or 99) for a, b in zip(ours, fts))
    control = figures["FTS5, OR of our stemmed tokens (control)"]
    errors = latency.fts_errors + recall.fts_errors
    set_size = len(read_questions(QUESTIONS_FILE))
    dense = ("Dense and hybrid search a real index built as `qa index build` builds it, through `qa.answer.engine.Engine`."
             if recall.dense_build_seconds is not None else "Dense and hybrid rows skipped (`--no-dense`).")
    return f"""
{"**Quick mode: small sizes, the figures mean nothing.**" if quick else ""}

`python bench/peer.py`. tkconv searches Tweede Kamer documents with SQLite FTS5: the words typed in its box must all
occur (FTS5's implicit AND; its own table uses `unicode61 tokenchars '_'`, so no stemming either). Here both
engines index the same passage texts (`chunk_letter`, with letter title and section). FTS5: one table with the
`{TOKENIZER}` tokenizer in a temporary file, `optimize`d after the bulk insert, queried
`ORDER BY bm25(passages) LIMIT {LIMIT}`, every query word quoted so that hyphens, quotes and operator words in a
question cannot break the syntax ({len(errors)} query errors in this run). Ours: `LexicalIndex` (bm25s, k1 1.2,
b 0.75, as FTS5's `bm25()`) over Dutch Snowball stems without stop words, queried as
`qa.index.local.Index.lexical_ranking` does (score every passage, top {LIMIT} by argpartition and sort).

**Latency** over {latency.documents:,} bulk documents ({latency.passages:,} passages) and {latency.questions}
questions (`bench_questions`: the {min(latency.questions, set_size)} of the question set, the rest written from
letter titles), each timed once after an untimed pass over all of them. Index size is bytes on disk: our saved
`bm25/` folder; the SQLite file less its stored passage text (in brackets the whole file; tkconv keeps the text
for snippets).

{table(["engine", "build s", "index MB", "p50 ms", "p95 ms", "p99 ms", "no result"], latency.rows)}

**Recall** on the {recall.questions} answerable questions of `eval/questions.jsonl` over the {recall.letters}
letters of `../shared/corpus` ({recall.passages:,} passages); a hit is a passage of the expected letter that
contains the answer span, as `qa eval` counts it. {dense}

{table(["engine", "R@1", "R@5", "R@10", "MRR", "no result"], recall_rows)}

Typed as a question, FTS5's keyword box finds nothing for most questions, even without stop words. As an OR
query it ranks well, and what separates it from our BM25 is the Dutch analysis, not the engine: fed our stemmed
tokens (the control row) FTS5 scores R@5 {control["recall@5"]:.3f} and MRR {control["mrr"]:.3f}, as ours does
({figures["ours: BM25"]["recall@5"]:.3f}, {figures["ours: BM25"]["mrr"]:.3f}). Within 5 passages our BM25 finds
{only_ours} questions that FTS5's OR query misses and misses {only_fts} that it finds.
"""


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--no-dense", action="store_true", help="Skip the dense and hybrid rows (no e5 index build).")
    args = arguments.parse_args()
    dense = not (args.quick or args.no_dense)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as temporary:
        folder = Path(temporary)
        (folder / "latency").mkdir()
        (folder / "recall").mkdir()
        latency = latency_part(args.quick, folder / "latency")
        recall = recall_part(dense, folder / "recall")
    if recall.dense_build_seconds is not None:
        print(f"  the e5 index took {recall.dense_build_seconds:.0f} s to build")
    for name, ranks in recall.ranks.items():
        figures = scores(ranks)
        print(f"  {name}: " + ", ".join(f"{key} {value:.3f}" for key, value in figures.items()) + f", no result {recall.empty[name]}")
    for error in latency.fts_errors + recall.fts_errors:
        print(f"  FTS5 query error: {error}")
    print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "peak_rss_mb": round(peak_rss_mb())}))
    write_section(args.out, "peer", TITLE, markdown(latency, recall, args.quick))


if __name__ == "__main__":
    main()
