"""Seeded mutants of the sample letters for the fuzz test: PDFs and officielebekendmakingen XML/HTML with
bytes flipped, ranges cut, repeated or spliced, and tokens of their formats put where they do not belong."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from qa.core.settings import SAMPLE_CORPUS

LETTERS = SAMPLE_CORPUS / "letters"
PDF_TOKENS = [b"obj", b"endobj", b"stream\n", b"endstream", b"<<", b">>", b"[", b"]", b"/Length 999999999", b"/Length -1",
              b"/Filter /FlateDecode", b"/Filter [/FlateDecode /LZWDecode /ASCII85Decode]", b"/Predictor 15 /Columns 100000",
              b"/Kids [1 0 R]", b"/Parent 2 0 R", b"/Count 99999999", b"/Type /Pages", b"1 0 R", b"9999 0 R", b"xref",
              b"trailer", b"startxref\n0", b"%%EOF", b"BT", b"ET", b"Tj", b"TJ", b"(\\", b"<FEFF", b"/Encrypt 3 0 R", b"\x00" * 16]
XML_TOKENS = [b"<al>", b"</al>", b"<noot>", b"</kamerstuk>", b"<![CDATA[", b"]]>", b"<!--", b"-->", b"&amp;", b"&#0;", b"&#xD800;",
              b"&undefined;", b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>', b"<?xml version='1.0' encoding='utf-16'?>", b"\xff\xfe",
              b"\x00", b"\xc3", b"<" * 50, b">" * 50, b'<meta name="DC.creator" content="Minister van x' + b" " * 3000 + b'y"/>',
              b"<tussenkop>" * 300, b"<script>alert(1)</script>", b"\x1b]0;titel\x07", b".?" * 2000]
# Text that keeps an XML document well-formed, put right after a tag: what reaches cleaning and chunking.
TEXT_TOKENS = [b" " * 30_000, b"." * 20_000 + b" x", b"?" * 20_000 + b"x", b"a" * 20_000 + b"?", b"Minister van x" + b" " * 30_000 + b"y",
               b"Tweede Kamer, vergaderjaar " * 2_000, b"ab-\n" * 5_000, b"\n" * 10_000, b"nr. a " * 3_000, b"&#8238;&#8237;",
               b"\xe2\x80\xae", b"\xef\xbb\xbf", b"Den Haag, 31 februari 2099", b"kst-1-1\n" * 500]


def _mutate(data: bytes, tokens: list[bytes], rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not out:
            out += rng.choice(tokens)
            continue
        kind = rng.randrange(9)
        at = rng.randrange(len(out))
        if kind == 0:  # flip some bytes
            for _ in range(rng.randint(1, 40)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        elif kind == 1:  # truncate
            del out[at:]
        elif kind == 2:  # cut a range
            del out[at : at + rng.randint(1, 4000)]
        elif kind == 3:  # repeat a range
            piece = bytes(out[at : at + rng.randint(1, 2000)])
            out[at:at] = piece * rng.randint(2, 30)
        elif kind == 4:  # a token of the format where it does not belong
            out[at:at] = rng.choice(tokens)
        elif kind == 5:  # random bytes
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif kind == 6:  # splice in a piece of another place
            start = rng.randrange(len(out))
            out[at:at] = out[start : start + rng.randint(1, 3000)]
        elif kind == 7:  # nest what follows a tag 200 to 3,000 deep (valid XML; pypdf: nested dictionaries/arrays)
            tag_end = out.find(b">", at)
            where = tag_end + 1 if tag_end >= 0 else at
            depth = rng.randint(200, 3_000)
            opening, closing = (b"<al>", b"</al>") if tokens is XML_TOKENS else rng.choice([(b"<<", b">>"), (b"[", b"]")])
            out[where:where] = opening * depth + b"x" + closing * depth
        else:  # well-formed but hostile text right after a tag (PDFs: anywhere)
            tag_end = out.find(b">", at)
            where = tag_end + 1 if tag_end >= 0 else at
            out[where:where] = rng.choice(TEXT_TOKENS)
    return bytes(out)


def mutants(folder: Path, count: int, seed: int = 12) -> Iterator[Path]:
    """`count` mutants written to `folder`: about half PDF, a third XML, the rest HTML."""
    rng = random.Random(seed)
    pdfs = [path.read_bytes() for path in sorted(LETTERS.glob("*.pdf"))]
    xmls = [path.read_bytes() for path in sorted(LETTERS.glob("*.xml"))]
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        kind = number % 6
        if kind < 3:
            data, suffix = _mutate(rng.choice(pdfs), PDF_TOKENS, rng), ".pdf"
        elif kind < 5:
            data, suffix = _mutate(rng.choice(xmls), XML_TOKENS, rng), ".xml"
        else:
            xml = rng.choice(xmls)
            html = b"<!DOCTYPE html><html><head><title>brief</title></head><body>" + xml.split(b"?>", 1)[-1] + b"</body></html>"
            data, suffix = _mutate(html, XML_TOKENS, rng), ".html"
        path = folder / f"mutant-{number:04d}{suffix}"
        path.write_bytes(data)
        yield path
