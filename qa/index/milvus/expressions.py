"""The filters as a Milvus expression on the passages: pure (no pymilvus), and the one place they are translated."""

from __future__ import annotations

from collections.abc import Mapping

from qa.index.filters import Filters, dossier_key
from qa.ingest.letter import Letter
from qa.ingest.ministries import sender_matches


def literal(value: str) -> str:
    """A string literal of a Milvus expression."""
    clean = "".join(char for char in value if char.isprintable())
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


NOTHING = "row < 0"  # an expression no passage passes


def expression(filters: Filters, letters: Mapping[str, Letter]) -> str:
    """The filters as a Milvus expression on the passages: the one place they are translated. Dates, dossier and type
    are fields of each passage; the sender rule is qa.ingest.ministries' (a person, an office, a ministry of its time), so
    it is applied to the letters and goes to Milvus as their ids."""
    parts = []
    if filters.date_from:
        parts.append(f"date >= {literal(filters.date_from)}")  # an undated letter ("") is before every date
    if filters.date_to:
        parts.append(f'date != "" and date <= {literal(filters.date_to)}')
    if filters.dossier:
        parts.append(f"dossier == {literal(dossier_key(filters.dossier))}")
    if filters.type:
        parts.append(f"type == {literal(filters.type)}")
    if filters.sender:
        ids = [letter_id for letter_id, letter in letters.items() if sender_matches(filters.sender, letter.signer, letter.sender)]
        if not ids:
            return NOTHING
        parts.append(f"letter_id in [{', '.join(literal(letter_id) for letter_id in ids)}]")
    return " and ".join(parts)

