"""What every benchmark shares: the machine line, percentiles, and writing its section of docs/benchmarks.md.

Each script owns one section of the report, between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`,
so scripts can be rerun one at a time and `bench/run_all.py` rewrites them all in one run."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
BULK = SHARED_CORPUS / "bulk" / "sgd-documents.jsonl.gz"
PACKAGES = ("torch", "sentence-transformers", "faiss-cpu", "bm25s", "litestar", "numpy")
HEADER = """# Benchmarks

Figures from `python bench/run_all.py` (one run; each script can also be run alone, see its top).
`--quick` runs the same code at small sizes, in the test suite, so the scripts cannot rot; its
figures mean nothing.
"""


def parser(description: str | None) -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    arguments.add_argument("--quick", action="store_true", help="Small sizes, for the test suite (figures mean nothing).")
    arguments.add_argument("--out", type=Path, default=REPORT, help=f"Markdown report to update [default: {REPORT.relative_to(ROOT)}].")
    return arguments


def machine() -> str:
    """One line that says where and with what the figures were measured."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    return (f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB RAM; "
            f"Python {platform.python_version()}; {versions}")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def percentiles(milliseconds: Sequence[float]) -> tuple[float, float, float]:
    """p50, p95, p99."""
    p50, p95, p99 = np.percentile(np.asarray(milliseconds, dtype=np.float64), [50, 95, 99])
    return float(p50), float(p95), float(p99)


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(out: Path, name: str, title: str, body: str) -> None:
    """Replace (or append) this script's section of the report, stamped with the machine line."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    section = f"{start}\n## {title}\n\n_Measured {machine()}._\n\n{body.strip()}\n{end}"
    text = out.read_text() if out.exists() else HEADER
    if start in text and end in text:
        before, _, rest = text.partition(start)
        _, _, after = rest.partition(end)
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote section {name!r} of {out}")


QUESTIONS_FILE = ROOT / "eval" / "questions.jsonl"
_TITLE_TEMPLATES = (
    "Wat schrijft de minister over {}?",
    "Wat is de stand van zaken rond {}?",
    "Welke maatregelen neemt het kabinet bij {}?",
    "Waarom stuurt de regering de Kamer een brief over {}?",
)
_DANGLING = {"van", "de", "het", "der", "den", "en", "of", "voor", "op", "in", "met", "te", "aan", "tot", "bij", "om", "over",
             "ten", "ter", "inzake", "houdende", "betreffende", "tussen", "door", "uit", "naar"}


def _title_subject(title: str, max_words: int = 12) -> str:
    """What a letter title is about: the motion's or the questions' "over ..." part, else the part before "; Brief van"."""
    import re

    match = re.search(r"\b(?:[Mm]otie|[Vv]ragen)\b.*?\bover\s+(?:het\s+(?:bericht|artikel)\s+)?(.+)", title)
    subject = match[1] if match else title.split(";")[0]
    words = subject.replace("'", "").replace('"', "").strip(" !-–").split()[:max_words]
    while len(words) > 1 and (words[-1].lower() in _DANGLING or not words[-1][-1:].isalnum()):
        words.pop()  # a cut title should not end on "van de" or an open bracket
    subject = " ".join(words).rstrip(" ,.:;")
    return subject[:1].lower() + subject[1:] if subject[1:2].islower() else subject


def bench_questions(n: int) -> list[str]:
    """`n` Dutch questions, always the same: the question set's (`eval/questions.jsonl`, answerable or not), then
    questions written from the titles of the letters in the shared corpus ("Wat schrijft de minister over ...?"),
    one template per round over the letters, until there are `n` (at most about 860)."""
    import json

    questions = [json.loads(line)["question"] for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    titles = [json.loads(line).get("title") for line in (SHARED_CORPUS / "letters.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip()]
    subjects = [_title_subject(title) for title in titles if title]
    seen = set(questions)
    for round_number in range(len(_TITLE_TEMPLATES)):
        if len(questions) >= n:
            break
        for i, subject in enumerate(subjects):
            question = _TITLE_TEMPLATES[(i + round_number) % len(_TITLE_TEMPLATES)].format(subject)
            if question not in seen:
                seen.add(question)
                questions.append(question)
    if len(questions) < n:
        raise ValueError(f"only {len(questions)} distinct questions available, {n} asked")
    return questions[:n]
