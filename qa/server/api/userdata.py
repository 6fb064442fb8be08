"""The users' database (qa/users/db.py) for one request: whatever SQLite or the folder refuses is a 503, never a 500."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from litestar.exceptions import HTTPException

from qa.users import db as userdb

log = logging.getLogger("qa.server")


@contextmanager
def user_data(data_dir: Path, unavailable: str, what: str, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection to the users' database (qa/users/db.py) for one request. Whatever SQLite or the folder refuses
    (read-only, damaged, locked past the busy timeout) is one log line and a 503 saying `unavailable`, never a 500;
    errors of the request itself (a 404) pass through. Call it off the event loop: it may wait for a lock."""
    try:
        with closing(userdb.connect(data_dir, readonly=readonly)) as connection:
            yield connection
    except (userdb.UserDataError, sqlite3.Error) as error:
        log.error("%s: %s", what, error)
        raise HTTPException(unavailable, status_code=503) from error
