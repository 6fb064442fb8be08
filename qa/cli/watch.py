"""`qa watch add/list/remove/check`: saved questions, and the hits newly indexed letters brought them (qa/users/watches/)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import click

from qa.cli.common import chosen_filters, echo_safe, filter_options, index_option, index_store, json_option, log
from qa.core import limits


@click.group("watch")
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
              help="The reader's confidence a new letter's answer needs to count [default: 0.6, qa/users/watches/storage.py].")
@filter_options
@index_option
@json_option
def watch_add(question: str, threshold: float | None, index_dir: Path, as_json: bool, **filters: Any) -> None:
    """Follow QUESTION: letters indexed from now on that answer it become hits."""
    from contextlib import closing

    from qa.schemas import to_json, watch_out
    from qa.users import db as userdb
    from qa.users import watches

    question, chosen = limits.check_question(question), chosen_filters(**filters)
    index = index_store.load(index_dir)
    with closing(userdb.connect(index_dir)) as connection:
        watch = watches.add(connection, index, question, threshold, chosen)
    if as_json:
        click.echo(json.dumps(to_json(watch_out(watch)), indent=2, ensure_ascii=False))
        return
    echo_safe(f"saved question {watch.id}: {watch.question}")
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
        echo_safe(f"{watch.id}. {watch.question}")
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
    echo_safe(f"removed saved question {watch.id}: {watch.question}")


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

                report = watches.check(connection, Engine(index, Embedder(index.model, backend=index.backend)), log)
                log(report.line())
        for watch, hit in watches.unreported(connection):
            echo_safe(watches.hit_line(watch, hit))

