"""A letter as the index keeps it: its cleaned text, page starts and metadata, and who signed it (the ministry register)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from functools import cached_property

from qa.ingest import ministries
from qa.ingest.ministries import Ministry, Signer


@dataclass(frozen=True)
class Letter:
    id: str
    text: str
    title: str | None = None
    date: str | None = None  # ISO YYYY-MM-DD
    dossier: str | None = None
    number: str | None = None
    sender: str | None = None
    type: str | None = None
    url: str | None = None
    page_starts: tuple[int, ...] = (0,)
    source: str | None = None  # the file it was read from

    @cached_property
    def signers(self) -> tuple[Signer, ...]:
        """Who signed, from the ministry register: the sender first, then co-senders ("mede namens")."""
        year = int(self.date[:4]) if self.date and self.date[:4].isdigit() else None
        return ministries.signers(self.sender, self.type, self.title, year)

    @property
    def signer(self) -> Signer | None:
        return self.signers[0] if self.signers else None

    @property
    def ministry(self) -> Ministry | None:
        """The sender's ministry (the first signer's): what the ministry filter and facets use."""
        return self.signer.ministry if self.signer else None

    def content_hash(self) -> str:
        """Changes whenever anything we index about the letter changes."""
        payload = json.dumps(asdict(replace(self, source=None)), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

