"""The filters of the list pages as their query strings carry them: the form fields, chips, facet links and orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar.di import Provide
from litestar.params import QueryParameter

from qa.answer.retrieval import Filters
from qa.core import limits
from qa.core.display import dutch_date, type_label
from qa.core.errors import InvalidQuery
from qa.index import facets
from qa.server.pages.rendering import dutch_message, query_href
from qa.server.service import Service

FILTER_FIELDS = ("date_from", "date_to", "sender", "type")  # the chat's filters, in the order chips and links show them
_CHIP_PREFIX = {"date_from": "Vanaf ", "date_to": "Tot en met ", "sender": "Ministerie: ", "type": "Soort: "}


def filter_chips(filters: dict[str, str]) -> list[tuple[str, str]]:
    """(field, Dutch label) of each active filter: 'Vanaf 1 januari 2021', 'Soort: Motie van Kamerleden'."""
    chips = []
    for name in FILTER_FIELDS:
        if value := filters.get(name):
            shown = dutch_date(value) if name.startswith("date") else type_label(value) if name == "type" else value
            chips.append((name, _CHIP_PREFIX[name] + shown))
    return chips


@dataclass(frozen=True)
class FilterQuery:
    """A page's filter fields as typed in its query string: validated later by `filters_or_error`, so a page
    can say in Dutch which rule was broken, and handed back to the form, chips and links as they were."""

    date_from: str = ""
    date_to: str = ""
    sender: str = ""
    type: str = ""
    sort: str = ""

    def query(self, **more: str) -> dict[str, str]:
        """The non-blank fields (and `more`), stripped: what links to this page carry."""
        fields = {"date_from": self.date_from, "date_to": self.date_to, "sender": self.sender, "type": self.type, "sort": self.sort}
        return {key: value.strip() for key, value in {**more, **fields}.items() if value.strip()}


def provide_filter_query(
    date_from: Annotated[str, QueryParameter(max_length=20)] = "",
    date_to: Annotated[str, QueryParameter(max_length=20)] = "",
    sender: Annotated[str, QueryParameter(max_length=limits.MAX_FILTER_TEXT)] = "",
    doc_type: Annotated[str, QueryParameter(name="type", max_length=60)] = "",
    sort: Annotated[str, QueryParameter(max_length=20)] = "",
) -> FilterQuery:
    return FilterQuery(date_from, date_to, sender, doc_type, sort)


PAGE_FILTERS = {"page_filters": Provide(provide_filter_query, sync_to_thread=False)}


def form_choices(service: Service) -> dict[str, Any]:
    """The ministries and document types the filter forms offer."""
    return {"ministries": service.ministries, "types": [(value, type_label(value)) for value in service.types]}


@dataclass
class FacetLink:
    label: str
    count: int
    href: str  # this page with the facet's filter added (or removed, when active)
    active: bool


@dataclass
class Chip:
    label: str
    remove_href: str


SORT_LABELS = {"relevance": "Relevantie", "newest": "Nieuwste eerst", "oldest": "Oudste eerst"}


def sort_links(path: str, query: dict[str, str], order: limits.Sort) -> list[tuple[str, str, str, bool]]:
    """(value, label, link, chosen) of each order; relevance is the default, so its link carries no `sort`."""
    return [(value, label, query_href(path, query, sort=None if value == "relevance" else value), value == order)
            for value, label in SORT_LABELS.items()]


def facet_links(path: str, query: dict[str, str], counted: facets.Facets) -> dict[str, list[FacetLink]]:
    """Each facet value as a link that filters by it (or, when it is the active filter, removes it)."""
    years = [(value, n, facets.year_range(value)) for value, n in counted.year]
    return {
        "type": [FacetLink(type_label(value), n, query_href(path, query, type=None if query.get("type") == value else value), query.get("type") == value)
                 for value, n in counted.type],
        "ministry": [FacetLink(value, n, query_href(path, query, sender=None if query.get("sender") == value else value), query.get("sender") == value)
                     for value, n in counted.ministry],
        "year": [FacetLink(value, n, query_href(path, query, date_from=None, date_to=None) if active else query_href(path, query, date_from=start, date_to=end), active)
                 for value, n, (start, end) in years
                 for active in [(query.get("date_from"), query.get("date_to")) == (start, end)]],
    }


def removable_chips(path: str, query: dict[str, str]) -> list[Chip]:
    """The active filters, labelled as the chat labels them (`filter_chips`), each with a link that removes it;
    a date range that is exactly one year (a year facet) is one chip."""
    start, end = query.get("date_from"), query.get("date_to")
    chips = []
    rest = query
    if start and (start, end) == facets.year_range(start[:4]):
        chips.append(Chip(f"Jaar {start[:4]}", query_href(path, query, date_from=None, date_to=None)))
        rest = {key: value for key, value in query.items() if key not in ("date_from", "date_to")}
    return chips + [Chip(label, query_href(path, query, **{name: None})) for name, label in filter_chips(rest)]


def filters_or_error(query: dict[str, str]) -> tuple[Filters, limits.Sort, str | None]:
    """The page's filters and order, or none and the Dutch message of the rule the query broke."""
    try:
        filters = Filters.parse(query.get("date_from"), query.get("date_to"), None, query.get("sender"), query.get("type"))
        return filters, limits.parse_sort(query.get("sort")), None
    except InvalidQuery as problem:
        return Filters(), "relevance", dutch_message(problem)
