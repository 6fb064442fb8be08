"""Generated answers against extractive ones, and the verifier's calibration.

    python bench/llm.py --index /tmp/e5                     # starts SmolLM2-135M (llama.cpp's server) itself
    python bench/llm.py --index /tmp/e5 --llm-url http://127.0.0.1:11434/v1 --llm-model qwen2.5:7b-instruct
    python bench/llm.py --index /tmp/e5 --calibrate-only    # only the verifier's calibration (no chat model)

On `--limit` questions of eval/questions.jsonl (spread over the file: answerable, unanswerable and
follow-ups' first turns), it reports the share of generated sentences kept, how many answers fell
back to the extractive answer, time to first token (ours, from the request, against the model
server's own for the same messages) and total time, against the extractive answer's time.

The calibration verifies every answerable sentence of the passages read for those questions
against its own passage (it must pass) and against another passage of the same letter (same topic,
other content: it must not), for a grid of `VerifyPolicy` thresholds.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench.common import QUESTIONS_FILE, parser, percentiles, table, write_section  # noqa: E402
from qa.answer.engine import Engine  # noqa: E402
from qa.answer.evaluation import Question, question_part, quotes_span  # noqa: E402
from qa.answer.llm.client import LLMClient, LLMError, LLMSettings  # noqa: E402
from qa.answer.llm.generate import Finished, Generated, Options, Token, claim_inputs, direct, events, prompt_for  # noqa: E402
from qa.answer.llm.verify import DEFAULT_VERIFY, VerifyPolicy, verify_sentence  # noqa: E402
from qa.answer.reader import can_answer  # noqa: E402
from qa.answer.retrieval import Filters  # noqa: E402
from qa.index.lexical import tokenize  # noqa: E402

COVERAGES = (0.4, 0.5, 0.6, 0.7, 0.8)
MEANINGS = (0.0, 0.75, 0.78, 0.8, 0.82)


def questions(limit: int, part: str = "test") -> list[dict[str, Any]]:
    """`limit` questions spread evenly over one part of the question set (the same ones every run; no follow-ups: a
    first turn is what a model is asked most). Answers are measured on the test part; the verifier's thresholds are
    calibrated on the dev part."""
    rows = [row for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()
            for row in [json.loads(line)] if question_part(row["question"]) == part and not row.get("history")]
    step = max(1, len(rows) // limit)
    return rows[::step][:limit]


def holds_span(answer: Any, row: dict[str, Any]) -> bool:
    """Does a quote of the answer hold the question's answer span (or another wording of it), from its letter?"""
    return quotes_span(answer, Question(row["question"], row.get("doc_id"), row.get("answer_span"), True,
                                        also_spans=tuple(row.get("also_spans") or ())))


# --- the verifier's calibration ----------------------------------------------------------------


def calibrate(engine: Engine, rows: Sequence[dict[str, Any]], max_sentences: int) -> str:
    """Own-passage and other-passage acceptance over a grid of thresholds (facts checked in both)."""
    own: list[tuple[float, float, bool]] = []  # (coverage, meaning, facts grounded)
    other: list[tuple[float, float, bool]] = []
    seen: set[str] = set()
    loose = VerifyPolicy(min_coverage=0.0, min_meaning=-1.0)
    for row in rows:
        for read in engine.read(row["question"], 5).passages:
            if read.hit.passage.id in seen or len(own) >= max_sentences:
                continue
            seen.add(read.hit.passage.id)
            siblings = [r for r in engine.index.letter_passages.get(read.hit.letter.id, []) if engine.index.passages[r].id != read.hit.passage.id]
            sibling = _read_row(engine, siblings[0]) if siblings else None
            text = read.hit.letter.text
            for start, end in read.spans.tolist():
                sentence = text[start:end]
                if not can_answer(sentence) or len(set(tokenize(sentence))) < 4:
                    continue
                vector, weights = claim_inputs(engine, sentence)
                for target, bucket in ((read, own), (sibling, other)):
                    if target is None:
                        continue
                    verdict = verify_sentence(sentence + " [1]", [target], weights, vector, loose)
                    bucket.append((verdict.scores.get("coverage", 0.0), verdict.scores.get("meaning", 0.0), not verdict.missing))
    rows_out = []
    for coverage in COVERAGES:
        for meaning in MEANINGS:
            def rate(bucket: list[tuple[float, float, bool]], cov: float = coverage, mea: float = meaning) -> float:
                return sum(c >= cov and m >= mea and f for c, m, f in bucket) / max(len(bucket), 1)
            marker = " **(shipped)**" if (coverage, meaning) == (DEFAULT_VERIFY.min_coverage, DEFAULT_VERIFY.min_meaning) else ""
            rows_out.append([f"{coverage:.2f}", f"{meaning:.2f}{marker}", f"{rate(own):.3f}", f"{rate(other):.3f}"])
    own_meaning = np.median([m for _, m, _ in own]) if own else 0.0
    other_meaning = np.median([m for _, m, _ in other]) if other else 0.0
    return (
        f"{len(own)} sentences of {len(seen)} passages read for {len(rows)} questions, each verified against its own passage "
        f"and against another passage of the same letter ({len(other)}). Facts are checked in both. Median meaning "
        f"(claim vector against the best window's in-context vector): own {own_meaning:.3f}, other {other_meaning:.3f}.\n\n"
        + table(["min_coverage", "min_meaning", "own passage accepted", "other passage accepted (false)"], rows_out)
    )


def _read_row(engine: Engine, row: int) -> Any:
    from qa.answer.reader import ReadPassage
    from qa.answer.retrieval import Hit

    passage = engine.index.passages[row]
    spans, vectors = engine.index.sentences(row)
    return ReadPassage(0, Hit(passage, engine.index.letters[passage.letter_id], 0.0, None, None), np.asarray(spans), vectors, 0.0)


# --- generated against extractive -------------------------------------------------------------


async def _generated(engine: Engine, client: LLMClient, question: str) -> tuple[Generated, float | None]:
    first: float | None = None
    started = time.perf_counter()
    async for event in events(question, 5, Filters(), (), run=direct(engine), client=client):
        if isinstance(event, Token) and first is None:
            first = (time.perf_counter() - started) * 1000
        if isinstance(event, Finished):
            return event.generated, first
    raise RuntimeError("no answer")


async def _model_own_first_token(engine: Engine, client: LLMClient, question: str) -> float | None:
    """The model server's own time to first token for the same messages (no retrieval, no checks); None if it failed."""
    from qa.answer.answering import answer

    reading = engine.read(question, 5)
    _, messages = prompt_for(question, (), reading, answer(reading, engine.policy), Options(), client.settings.max_prompt_chars)
    started = time.perf_counter()
    try:
        async for _ in client.stream(messages, max_tokens=1):
            return (time.perf_counter() - started) * 1000
    except LLMError as error:
        print(f"model's own first token failed: {error}", flush=True)
    return None


def compare(engine: Engine, settings: LLMSettings, rows: Sequence[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    extractive_ms = []
    extractive_holds = 0
    for row in rows:
        started = time.perf_counter()
        extractive = engine.ask(row["question"])
        extractive_ms.append((time.perf_counter() - started) * 1000)
        extractive_holds += bool(row.get("answerable") and row.get("answer_span")) and holds_span(extractive, row)

    async def run() -> tuple[list[tuple[Generated, float | None, float]], list[float | None]]:
        client = LLMClient(settings)
        try:
            out = []
            for row in rows:
                started = time.perf_counter()
                generated, first = await _generated(engine, client, row["question"])
                out.append((generated, first, (time.perf_counter() - started) * 1000))
                print(f"{generated.mode:10} {generated.kept}/{generated.total} {row['question'][:70]}", flush=True)
                for verdict in generated.sentences:
                    if verdict.kept:
                        print(f"    kept: {verdict.text[:160]}", flush=True)
            # The same prompts again, straight to the model, in the same order (so each prompt follows a different one,
            # as in the first pass, and llama.cpp's prefix reuse helps neither pass more).
            own = [await _model_own_first_token(engine, client, row["question"]) for row in rows]
            return out, own
        finally:
            await client.aclose()

    results, own = asyncio.run(run())
    kept = sum(g.kept for g, _, _ in results)
    total = sum(g.total for g, _, _ in results)
    fallbacks = sum(g.fallback for g, _, _ in results)
    errors = sum(bool(g.error) for g, _, _ in results)
    firsts = [f for _, f, _ in results if f is not None]
    own_firsts = [o for o in own if o is not None]
    totals = [t for _, _, t in results]
    right = [row for row, (g, _, _) in zip(rows, results) if row.get("answerable") and g.mode == "generative"]
    cites_right = sum(any(c.letter_id == row["doc_id"] for c in g.answer.citations)
                      for row, (g, _, _) in zip(rows, results) if row.get("answerable") and g.mode == "generative")
    with_span = [(row, g) for row, (g, _, _) in zip(rows, results) if row.get("answerable") and row.get("answer_span")]
    generated_holds = sum(g.mode == "generative" and holds_span(g.answer, row) for row, g in with_span)
    any_holds = sum(holds_span(g.answer, row) for row, g in with_span)  # the generated text, or the extractive fallback
    p50 = lambda values: percentiles(values)[0] if values else float("nan")  # noqa: E731
    figures = {"kept": kept / max(total, 1), "fallback": fallbacks / len(rows), "ttft": p50(firsts), "own_ttft": p50(own_firsts)}
    body = table(["", "value"], [
        ["questions (first turns spread over the test part of eval/questions.jsonl)", len(rows)],
        ["generated sentences kept", f"{kept} of {total} (**{figures['kept']:.0%}**)"],
        ["answers falling back to the extractive answer", f"{fallbacks} of {len(rows)} (**{figures['fallback']:.0%}**)"],
        ["... of them because the model server failed", errors],
        ["generative answers (answerable questions) citing the right letter", f"{cites_right} of {len(right)}"],
        ["answerable questions whose kept generated text quotes the answer span", f"{generated_holds} of {len(with_span)}"],
        ["... the answer the user gets (generated, else the extractive fallback) quotes it", f"{any_holds} of {len(with_span)}"],
        ["... the extractive answer quotes it", f"{extractive_holds} of {len(with_span)}"],
        ["time to first token, ours (from the request, retrieval included), p50", f"{p50(firsts):.0f} ms"],
        ["time to first token, the model server's own for the same messages, p50", f"{p50(own_firsts):.0f} ms"],
        ["total time of a generated answer, p50 / p95", f"{percentiles(totals)[0]:.0f} / {percentiles(totals)[1]:.0f} ms"],
        ["total time of the extractive answer, p50 / p95", f"{percentiles(extractive_ms)[0]:.0f} / {percentiles(extractive_ms)[1]:.0f} ms"],
    ])
    return body, figures


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--index", type=Path, required=True, help="Index to answer from (e.g. /tmp/e5, the shared corpus).")
    arguments.add_argument("--limit", type=int, default=24, help="Questions of the set to ask [default: 24; a CPU model takes seconds each].")
    arguments.add_argument("--llm-url", default=None, help="An OpenAI-compatible server; default: start SmolLM2-135M locally.")
    arguments.add_argument("--llm-model", default="", help="Its model.")
    arguments.add_argument("--calibrate-only", action="store_true", help="Only the verifier's calibration.")
    arguments.add_argument("--calibration-sentences", type=int, default=600)
    arguments.add_argument("--grammar", action="store_true", help="Constrain the output with llama.cpp's grammar (QA_LLM_GRAMMAR=1): sentences ending in [n].")
    arguments.add_argument("--skip-calibration", action="store_true", help="Only the generated answers (the calibration takes minutes).")
    args = arguments.parse_args()
    if args.quick:
        args.limit, args.calibration_sentences = 2, 40
    engine = Engine.open(args.index)
    rows = questions(args.limit)
    if not args.skip_calibration:
        calibration = calibrate(engine, questions(max(args.limit, 24), "dev"), args.calibration_sentences)
        print(calibration)
        write_section(args.out, "llm-verifier", "Verifying generated sentences: calibration", calibration)
    if args.calibrate_only:
        return
    server = None
    if args.llm_url:
        settings = LLMSettings(args.llm_url, args.llm_model)
        model = args.llm_model or "(first listed)"
    else:
        from llm_servers import LlamaServer, missing

        if reason := missing():
            raise SystemExit(f"cannot start the local model server: {reason}; pass --llm-url")
        server = LlamaServer()
        # Its 2,048-token context holds ~2,400 characters of passages (prompt.py PromptBudget has the measurement).
        settings = LLMSettings(server.url, max_prompt_chars=2400, max_tokens=150)
        model = ("SmolLM2-135M-Instruct Q4_1 (llama-cpp-python 0.3.36 server, 1 thread, n_ctx 2048; prompts of 2,400 characters "
                 "of passages, at most 150 tokens an answer)")
    settings = replace(settings, grammar=args.grammar)
    model += "; output constrained by the citation grammar (QA_LLM_GRAMMAR=1)" if args.grammar else "; no grammar"
    try:
        body, _ = compare(engine, settings, rows)
    finally:
        if server:
            server.stop()
    note = (f"Model: {model}; index `{args.index}` ({len(engine.index.letters)} letters, {len(engine.index.passages)} passages). "
            f"A subset of {len(rows)} questions of the test part (first turns), because a CPU model takes seconds per answer on this 2-core machine "
            "(shared with other work: timings are noisy).")
    print(body)
    title = "Generated answers against extractive ones" + (", with the citation grammar" if args.grammar else "")
    write_section(args.out, "llm-grammar" if args.grammar else "llm", title, note + "\n\n" + body)


if __name__ == "__main__":
    main()
