"""What every command group shares: the heavy modules imported on first use, the exit codes, the common
options, and output made safe for a terminal."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qa.core import limits
from qa.core.display import terminal_safe
from qa.core.settings import default_index_dir
from qa.embed import onnx_runtime  # light: the backends' names, for --backend
from qa.index.filters import Filters


class _Deferred:
    """A module imported on first use. `qa --help` and `qa ask --url` never need numpy, FAISS, bm25s or
    torch, which cost ~1.3 s of imports here (docs/benchmarks.md, "CLI cold path")."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


if TYPE_CHECKING:
    from qa.embed import embedding
    from qa.index import local as index_store
else:
    index_store = _Deferred("qa.index.local")
    embedding = _Deferred("qa.embed.embedding")


# Exit codes, so cron can tell a build that skipped files from one that crashed (docs/reliability.md).
EXIT_OK = 0
EXIT_CRASH = 1  # Python's own code for an uncaught exception: a bug; the traceback says where
EXIT_ERROR = 2  # one clear line (bad input, no readable letters, busy or damaged index); nothing changed
EXIT_PARTIAL = 3  # done, but some files were skipped or letters failed to fetch; the rest is in

index_option = click.option(
    "--index", "index_dir", type=click.Path(path_type=Path, file_okay=False), default=default_index_dir,
    show_default="index/ or $QA_INDEX", help="Index folder.",
)
store_option = click.option(
    "--store", envvar="QA_STORE", default=None, metavar="STORE",
    help="Where the index is: local (the --index folder), milvus-lite:PATH or milvus://HOST:PORT [default: $QA_STORE or local]. "
         "--index keeps the feedback and saved questions either way.",
)
model_option = click.option("--model", default=None, help="Sentence-transformers model name or path [default: $QA_MODEL or multilingual-e5-small].")
backend_option = click.option(
    "--backend", type=click.Choice(onnx_runtime.BACKENDS), default=None,
    help=f"What runs the model: onnx (ONNX Runtime), onnx-int8 (faster, a little less exact), torch, or torch-bf16 (fast builds on a CPU with bf16 instructions); the index records it and its queries use it "
         f"[default: ${onnx_runtime.BACKEND_ENV} or {onnx_runtime.DEFAULT_BACKEND}].")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def llm_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where the chat model for generated answers is (the key only ever from $QA_LLM_API_KEY, never a flag)."""
    for option in reversed([
        click.option("--llm-url", envvar="QA_LLM_URL", default=None, metavar="URL",
                     help="OpenAI-compatible chat server, e.g. http://127.0.0.1:11434/v1 (Ollama) [default: $QA_LLM_URL]. "
                          "The API key, if it needs one, comes from $QA_LLM_API_KEY."),
        click.option("--llm-model", envvar="QA_LLM_MODEL", default=None, help="Its model [default: $QA_LLM_MODEL, else the first it lists]."),
        click.option("--llm-timeout", type=click.FloatRange(0.1), default=None, metavar="SECONDS",
                     help="Seconds to wait for the model's first and every next token [default: $QA_LLM_TIMEOUT or 90]."),
    ]):
        command = option(command)
    return command


progress_option = click.option("--progress/--no-progress", default=True,
                               help="Show progress while embedding: a bar on a terminal, else a line at each tenth (for logs).")


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--from", "date_from", help="Only letters from this date (YYYY-MM-DD)."),
        click.option("--to", "date_to", help="Only letters up to this date (YYYY-MM-DD)."),
        click.option("--dossier", help="Only this Kamerstuk dossier, e.g. 27925."),
        click.option("--sender", help="Only letters of this ministry or person, e.g. Defensie, IenW, Harbers (the sender, not a co-sender)."),
        click.option("--type", "doc_type", help=f"Only this type: {', '.join(limits.DOCUMENT_TYPES)}."),
    ]):
        command = option(command)
    return command


def chosen_filters(date_from: str | None, date_to: str | None, dossier: str | None, sender: str | None, doc_type: str | None) -> Filters:
    return Filters.parse(date_from, date_to, dossier, sender, doc_type)


def echo_safe(text: str = "", err: bool = False) -> None:
    """A line that may hold a letter's or a server's text: its control characters cannot steer the terminal."""
    click.echo(terminal_safe(text), err=err)


def log(message: str) -> None:
    """Progress and warnings go to stderr, so stdout stays the result."""
    echo_safe(message, err=True)


def locate_store(index_dir: Path, store: str | None) -> Any:
    """The index's store (qa.index.locate); a malformed --store is one line and exit 2."""
    from qa.index.stores import locate

    return locate(index_dir, store)


def open_engine(index_dir: Path, model: str | None, store: str | None = None):
    from qa.answer.engine import Engine

    return Engine.open(locate_store(index_dir, store), model)


