"""Application steps that both shells take, written once so they cannot drift apart: the CLI after it changes
the index (`qa index build/add`, `qa update`), the web app after it reloads a rebuilt one.

Light to import (the heavy modules load inside the functions): the CLI imports this for commands that
`qa --help` lists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.answer.engine import Engine
    from qa.embed.embedding import TextEmbedder
    from qa.index.generations import UpdateSummary
    from qa.index.location import Location
    from qa.users.watches import CheckReport


def _quiet(message: str) -> None:
    pass


def check_saved_questions(data_dir: Path, engine: Engine, log: Callable[[str], None] = _quiet) -> CheckReport | None:
    """After an index change: the saved questions kept in `data_dir` against the letters `engine`'s index brought
    since their last check (issue 17); hits go to the feeds and to the next `qa watch check`. None when nobody
    saved a question. Raises UserDataError when their database cannot be read: the caller reports it, and the
    change it follows stands."""
    from qa.users import watches

    return watches.check_index_folder(data_dir, engine, log)


def check_after_update(location: Location, embedder: TextEmbedder, summary: UpdateSummary, log: Callable[[str], None]) -> None:
    """After an update that brought letters: `check_saved_questions` on the new index, with what it found in one
    line of `log`. A failing check is reported there, never a failed update."""
    if not (summary.added or summary.replaced):
        return
    from qa.answer.engine import Engine
    from qa.index import stores
    from qa.users import db as userdb

    try:
        report = check_saved_questions(location.data_dir, Engine(stores.load(location), embedder), log)
    except userdb.UserDataError as error:
        log(f"saved questions not checked: {error}")
        return
    if report is not None:
        log(f"saved questions: {report.line()}")
