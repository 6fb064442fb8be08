"""Saved questions ("Volg deze vraag"): a question that alerts when a newly indexed letter answers it.

After every index change (`qa index build/add`, `qa update`, a reload of the served index) each saved
question is checked against the letters that are new since its own last check, and only those: their
passages are ranked for the question (the same fusion as retrieval, over just these passages) and read by
the reader. A hit is recorded when the answer from a new letter has the reader's confidence at least the
watch's threshold, so a letter that merely mentions the question's words does not fire.

What is new is kept in the users' database (qa/users/db.py): `index_letters` logs every letter version (id,
content hash) in the order it appeared, and each watch remembers the last one it was checked against.
Hits are delivered as an Atom feed per watch at an unguessable URL (`/watches/<token>/feed.atom`), a page,
and `qa watch check` (one line per hit not yet printed, for cron).
"""

from __future__ import annotations

from qa.users.watches.feed import ATOM, atom_feed, feed_path, page_path, xml_text
from qa.users.watches.matching import LETTERS_READ, CheckReport, NewLetters, StoredQueries, check, check_index_folder, is_hit
from qa.users.watches.storage import (
    DEFAULT_THRESHOLD,
    MAX_WATCHES_LISTED,
    TOKEN_BYTES,
    Watch,
    WatchHit,
    WatchNotFound,
    add,
    check_threshold,
    get,
    hit_line,
    hits,
    new_token,
    now,
    open_watch,
    remove,
    sync_letters,
    unreported,
    watches,
)

__all__ = ["ATOM", "DEFAULT_THRESHOLD", "LETTERS_READ", "MAX_WATCHES_LISTED", "TOKEN_BYTES", "CheckReport", "NewLetters", "StoredQueries", "Watch",
           "WatchHit", "WatchNotFound", "add", "atom_feed", "check", "check_index_folder", "check_threshold", "feed_path", "get", "hit_line", "hits",
           "is_hit", "new_token", "now", "open_watch", "page_path", "remove", "sync_letters", "unreported", "watches", "xml_text"]
