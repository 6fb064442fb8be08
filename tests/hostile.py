"""Hostile letters, built from the documented file formats (issue 12's red-team cases).

Each builder returns bytes; `write_hostile(folder)` writes one of every kind and returns
file name -> a word its `skipped:` message must contain (None: the file must be read)."""

from __future__ import annotations

import zlib
from pathlib import Path

from qa.core.settings import SAMPLE_CORPUS

SAMPLE_PDF = SAMPLE_CORPUS / "letters" / "ah-tk-20232024-1076.pdf"
TEXT = "Den Haag, 3 mei 2021\n\nDe minister van Defensie meldt dat de proef met drones in maart begon."


def pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF with these objects (1-based numbers) and a correct cross-reference table."""
    out = b"%PDF-1.7\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def stream(data: bytes, extra: str = "", length: str | None = None) -> bytes:
    return f"<< /Length {length or len(data)} {extra} >>\nstream\n".encode() + data + b"\nendstream"


def one_page(content: bytes, content_extra: str = "", font: bytes = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
             extra_objects: list[bytes] | None = None, length: str | None = None) -> bytes:
    """Catalog, Pages, one Page with font F1 and the given content stream (object 4)."""
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        stream(content, content_extra, length),
        font,
        *(extra_objects or []),
    ])


def text_content(text: str) -> bytes:
    lines = [f"({line.replace('(', '').replace(')', '')}) Tj 0 -14 Td" for line in text.splitlines() if line]
    return ("BT /F1 11 Tf 50 800 Td " + " ".join(lines) + " ET").encode("latin-1")


def good_pdf(text: str = TEXT) -> bytes:
    return one_page(text_content(text))


def inflate_bomb() -> bytes:
    """A content stream that inflates to 80 MB (pypdf's limit is 75 MB)."""
    return one_page(zlib.compress(b" " * 80_000_000, 9), "/Filter /FlateDecode")


def deep_page_tree(depth: int = 150) -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(depth):
        number = 2 + level
        parent = f"/Parent {number - 1} 0 R" if level else ""
        objects.append(f"<< /Type /Pages {parent} /Kids [{number + 1} 0 R] /Count 1 >>".encode())
    page = 2 + depth
    objects.append(f"<< /Type /Page /Parent {page - 1} 0 R /MediaBox [0 0 595 842] /Contents {page + 1} 0 R >>".encode())
    objects.append(stream(text_content(TEXT)))
    return pdf(objects)


def self_referencing_length() -> bytes:
    return one_page(text_content(TEXT), length="4 0 R")


def many_text_operators(count: int = 2_000_000) -> bytes:
    return one_page(zlib.compress(b"BT /F1 11 Tf " + b"(a) Tj " * count + b"ET", 9), "/Filter /FlateDecode")


def huge_predictor_columns() -> bytes:
    return one_page(zlib.compress(text_content(TEXT)), "/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 99999999 >>")


def wide_tounicode_range() -> bytes:
    cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def "
            b"1 begincodespacerange <00000000> <FFFFFFFF> endcodespacerange "
            b"1 beginbfrange <00000000> <FFFFFFFF> <0041> endbfrange endcmap CMapName currentdict /CMap defineresource pop end end")
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>"
    return one_page(text_content(TEXT), font=font, extra_objects=[stream(cmap)])


def encrypted_pdf(user_password: str, owner_password: str = "eigenaar", algorithm: str = "AES-256") -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(SAMPLE_PDF))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def amplified_pdf(pages: int = 10_000, draws: int = 1) -> bytes:
    """A small file whose text layer is huge: `pages` pages share one content stream that draws the same form
    XObject (a paragraph of text) `draws` times. 10,000 pages is 1.6 MB of PDF and 9.3 MB of extracted text."""
    paragraph = " ".join([TEXT.replace("\n", " ")] * 10)
    form = stream(text_content(paragraph), "/Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >>")
    content = stream(zlib.compress(b"/X1 Do " * draws, 9), "/Filter /FlateDecode")
    first = 6
    kids = " ".join(f"{first + page} 0 R" for page in range(pages))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /X1 5 0 R >> >> /Contents 3 0 R >>"
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        content,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        form,
        *([page] * pages),
    ])


def deep_xml(depth: int = 2_000) -> bytes:
    return (b"<officiele-publicatie><kamerstuk>" + b"<al>" * depth + b"Diep geneste tekst." + b"</al>" * depth
            + b"</kamerstuk></officiele-publicatie>")


HOSTILE_PDFS = {
    "inflate-bomb.pdf": inflate_bomb,
    "deep-page-tree.pdf": deep_page_tree,
    "self-length.pdf": self_referencing_length,
    "two-million-operators.pdf": many_text_operators,
    "predictor-columns.pdf": huge_predictor_columns,
    "tounicode-32bit.pdf": wide_tounicode_range,
    "aes-user-password.pdf": lambda: encrypted_pdf("geheim"),
}


def write_hostile(folder: Path) -> dict[str, str | None]:
    """One of every hostile PDF/XML in `folder`; name -> a word of its message, or None when it must be read."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}
    for name, build in HOSTILE_PDFS.items():
        (folder / name).write_bytes(build())
        expected[name] = "PDF"
    (folder / "aes-owner-only.pdf").write_bytes(encrypted_pdf(""))
    expected["aes-owner-only.pdf"] = None
    (folder / "deep-nesting.xml").write_bytes(deep_xml())
    expected["deep-nesting.xml"] = None  # valid XML, 2,000 deep: read (it raised RecursionError)
    (folder / "amplified-pages.pdf").write_bytes(amplified_pdf())
    expected["amplified-pages.pdf"] = "PDF"  # 10,000 pages of one shared content stream (issue 29)
    return expected
