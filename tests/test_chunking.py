from dataclasses import replace

from qa.chunking import MAX_CHARS, chunk_letter, split_sentences
from qa.letters import Letter, make_letter


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
        body = {i for i, char in enumerate(letter.text) if not char.isspace()}
        assert body <= covered, f"{letter.id}: text outside every passage"


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

    from qa.chunking import block_kind
    from qa.letters import read_file

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


def test_a_motie_reads_in_document_order_with_its_dictum_whole() -> None:
    """officielebekendmakingen XML of a motie: constaterende, overwegende and verzoekt are one quotable sentence."""
    from conftest import FIXTURE_LETTERS

    from qa.letters import read_file

    letter = read_file(FIXTURE_LETTERS / "kst-36749-6.xml")
    passages = chunk_letter(letter)
    assert all(p.section is None for p in passages)
    dictum = [letter.text[s:e] for p in passages for s, e in p.sentences() if letter.text[s:e].startswith("De Kamer,")]
    assert len(dictum) == 1
    text = dictum[0]
    assert text.endswith("en gaat over tot de orde van de dag.")
    assert text.index("constaterende dat het Omnibusvoorstel") < text.index("overwegende dat blijvend grasland") \
        < text.index("verzoekt de regering om een afname van grasland")
    assert letter.signer is not None and (letter.signer.role, letter.signer.person) == ("Kamerleden", "Bromet en Holman")


def test_motie_text_layer_keeps_its_dictum_together(shared_corpus) -> None:
    """The plain-text moties of the corpus ('roept ... op', 'verzoekt ...'): every dictum whole, in one passage."""
    from qa.letters import read_letters

    moties = [letter for letter in read_letters([shared_corpus]).letters if letter.type == "motie"]
    assert len(moties) == 60
    for letter in moties:
        spans = [(s, e) for p in chunk_letter(letter) for s, e in p.sentences()]
        dicta = [letter.text[s:e] for s, e in spans if letter.text[s:e].startswith("De Kamer,")]
        assert len(dicta) == 1, letter.id
        assert "orde van de dag" in dicta[0] and ("verzoekt" in dicta[0] or "roept" in dicta[0] or "spreekt" in dicta[0]
                                                  or "draagt" in dicta[0] or "besluit" in dicta[0]), letter.id
