"""`qa fetch`: letters from the Tweede Kamer or KOOP into a folder `qa index build` reads (qa/ingest/sources)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from qa.cli.common import EXIT_PARTIAL, echo_safe, log
from qa.core import limits


def iso_date(_: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    return limits.parse_day(value, f"--{parameter.name}")


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


def fetch_letters(folder: Path, source_name: str, query: Any, tk_url: str | None, sru_url: str | None, rate: float, retries: int, progress: bool,
                  allow_hosts: tuple[str, ...] = ()):
    """Download what `query` finds into `folder` and note the query there for `qa update`; the summary says what failed."""
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
        log(f"fetching from {source.base} into {folder}")  # type: ignore[attr-defined]
        bar = (lambda total: tqdm(total=total, unit="letter", file=sys.stderr)) if progress else None
        summary = sources.fetch(folder, source, client, query, progress=bar, log=None if progress else log)
        sources.remember(folder, source_name, query, started, summary)
    for message in summary.failed:
        log(f"failed: {message}")
    echo_safe(f"{folder}: {summary.line()}")
    return summary


@click.command()
@click.option("--source", "source_name", type=click.Choice(["tk", "sru"]), default="tk", show_default=True,
              help="tk: Tweede Kamer open data (exact types, ministries, change tracking); sru: KOOP officiële publicaties.")
@click.option("--dossier", help="Kamerstuk dossier, e.g. 27925 or 36200-X.")
@click.option("--since", callback=iso_date, help="Letters from this date (YYYY-MM-DD).")
@click.option("--until", callback=iso_date, help="Letters up to this date (YYYY-MM-DD).")
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
    if fetch_letters(folder, source_name, query, **network).failed:
        sys.exit(EXIT_PARTIAL)

