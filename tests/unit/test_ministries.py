"""The ministry register on the senders the corpus really has (issue 15)."""

import json
import time
from pathlib import Path

import pytest
from conftest import FIXTURE_LETTERS

from qa.answer.retrieval import Filters
from qa.ingest.ministries import REGISTER, first_signer, ministry_named, sender_matches, signers
from qa.ingest.reading import make_letter, read_file


def abbreviations(sender: str, letter_type: str | None = None, title: str | None = None) -> list[str | None]:
    return [signer.ministry.abbreviation if signer.ministry else None for signer in signers(sender, letter_type, title)]


@pytest.mark.parametrize(("sender", "expected"), [
    ("Minister van Volkshuisvesting, Ruimtelijke Ordening en Milieubeheer", ["VROM"]),
    ("de staatssecretaris van Infrastructuur en Waterstaat", ["IenW"]),
    ("Minister van Verkeer en Waterstaat", ["VenW"]),
    ("Minister van Infrastructuur en Milieu", ["IenM"]),
    ("Minister van Economische Zaken", ["EZ"]),
    ("Minister Hermans (Klimaat en Groene Groei)", ["KGG"]),
    ("Staatssecretaris van Welzijn, Volksgezondheid en Cultuur", ["WVC"]),
    ("Staatssecretaris van Cultuur, Recreatie en Maatschappelijk Werk", ["CRM"]),
    ("De Ministervan BinnenlandseZaken", ["BiZa"]),  # OCR glue
    ("Minister voor Ontwikkelingssamenwerking", ["BZ"]),  # a minister without portfolio sits in BZ
    ("Minister-President, minister van Algemene Zaken", ["AZ"]),
    ("Staatssecretaris Van Rij (Financiën – Fiscaliteit en Belastingdienst), mede namens de Minister voor "
     "Buitenlandse Handel en Ontwikkelingssamenwerking", ["Financiën", "BZ"]),
    ("Staatssecretaris van Infrastructuur en Waterstaat (drs. V.L.W.A. Heijnen), mede namens de ministers voor VRO, EZK, "
     "LNV, K&E en BHO", ["IenW", "BZK", "EZK", "LNV", "EZK", "BZ"]),
    ("Ministers van Defensie en van Buitenlandse Zaken en de staatssecretaris van Defensie", ["Defensie", "BZ", "Defensie"]),
])
def test_senders_map_to_register_ministries(sender: str, expected: list[str]) -> None:
    assert abbreviations(sender) == expected


def test_a_name_two_ministries_bore_is_read_by_the_year() -> None:
    assert abbreviations("Minister van Volkshuisvesting en Ruimtelijke Ordening") == ["VRO-1965"]
    assert [s.ministry.abbreviation for s in signers("Minister van Volkshuisvesting en Ruimtelijke Ordening", year=2025) if s.ministry] == ["VRO"]
    assert [s.ministry.abbreviation for s in signers("Minister voor Volkshuisvesting en Ruimtelijke Ordening", year=2023) if s.ministry] == ["BZK"]


def test_first_signer_is_the_sender_with_person_and_role() -> None:
    signer = first_signer("Minister van Infrastructuur en Waterstaat (M. Harbers), mede namens de minister van Sociale Zaken en Werkgelegenheid")
    assert signer is not None and signer.ministry is not None
    assert (signer.role, signer.person, signer.ministry.name) == ("minister", "M. Harbers", "Infrastructuur en Waterstaat")
    huffelen = first_signer("Staatssecretaris Van Huffelen (Binnenlandse Zaken en Koninkrijksrelaties)")
    assert huffelen is not None and huffelen.ministry is not None
    assert (huffelen.role, huffelen.person, huffelen.ministry.abbreviation) == ("staatssecretaris", "Van Huffelen", "BZK")


def test_a_motie_is_signed_by_its_indieners_named_in_the_title() -> None:
    signer = first_signer("L. Bromet", "motie", "EU-voorstel; Motie van de leden Bromet en Holman over afname van grasland")
    assert signer is not None
    assert (signer.role, signer.person, signer.ministry) == ("Kamerleden", "Bromet en Holman", None)
    alone = first_signer("Ergin", "motie", "Benoeming van een Voorzitter; Motie van het lid Ergin over de aanstaande voorzitter")
    assert alone is not None and (alone.role, alone.person) == ("Kamerlid", "Ergin")


def test_the_filter_counts_the_sender_not_the_co_sender() -> None:
    letter = make_letter("Geachte voorzitter,\n\nEen brief over Schiphol.", None, {
        "id": "x", "sender": "Minister van Infrastructuur en Waterstaat (M. Harbers), mede namens de minister van Sociale Zaken en Werkgelegenheid"})
    for query in ("IenW", "infrastructuur", "Infrastructuur en Waterstaat (IenW)", "Harbers", "minister van Infrastructuur"):
        assert Filters(sender=query).accepts(letter), query
    for query in ("SZW", "Sociale Zaken", "Sociale Zaken en Werkgelegenheid (SZW)", "Defensie"):
        assert not Filters(sender=query).accepts(letter), query


def test_a_facet_value_matches_only_its_ministry() -> None:
    ez = first_signer("Minister van Economische Zaken")
    ezk = first_signer("Minister Adriaansens (Economische Zaken en Klimaat)")
    assert sender_matches("Economische Zaken (EZ)", ez) and not sender_matches("Economische Zaken (EZ)", ezk)
    assert sender_matches("economische zaken", ez) and sender_matches("economische zaken", ezk)


def test_every_letter_of_the_corpus_with_a_sender_has_a_register_ministry(shared_corpus: Path) -> None:
    labels = {ministry.label for ministry in REGISTER}
    seen = set()
    for line in (shared_corpus / "letters.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        signer = first_signer(record["sender"], record["type"], record["title"])
        assert signer is not None, record["id"]
        if record["type"] == "motie":
            assert signer.role in ("Kamerlid", "Kamerleden") and signer.person, record["id"]
        else:
            assert signer.ministry is not None and signer.role, (record["id"], record["sender"])
            seen.add(signer.ministry.label)
    assert seen <= labels and {"Financiën", "Onderwijs, Cultuur en Wetenschap (OCW)", "Verkeer en Waterstaat (VenW)"} <= seen


def test_letters_carry_their_signers() -> None:
    ocr = read_file(FIXTURE_LETTERS / "sgd-0000001421.txt")
    assert ocr.ministry is not None and ocr.ministry.name == "Binnenlandse Zaken"
    answer = read_file(FIXTURE_LETTERS / "ah-tk-20232024-1076.pdf")
    assert answer.signer is not None and answer.signer.person == "De Jonge" and answer.ministry is not None
    assert answer.ministry.abbreviation == "BZK"
    motie = read_file(FIXTURE_LETTERS / "kst-36749-6.xml")
    assert motie.signer is not None and motie.signer.role == "Kamerleden" and "Holman" in (motie.signer.person or "")


def test_unknown_names_and_hostile_senders_give_none_quickly() -> None:
    assert ministry_named("Ministerie van Toverij") is None
    started = time.perf_counter()
    for sender in ("Minister van x" + " " * 30_000 + "y", "(" * 50_000, "Minister " * 20_000, "mede namens " * 10_000):
        signers(sender)
        sender_matches("Defensie", first_signer(sender), sender)
    assert time.perf_counter() - started < 1.0
