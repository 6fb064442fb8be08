"""The failures a user can act on, each with a message that says what went wrong and what to do.

Anything else that goes wrong is a bug and keeps its traceback. The CLI prints a `QAError` as one
line and exits 2 (one hook in qa/cli/__init__.py); the web API answers an `InvalidQuery` with a 400 and the
pages show it in Dutch (`InvalidQuery.code` says which rule it broke).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["FetchError", "IndexStateError", "InvalidQuery", "LetterError", "ModelError", "QAError", "SettingsError"]


class QAError(Exception):
    """A failure caused by input, configuration or state outside the program; never a bug."""


class IndexStateError(QAError):
    """An index that cannot be used as asked; the message says why and what to run."""


class ModelError(QAError):
    """A model that cannot be loaded; the message says what to do."""


class LetterError(QAError):
    """A letter that cannot be read; the message says which file and why."""


class FetchError(QAError):
    """A request that failed for good (after retries), or a letters folder that cannot be updated."""


class SettingsError(QAError):
    """A setting (option or environment variable) with a value that cannot work, caught at start-up."""


Rule = Literal[
    "question_empty", "question_too_long", "not_a_date", "dates_reversed", "unknown_type", "too_many_turns", "unknown_value",
    "text_too_long",
]


class InvalidQuery(QAError, ValueError):
    """A question, filter or limit that breaks one of the rules in qa/core/limits.py.

    `code` names the rule (the pages translate it to Dutch), `field` the input and `value` what was given.
    A ValueError too, so msgspec reports it raised in a request body's `__post_init__` as a validation error."""

    def __init__(self, code: Rule, message: str, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.code, self.field, self.value = code, field, value
