"""What every page renders with: Jinja over web/templates and its globals, the Dutch sentences of broken rules,
and the links pages make (back to the chat, a changed query, a page of a list)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from qa.core import display, limits
from qa.core.display import dutch_date, type_label, web_url
from qa.core.errors import InvalidQuery
from qa.schemas import letter_href

# --- helpers shared with the templates -----------------------------------------------------


_FIELD_LABELS = {"date_from": "Vanaf", "date_to": "Tot en met", "type": "Soort", "sort": "Volgorde", "comment": "De toelichting"}
_MESSAGES: dict[str, str] = {  # the rules of qa/core/limits.py, as the pages (and chat.js) say them
    "question_empty": "Typ eerst een vraag.",
    "question_too_long": f"Uw vraag is te lang: maximaal {limits.MAX_QUESTION:,} tekens.".replace(",", "."),
    "not_a_date": "{label}: '{value}' is geen datum (JJJJ-MM-DD).",
    "dates_reversed": "De begindatum ligt na de einddatum.",
    "unknown_type": "{label}: '{value}' is geen bekende soort brief.",
    "too_many_turns": f"Het gesprek is te lang (meer dan {limits.MAX_HISTORY_TURNS} vragen). Begin een nieuw gesprek.",
    "unknown_value": "{label}: '{value}' is geen geldige waarde.",
    "text_too_long": "{label} is te lang.",
}


def dutch_message(error: InvalidQuery) -> str:
    """The Dutch sentence for a broken rule, naming the form field where that helps."""
    label = _FIELD_LABELS.get((error.field or "").removeprefix("filters."), error.field or "")
    return _MESSAGES[error.code].format(label=label, value=error.value)


def script_messages() -> dict[str, str]:
    """The messages chat.js shows for an API error's `code` (those that need no field or value)."""
    return {code: text for code, text in _MESSAGES.items() if "{" not in text}


_BACK = re.compile(r"/(\?[^#\s]*)?(#[A-Za-z0-9-]+)?")  # a chat page (with its question) to return to from a letter


def with_back(href: str, back: str | None) -> str:
    """A letter link that carries where it was opened from (`terug`), so the letter page links back to the answer."""
    if not back:
        return href
    path, hash_, fragment = href.partition("#")
    return f"{path}{'&' if '?' in path else '?'}{urlencode({'terug': back})}{hash_}{fragment}"


def back_link(terug: str | None) -> str | None:
    """`terug` when it is a chat page of this site (never another site, never a script)."""
    return terug if terug and _BACK.fullmatch(terug) else None


def template_globals() -> dict[str, Any]:
    return {
        "letter_href": letter_href, "dutch_date": dutch_date, "type_label": type_label, "safe_url": web_url, "with_back": with_back,
        "max_question": limits.MAX_QUESTION, "history_turns": limits.MAX_HISTORY_TURNS,
        "script_messages": json.dumps(script_messages(), ensure_ascii=False), "months_json": json.dumps(display.MONTH_NAMES),
    }


def template_config(web_dir: Path) -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja over web/templates, autoescaped, with the helpers above as globals."""
    environment = Environment(
        loader=FileSystemLoader(web_dir / "templates"), autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True
    )
    environment.globals.update(template_globals())
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def page_href(path: str, query: dict[str, str], page: int) -> str:
    """A link to page `page` of a paged list (the first page has no page number)."""
    return f"{path}?{urlencode({**query, 'page': page})}" if page > 1 else f"{path}?{urlencode(query)}".rstrip("?")


def query_href(path: str, query: dict[str, str], **changes: str | None) -> str:
    """`path` with the query, changed; None or "" drops a key, and any change starts again at page 1."""
    merged = {key: value for key, value in {**query, **changes}.items() if value and key != "page"}
    return f"{path}?{urlencode(merged)}" if merged else path
