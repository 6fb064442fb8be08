"""`qa feedback list/export`: the ratings and comments given on answers in the chat, read without writing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from qa.cli.common import echo_safe, index_option, json_option, log
from qa.core import limits
from qa.core.display import terminal_safe


@click.group("feedback")
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
            echo_safe(f"   opmerking: {item.comment}")
        echo_safe(f"   vraag:     {item.question}")
        answer = " ".join(item.answer.split())
        echo_safe(f"   antwoord:  {answer[:200]}{'…' if len(answer) > 200 else ''}")
        letters = " ".join(dict.fromkeys(c.letter_id for c in item.citations))
        if letters:
            echo_safe(f"   bronnen:   {letters}")


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
        log(f"{len(items)} feedback rows written to {out}")
