"""A saved question's hits as an Atom feed (RFC 4287) at an unguessable URL, and the paths of its feed and page."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from xml.etree import ElementTree

from qa.users.watches.storage import Watch, WatchHit

ATOM = "http://www.w3.org/2005/Atom"
# What XML 1.0 cannot carry, not even as &#...;: most C0 controls, lone surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Text and attribute values for the feed: ElementTree escapes <, & and ]]> but writes a NUL or ESC as it is,
    and a feed reader then refuses the whole feed (issue 29). Those characters are dropped."""
    return _NOT_XML.sub("", text)


def feed_path(token: str) -> str:
    return f"/watches/{token}/feed.atom"


def page_path(token: str) -> str:
    return f"/watches/{token}"


def atom_feed(watch: Watch, found: Iterable[WatchHit], base_url: str, letter_link: Callable[[WatchHit], str]) -> bytes:
    """The watch's hits as an Atom feed; `base_url` makes the links absolute, as feed readers need them."""
    ElementTree.register_namespace("", ATOM)
    base = base_url.rstrip("/")

    def sub(parent: ElementTree.Element, tag: str, text: str | None = None, **attributes: str) -> ElementTree.Element:
        node = ElementTree.SubElement(parent, f"{{{ATOM}}}{tag}", {name: xml_text(value) for name, value in attributes.items()})
        if text is not None:
            node.text = xml_text(text)
        return node

    found = list(found)
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    sub(feed, "id", f"urn:kamerbrieven-qa:watch:{watch.token}")
    sub(feed, "title", f"Kamerbrieven QA: {watch.question}")
    sub(feed, "updated", max([hit.found_at for hit in found], default=watch.created_at))
    author = sub(feed, "author")
    sub(author, "name", "Kamerbrieven QA")
    sub(feed, "link", rel="self", type="application/atom+xml", href=base + feed_path(watch.token))
    sub(feed, "link", rel="alternate", type="text/html", href=base + page_path(watch.token))
    sub(feed, "subtitle", f"Nieuwe brieven die deze vraag beantwoorden (zekerheid vanaf {watch.threshold:.2f}).")
    for hit in found:
        entry = sub(feed, "entry")
        sub(entry, "id", f"urn:kamerbrieven-qa:watch:{watch.token}:hit:{hit.id}")
        sub(entry, "title", hit.title or hit.letter_id)
        sub(entry, "updated", hit.found_at)
        if hit.date:
            sub(entry, "published", f"{hit.date}T00:00:00Z")
        sub(entry, "link", rel="alternate", type="text/html", href=base + letter_link(hit))
        if hit.url:
            sub(entry, "link", rel="related", type="text/html", href=hit.url)
        sub(entry, "summary", f"{' '.join(hit.answer.split())} (zekerheid {hit.confidence:.2f}; {hit.letter_id})", type="text")
    return ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)

