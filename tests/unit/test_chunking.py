import re
from dataclasses import replace

from qa.ingest.chunking import MAX_CHARS, chunk_letter, notes_start, split_sentences
from qa.ingest.cleaning import footnotes
from qa.ingest.letter import Letter
from qa.ingest.reading import make_letter


def test_passages_are_exact_spans_with_sections_and_pages(sample_letters) -> None:
    for letter in sample_letters:
        passages = chunk_letter(letter)
        assert passages, letter.id
        for passage in passages:
            assert passage.text == letter.text[passage.start : passage.end]
            assert passage.text.strip()
            assert len(passage.text) <= MAX_CHARS + 400
        covered = set()
        for passage in passages:
            covered.update(range(passage.start, passage.end))
        notes = set(range(notes_start(letter.text), len(letter.text)))  # shown under the letter, linked to their markers
        assert not notes or footnotes(letter.text)
        body = {i for i, char in enumerate(letter.text) if not char.isspace()} - notes
        assert body <= covered, f"{letter.id}: text outside every passage"
        assert not notes & covered, f"{letter.id}: a footnote in a passage"


def test_seed_letter_sections_and_pages(sample_letters) -> None:
    letter = next(letter for letter in sample_letters if letter.id == "kst-27925-781")
    passages = chunk_letter(letter)
    answer = next(p for p in passages if "Uiterlijk 11 september" in p.text)
    assert answer.section == "Beëindiging van de operatie"
    assert answer.page == 1
    later = next(p for p in passages if "Taliban" in p.text)
    assert later.section == "Veiligheidssituatie" and later.page == 2


def test_questions_and_answers_stay_together() -> None:
    text = "\n\n".join(
        ["Vraag 1", "Bent u bekend met het bericht over de sluiting van het ziekenhuis in de regio?",
         "Antwoord 1", "Ja. Het ziekenhuis sluit de spoedeisende hulp per 1 juni " + "omdat personeel ontbreekt. " * 8,
         "Vraag 2", "Wat gaat u doen om de zorg in de regio te borgen?",
         "Antwoord 2", "Ik ga in gesprek met de zorgverzekeraars en het ziekenhuis. " * 4]
    )
    letter = make_letter(text, None, {"id": "ah-tk-test"})
    passages = chunk_letter(letter)
    assert [p.section for p in passages] == ["Vraag 1", "Vraag 2"]
    assert "Antwoord 1" in passages[0].text and "Antwoord 2" in passages[1].text


def test_long_sections_split_at_sentences_with_overlap() -> None:
    sentences = [f"Zin nummer {i} gaat over het beleid van het kabinet en de uitvoering daarvan." for i in range(60)]
    letter = Letter(id="x", text=" ".join(sentences))
    passages = chunk_letter(letter)
    assert len(passages) > 3
    for first, second in zip(passages, passages[1:]):
        assert second.start < first.end  # one sentence of overlap
        assert letter.text[second.start : first.end].strip().endswith(".")
    assert all(p.text.endswith(".") for p in passages)


def test_sentence_splitter_knows_dutch_abbreviations() -> None:
    text = "Op 14 april jl. is het besloten. Zie Kamerstuk 27 925, nr. 780 en o.a. de brief. Dr. Jansen en A.Th.B. Bijleveld tekenen."
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Op 14 april jl. is het besloten.",
        "Zie Kamerstuk 27 925, nr. 780 en o.a. de brief.",
        "Dr. Jansen en A.Th.B. Bijleveld tekenen.",
    ]


def test_index_text_adds_context_once() -> None:
    letter = Letter(id="x", text="Veiligheidssituatie\n\nDe Taliban hebben aangevallen.", title="Afghanistan; Brief")
    passage = chunk_letter(replace(letter))[0]
    indexed = passage.index_text(letter.title)
    assert indexed.startswith("Afghanistan; Brief\n") and indexed.count("Veiligheidssituatie") == 1


def test_letter_heads_reference_blocks_and_footnotes_are_no_sections() -> None:
    """Real letters of each source: OCR, a PDF answer to Kamervragen, a motie's XML, a ministry PDF's text layer."""
    from conftest import FIXTURE_LETTERS

    from qa.ingest.chunking import block_kind
    from qa.ingest.reading import read_file

    expected = {
        "sgd-0000001421.txt": None,
        "ah-tk-20232024-1076.pdf": None,  # the head ("Vragen van het lid ...") is its own passage; "Vraag 1" follows
        "kst-36749-6.xml": None,
        "rijksoverheid-kamerbrief-2023-02-03-npce.txt": None,
        "kst-27925-781.txt": None,
    }
    for name, first_section in expected.items():
        letter = read_file(FIXTURE_LETTERS / name)
        passages = chunk_letter(letter)
        sections = [p.section for p in passages if p.section]
        assert passages[0].section == first_section, (name, passages[0].section)
        assert not [s for s in sections if block_kind(s)], (name, sections)
        for bad in ("Tweede Kamer der Staten-Generaal", "Voorgesteld", "Kamerstukken", "Kenmerk", "Aanhangsel van de Handelingen"):
            assert bad not in sections, (name, bad)
    answer = chunk_letter(read_file(FIXTURE_LETTERS / "ah-tk-20232024-1076.pdf"))
    assert next(p.section for p in answer if p.section) == "Vraag 1" and answer[0].page == 1
    assert answer[0].text.startswith("Tweede Kamer der Staten-Generaal") and "Vraag 1" not in answer[0].text  # the head alone
    npce = chunk_letter(read_file(FIXTURE_LETTERS / "rijksoverheid-kamerbrief-2023-02-03-npce.txt"))
    assert "De circulaire transitie versnellen" in [p.section for p in npce]
    assert not any((p.section or "").startswith("1 Zie ook") for p in npce)  # a footnote is no section


def _quotes_and_cores(letter: Letter) -> list[tuple[str, str]]:
    return [(letter.text[s:e], letter.text[cs:ce]) for p in chunk_letter(letter)
            for (s, e), (cs, ce) in zip(p.sentences(), p.sentence_cores(), strict=True)]


def test_a_motie_is_quoted_from_a_clause_on_to_its_request() -> None:
    """officielebekendmakingen XML of a motie: each constaterende and overwegende is read by its own meaning (the
    core of its sentence) and quoted on to the request, "verzoekt ..., en gaat over tot de orde van de dag.", so a
    quote reads in document order and carries what the motie asks; all in the passage of the motie's head."""
    from conftest import FIXTURE_LETTERS

    from qa.ingest.reading import read_file

    letter = read_file(FIXTURE_LETTERS / "kst-36749-6.xml")
    passages = chunk_letter(letter)
    assert all(p.section is None for p in passages)
    clauses = [(quote, core) for quote, core in _quotes_and_cores(letter) if core.split()[0] in ("constaterende", "overwegende", "verzoekt")]
    assert [core.split()[0] for _, core in clauses] == ["constaterende", "overwegende", "overwegende", "overwegende", "verzoekt"]
    request = clauses[-1][1]
    assert request.startswith("verzoekt de regering om een afname van grasland") and request.endswith("en gaat over tot de orde van de dag.")
    for quote, core in clauses:
        assert quote.startswith(core) and quote.endswith(request)  # the clause, the clauses after it, the request
        assert core == request or core.endswith(";")  # a clause's meaning is its own
    assert clauses[0][1].startswith("constaterende dat het Omnibusvoorstel") and clauses[3][1].startswith("overwegende evidente oplossingen")
    starts = [letter.text.index(core) for _, core in clauses]
    assert starts == sorted(starts)
    dictum = next(p for p in passages if clauses[0][0] in p.text)
    assert "MOTIE VAN" in dictum.text  # head and dictum: one passage
    assert letter.signer is not None and (letter.signer.role, letter.signer.person) == ("Kamerleden", "Bromet en Holman")


def test_dictum_clauses_keep_broken_lines_list_items_and_the_closing() -> None:
    """A text layer breaks a clause over lines ("motie-Stoffer c.s. (" / "36 169, nr. 37" / ") over ..."), lists
    considerations after "overwegende dat:" with bullets, and puts "en gaat over tot de orde van de dag." on a line
    of its own (the moties kst-36169-41 and kst-32013-300 of the corpus)."""
    text = ("De Kamer,\n\ngehoord de beraadslaging,\n\nconstaterende dat de motie-Stoffer c.s. (\n\n36 169, nr. 37\n\n"
            ") niet is uitgevoerd;\n\noverwegende dat:\n\n•\n\nhet ATR constateert dat dit onvoldoende gemotiveerd is; •\n\n"
            "in het hoofdlijnenakkoord is afgesproken om af te zien van nationale koppen;\n\n"
            "verzoekt de regering daarom deze nationale kop te voorkomen,\n\nen gaat over tot de orde van de dag.\n\nVermeer")
    request = "verzoekt de regering daarom deze nationale kop te voorkomen,\n\nen gaat over tot de orde van de dag."
    pairs = _quotes_and_cores(Letter(id="kst-32013-300", text=text, type="motie"))
    assert [core for _, core in pairs] == [
        "De Kamer,", "gehoord de beraadslaging,",
        "constaterende dat de motie-Stoffer c.s. (\n\n36 169, nr. 37\n\n) niet is uitgevoerd;",
        "overwegende dat:",
        "het ATR constateert dat dit onvoldoende gemotiveerd is;",
        "in het hoofdlijnenakkoord is afgesproken om af te zien van nationale koppen;",
        request,
        "Vermeer",
    ]
    quotes = dict((core, quote) for quote, core in pairs)
    assert quotes["De Kamer,"] == "De Kamer," and quotes["overwegende dat:"] == "overwegende dat:"  # no answer: not carried on
    assert quotes["het ATR constateert dat dit onvoldoende gemotiveerd is;"] == text[text.index("het ATR") : text.index("\n\nVermeer")]


def test_motie_text_layer_reads_its_dictum_clause_by_clause(shared_corpus) -> None:
    """The 60 plain-text moties of the corpus: every dictum's request (verzoekt, roept ... op, spreekt uit, draagt ...
    op, besluit) is read as one clause that ends with the closing, no clause holds two, and every quote of a clause
    ends with the request."""
    from qa.ingest.chunking import _MOTION_CLAUSE
    from qa.ingest.reading import read_letters

    moties = [letter for letter in read_letters([shared_corpus]).letters if letter.type == "motie"]
    assert len(moties) == 60
    for letter in moties:
        pairs = _quotes_and_cores(letter)
        requests = [core for _, core in pairs if "gaat over tot de orde van de dag" in core]
        assert len(requests) == 1 and _MOTION_CLAUSE.match(requests[0]), (letter.id, requests)
        assert requests[0].split()[0] in ("verzoekt", "roept", "spreekt", "draagt", "besluit", "en"), (letter.id, requests[0][:60])
        for quote, core in pairs:
            assert not re.search(r";\s*\n\n(constaterende|overwegende|verzoekt)\b", core), (letter.id, core[:80])
            assert quote == core or (quote.startswith(core) and quote.endswith(requests[0])), (letter.id, core[:60])
