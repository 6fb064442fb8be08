"""`qa index build/add/remove/copy/info` and `qa update`: every command that changes the index, and what it holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from qa.cli.common import (
    EXIT_PARTIAL,
    backend_option,
    echo_safe,
    embedding,
    index_option,
    index_store,
    locate_store,
    log,
    model_option,
    progress_option,
    store_option,
)
from qa.cli.fetch import fetch_letters, fetch_options
from qa.core.errors import LetterError
from qa.core.settings import SAMPLE_CORPUS


@click.group("index")
def index_group() -> None:
    """Build, update and inspect the index."""


def _read_or_fail(paths: tuple[Path, ...]):
    from qa.ingest.reading import read_letters

    report = read_letters(paths)
    for error in report.errors:
        log(f"skipped: {error}")
    if not report.letters:
        raise LetterError("no readable letters found in " + ", ".join(map(str, paths)))
    return report


def _update(index_dir: Path, model: str | None, progress: bool, ray_address: str | None = None, store: str | None = None,
            backend: str | None = None, **changes: Any) -> index_store.UpdateSummary:
    from contextlib import nullcontext

    from qa import services
    from qa.embed.embedding import Embedder, LazyEmbedder, TextEmbedder
    from qa.index import stores

    location = locate_store(index_dir, store)
    if model is None and stores.exists(location) and not changes.get("replace_all"):
        current = stores.load(location)  # adding to an index: its model, run by its backend
        model, backend = current.model, current.backend
    name = model or embedding.default_model_name()
    if ray_address is not None:
        from qa.embed.cluster import RayRunner

        runner: Any = RayRunner(name, ray_address, log=log, backend=backend)  # the address is checked here, before any work
    else:
        runner = nullcontext(None)
    with runner as started:  # with --ray: the cluster is joined (or started) and its actors have loaded the model
        # With --ray the actors hold the model; this process loads it only if something needs it after the build.
        embedder: TextEmbedder = (Embedder(name, backend=backend) if started is None
                                  else LazyEmbedder(name, started.dimension, started.backend))
        summary = stores.update(location, embedder, log=log, progress_bar=progress, runner=started, **changes)
    services.check_after_update(location, embedder, summary, log)  # with --ray: after the cluster has let go of its memory
    return summary


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

    location = locate_store(index_dir, store)
    if not stores.exists(location):
        raise stores.no_index(location)
    # Removing embeds nothing, so the model is not loaded: the index keeps the other letters' vectors.
    _report(stores.update(location, None, remove=letter_ids, log=log), [])


@index_group.command("copy")
@index_option
@store_option
@click.option("--to", "to", required=True, metavar="STORE", help="The store to copy into: local (the --to-index folder), milvus-lite:PATH or milvus://HOST:PORT.")
@click.option("--to-index", "to_index", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="With --to local: the folder to copy into [default: the --index folder].")
def index_copy(index_dir: Path, store: str | None, to: str, to_index: Path | None) -> None:
    """Copy the index into another store (e.g. a local index into Milvus) without embedding anything again."""
    from qa.index import stores

    source = stores.load(locate_store(index_dir, store))
    target = locate_store(to_index or index_dir, to)
    if str(target) == str(locate_store(index_dir, store)):
        raise click.UsageError("--to names the store the index is read from; copy it somewhere else")
    generation = stores.copy(source, target, log)
    click.echo(f"{len(source.letters)} letters, {len(source.passages)} passages copied into {target} ({generation})")


@index_group.command("info")
@index_option
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts, instead of the summary.")
def index_info(index_dir: Path, store: str | None, as_json: bool) -> None:
    """What the index holds and how it was built."""
    from qa.index import stores

    summary = stores.load(locate_store(index_dir.absolute(), store)).info()
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    echo_safe(describe_index(summary))


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



@click.command()
@fetch_options
@index_option
@model_option
def update(folder: Path, index_dir: Path, model: str | None, **network: Any) -> None:
    """Fetch what is new since the last `qa fetch`/`qa update` and add it to the index.

    Only new and changed letters are embedded. Meant for cron; exits 3 when a letter failed or was skipped."""
    from qa import services
    from qa.embed.embedding import Embedder
    from qa.index.location import Location
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
            rebuild, model, backend = True, model or outdated.model, outdated.backend
            log(f"{index_dir} was built by an older version of qa: rebuilding it from all letters in {folder}")
    summary = fetch_letters(folder, source_name, query, **network)
    letters, errors = sources.letters_to_index(folder, index_ids, summary.added + summary.replaced)
    for error in errors:
        log(f"skipped: {error}")
    if letters:
        embedder = Embedder(model, backend=backend)
        changed = index_store.update(index_dir, embedder, add=letters, replace_all=rebuild, log=log, progress_bar=network["progress"])
        services.check_after_update(Location("local", index_dir), embedder, changed, log)
        _report(changed, errors)
    else:
        click.echo(f"{index_dir}: up to date")
    if summary.failed or errors:
        sys.exit(EXIT_PARTIAL)
