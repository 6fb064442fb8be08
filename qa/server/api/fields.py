"""What the requests of several resources share: the question, the filters (in a body and in a query string) and
the order, each checked by the rules of qa/core/limits.py and documented in the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.di import Provide
from litestar.params import QueryParameter
from msgspec import Meta

from qa.answer.retrieval import Filters
from qa.core import limits
from qa.core.errors import InvalidQuery

_TYPES = ", ".join(limits.DOCUMENT_TYPES)
_DATE_SCHEMA = {"format": "date"}
_TYPE_SCHEMA = {"enum": list(limits.DOCUMENT_TYPES)}


def documented(description: str, checked: dict[str, object], examples: list[str] | None = None) -> Meta:
    """A field whose rule qa/core/limits.py checks (one message for API, pages and CLI); the schema still shows it."""
    return Meta(extra_json_schema={"description": description, "examples": examples or [], "extra": checked})


Question = Annotated[str, documented(
    "The question, in Dutch.", {"minLength": 1, "maxLength": limits.MAX_QUESTION}, ["Wanneer moet de afbouw van Resolute Support afgerond zijn?"]
)]
ShortText = Annotated[str, Meta(max_length=limits.MAX_FILTER_TEXT)]
Day = Annotated[str, documented("YYYY-MM-DD", _DATE_SCHEMA)]


class FiltersIn(msgspec.Struct, forbid_unknown_fields=True):
    """Only passages of letters that match all given filters."""

    date_from: Day | None = None
    date_to: Day | None = None
    dossier: ShortText | None = None
    sender: Annotated[str, Meta(max_length=limits.MAX_FILTER_TEXT, description="Part of the sender, e.g. 'Defensie'.")] | None = None
    type: Annotated[str, documented(_TYPES, _TYPE_SCHEMA)] | None = None


def parse_filters(given: FiltersIn) -> Filters:
    """A body's filters, checked; a broken rule names its field as `filters.<name>`."""
    try:
        return Filters.parse(given.date_from, given.date_to, given.dossier, given.sender, given.type)
    except InvalidQuery as error:
        raise InvalidQuery(error.code, f"filters.{error}", f"filters.{error.field}", error.value) from None


SortParameter = Annotated[limits.Sort, QueryParameter(description="relevance (default), newest or oldest letter first.")]


def provide_filters(
    date_from: Annotated[str | None, QueryParameter(description="Letters from this date on (YYYY-MM-DD).", schema_extra=_DATE_SCHEMA)] = None,
    date_to: Annotated[str | None, QueryParameter(description="Letters up to this date (YYYY-MM-DD).", schema_extra=_DATE_SCHEMA)] = None,
    dossier: Annotated[str | None, QueryParameter(max_length=60, description="Kamerstuk dossier, e.g. 27925.")] = None,
    sender: Annotated[str | None, QueryParameter(max_length=limits.MAX_FILTER_TEXT, description="Part of the sender, e.g. Defensie.")] = None,
    doc_type: Annotated[str | None, QueryParameter(name="type", description=_TYPES, schema_extra=_TYPE_SCHEMA)] = None,
) -> Filters:
    return Filters.parse(date_from, date_to, dossier, sender, doc_type)


FILTERS = {"filters": Provide(provide_filters, sync_to_thread=False)}
