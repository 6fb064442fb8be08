"""The reader's pure parts: what may be quoted, Vraag/Antwoord blocks, features, the policy, the model file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from qa.answer import confidence, reader
from qa.answer.answering import DEFAULT_POLICY, AnswerPolicy, unknown_names
from qa.answer.confidence import ReaderModel
from qa.answer.reader import FEATURES, QuestionView, ReadPassage
from qa.answer.retrieval import Hit
from qa.index.filters import Filters
from qa.ingest.chunking import Passage, paragraphs, split_sentences
from qa.ingest.letter import Letter


def test_questions_headings_and_letterheads_are_never_answers() -> None:
    assert not reader.can_answer("Herkent u het beeld dat rekeninggluren bij banken wijdverspreid is?")
    assert not reader.can_answer("Kunt u aangeven wanneer dit is afgerond?”")
    assert not reader.can_answer("Antwoord 3")
    assert not reader.can_answer("TWEEDE KAMER DER STATEN-GENERAAL")
    assert not reader.can_answer("Beëindiging van de operatie")
    assert reader.can_answer("Uiterlijk 11 september dient dit te zijn afgerond.")


def _passage(text: str) -> ReadPassage:
    spans = np.asarray([s for start, end in paragraphs(text) for s in split_sentences(text[start:end], start)], dtype=np.int64)
    letter = Letter(id="ah-tk-1", text=text)
    hit = Hit(Passage("ah-tk-1#1", "ah-tk-1", 0, len(text), None, 1, text), letter, 1.0, 0.9, 3.0)
    vectors = np.eye(len(spans), 4, dtype=np.float32)
    return ReadPassage(0, hit, spans, vectors, 0.9)


AANHANGSEL = (  # as cleaning leaves an Aanhangsel: each heading a paragraph of its own
    "Vraag 1\n\nTot wanneer loopt de internetconsultatie over de huisvesting van evacués?\n\n"
    "Antwoord 1\n\nDe internetconsultatie loopt tot 20 maart 2024. De reacties worden meegenomen in de besluitvorming.\n\n"
    "Vraag 2\n\nWaarom is de Huisvestingswet aangepast?\n\n"
    "Antwoord 2\n\nHet betreft een ministeriële regeling op grond van artikel 31 van de wet."
)


def test_candidates_leave_out_questions_and_know_what_was_asked() -> None:
    read = _passage(AANHANGSEL)
    weights = {term: 1.0 for term in reader.tokenize("Tot wanneer loopt de internetconsultatie over evacués?")}
    view = QuestionView.of("Tot wanneer loopt de internetconsultatie over evacués?", np.asarray([1, 0, 0, 0], np.float32), weights)
    found = reader.candidates(view, [read])
    quoted = [AANHANGSEL[c.start : c.end] for c in found]
    assert not any(q.endswith("?") for q in quoted)
    assert quoted[0] == "De internetconsultatie loopt tot 20 maart 2024."
    by_text = dict(zip(quoted, found))
    first = by_text["De internetconsultatie loopt tot 20 maart 2024."].features
    other = by_text["Het betreft een ministeriële regeling op grond van artikel 31 van de wet."].features
    column = FEATURES.index
    assert first[column("coverage")] > other[column("coverage")]
    assert first[column("fact_match")] == 1.0  # asks "tot wanneer", holds a date
    assert other[column("fact_match")] == -1.0
    assert view.asks == ("time",)


def test_names_that_no_letter_holds_are_found() -> None:
    frequency = {"bunq": 3, "nederland": 71}.get
    def unknown(question: str) -> tuple[str, ...]:
        return unknown_names(question, lambda t: frequency(t, 0), 527)

    assert unknown("Welke boete kreeg Nexperia van de ACM?") == ("Nexperia", "ACM")
    assert unknown("Welke boete kreeg Bunq van Nexperia?") == ()  # one name is known
    assert unknown("Nexperia") == ()  # the first word is capitalised anyway
    assert unknown("Wat vindt de minister van de Chinese plannen van België?") == ("België",)
    # A name in every seventh passage tells nothing about the topic: ASML is what the question is about.
    assert unknown("Dreigt ASML Nederland te verlaten vanwege de regels voor kennismigranten?") == ("ASML",)
    assert unknown("Hoeveel Nederland-gangers zijn er?") == ()


def test_a_question_about_a_year_is_not_answered_from_another_time() -> None:
    from qa.answer.answering import other_time

    asylum = "Hoeveel mensen hebben in 2023 asiel aangevraagd in Nederland?"
    estimate = "Hierbij wordt ervan uitgegaan dat jaarlijks niet meer dan 14000 vreemdelingen asiel zullen vragen."
    assert other_time(asylum, "1987-03-02", estimate, gap=2) == "2023"
    assert other_time(asylum, "2024-01-30", estimate, gap=2) is None  # written the year after
    assert other_time(asylum, "1987-03-02", "In 2023 vroegen 38.000 mensen asiel aan.", gap=2) is None  # names it
    assert other_time("Hoeveel mensen vroegen asiel aan?", "1987-03-02", estimate, gap=2) is None  # no year asked
    assert other_time(asylum, None, estimate, gap=2) is None
    law = "Wat zegt de Vreemdelingenwet 2000 over gezinshereniging?"  # a year in a name asks no time
    assert other_time(law, "2024-05-01", "Ouders mogen hun kinderen laten overkomen.", gap=2) is None
    interpreters = "Hoeveel Afghaanse tolken zijn in augustus 2021 door Nederland uit Kabul geëvacueerd?"
    support = "In Afghanistan draagt een team van negen extra uitgezonden specialisten zorg voor de terugkeer in 2021."
    assert other_time(interpreters, "2021-04-30", support, gap=2) == "augustus 2021"  # written before it
    assert other_time(interpreters, "2021-09-02", support, gap=2) is None
    assert other_time(interpreters, "2021-04-30", "De evacuatie is eind augustus voorzien.", gap=2) is None


def test_whether_a_motie_was_adopted_needs_a_vote() -> None:
    view = QuestionView.of("Heeft de Tweede Kamer de motie voor een rookverbod in speeltuinen aangenomen?", np.zeros(4, np.float32), {})
    assert view.asks == ("vote",)
    assert not view.holds("verzoekt de regering het rookverbod uit te breiden naar speeltuinen")
    assert view.holds("De motie is op 3 juni aangenomen.")
    assert "vote" not in QuestionView.of("Wanneer werd het arbeidsverdrag aangenomen?", np.zeros(4, np.float32), {}).asks


def test_policy_values_from_the_command_line() -> None:
    policy = DEFAULT_POLICY.with_values({"passages_read": "3", "carry_next": "false", "decline_below": "0.5"})
    assert (policy.passages_read, policy.carry_next, policy.decline_below) == (3, False, 0.5)
    with pytest.raises(ValueError, match="no answer policy setting"):
        DEFAULT_POLICY.with_values({"passages": "3"})
    with pytest.raises(ValueError, match="takes a int"):
        DEFAULT_POLICY.with_values({"passages_read": "many"})
    assert AnswerPolicy(high_from=0.7, medium_from=0.4).label(0.8) == "hoog"
    assert AnswerPolicy(high_from=0.7, medium_from=0.4).label(0.5) == "middel"
    assert AnswerPolicy(high_from=0.7, medium_from=0.4).label(0.1) == "laag"


@pytest.mark.parametrize("path", [confidence.MODEL_FILE, *confidence.MODEL_FILES.values()], ids=lambda path: path.name)
def test_the_shipped_model_matches_the_features_and_is_small(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    model = ReaderModel.from_json(data)
    assert model.confidence_weights.shape == (len(confidence.CONFIDENCE_FEATURES),)
    assert 0 < model.decline_below < 1
    assert "train/train_reader.py" in model.trained_on and "test" in model.trained_on
    assert path.stat().st_size < 5_000_000
    with pytest.raises(ValueError, match="retrain"):
        ReaderModel.from_json({**data, "confidence_features": data["confidence_features"][:-1]})
    assert 0.0 <= model.confidence(np.zeros(len(confidence.CONFIDENCE_FEATURES), np.float32)) <= 1.0


def test_each_embedding_model_is_read_with_its_own_confidence_fit(fast_engine) -> None:  # type: ignore[no-untyped-def]
    """Cosines are on the model's own scale: the tuned model has its own fit, any other model the default one."""
    from qa.embed.embedding import DEFAULT_MODEL, TUNED_MODEL

    assert confidence.model_for(DEFAULT_MODEL) is confidence.model_for("some/other-model") is confidence.load_model()
    tuned = confidence.model_for(TUNED_MODEL)
    assert tuned is not confidence.load_model() and TUNED_MODEL in tuned.trained_on
    reading = fast_engine.read("Wanneer begon de proef met drones?", 5, Filters(), [], "hybrid", DEFAULT_POLICY)
    assert reading.embedding_model == fast_engine.embedder.name


def test_the_scorer_weighs_the_policy_features() -> None:
    weights = DEFAULT_POLICY.sentence_weights()
    assert weights.shape == (len(FEATURES),)
    assert weights[FEATURES.index("coverage")] == DEFAULT_POLICY.weight_coverage
    assert weights[FEATURES.index("bias")] == 0.0
    assert DEFAULT_POLICY.with_values({"weight_meaning": "0"}).sentence_weights()[FEATURES.index("meaning")] == 0.0


def test_letterheads_and_signatures_are_not_answers() -> None:
    assert not reader.can_answer("BRIEF VAN DE STAATSSECRETARIS VAN VERKEER EN WATERSTAAT Aan de Voorzitter van de Tweede Kamer der Staten-Generaal")
    assert not reader.can_answer("'s-Gravenhage, 5 februari 1980 Hierbij zend ik u de nota over de luchtvaart.")
    assert not reader.can_answer("De Staatssecretaris van Verkeer en Waterstaat, N. Smit-Kroes")
    assert not reader.can_answer("De Staatssecretaris van Defensie, J. van Houwelingen.")
    title = "Vaststelling van de begroting van de uitgaven en van de ontvangsten van hoofdstuk X (Ministerie van Defensie) voor het jaar 1990"
    assert not reader.can_answer(f"{title} Nr. 42") and not reader.can_answer(title)
    assert reader.can_answer("De vaststelling van de begroting van Defensie voor 1990 volgt in december.")


def test_a_price_asks_for_a_sum_of_money_not_any_number() -> None:
    def asks(question: str) -> tuple[str, ...]:
        return QuestionView.of(question, np.zeros(4, np.float32), {}).asks

    assert asks("Hoeveel kost de registratie van een drone?") == ("money",)
    assert asks("Hoeveel heeft de bouw van de sluis in de Oesterdam gekost?") == ("money",)
    assert "money" in asks("Welke boete heeft de AP opgelegd?")
    assert asks("Hoeveel inspecteurs werken er bij de inspectie?") == ("amount",)
    assert "money" not in asks("Wie betaalt de kosten van de opvang?")
    assert reader.has_fact("money", "In 2023 zijn de aanvraagkosten €23 en de verlengkosten €13 per jaar.")
    assert reader.has_fact("money", "Daartoe heb ik f 1,7 min. toegezegd.")
    assert not reader.has_fact("money", "De sluis wordt 34 m lang en 6,5 m breed.")
    assert reader.has_fact("amount", "De sluis wordt 34 m lang en 6,5 m breed.")


def test_a_question_word_counts_in_a_compound_that_ends_with_it() -> None:
    weights = {term: 1.0 for term in reader.tokenize("Hoeveel kost de registratie?")}
    assert reader.coverage("In 2023 zijn de aanvraagkosten €23.", weights) > 0
    assert reader.coverage("De tarieven zijn vastgesteld.", weights) == 0
    assert reader.coverage("Hij is erg kostbaar.", {"as": 1.0}) == 0  # short words are not compound heads


def test_the_letters_own_title_is_not_an_answer() -> None:
    title = "Vaststelling van de begroting van de uitgaven en van de ontvangsten van hoofdstuk X (Ministerie van Defensie) voor het jaar 1990"
    assert reader.is_title_line(title + " Nr. 42", title)
    assert reader.is_title_line("Vaststelling van de begroting van de uitgaven", title)
    assert not reader.is_title_line("De uitgaven voor defensie stijgen in 1990 met twee procent ten opzichte van 1989.", title)
    assert not reader.is_title_line("Een zin van vijf woorden.", None)


def test_numbers_in_names_and_references_are_not_amounts() -> None:
    assert not reader.has_fact("amount", "de vervolgaankopen van het oorspronkelijke F-16 programma")
    assert not reader.has_fact("amount", "ter implementatie van Richtlijn (EU) 2019/1937")
    assert reader.has_fact("amount", "met meer dan 1.000 basisscholen")
    # An article, paragraph or question number, a programme's name, a length of time: none counts anything.
    assert not reader.has_fact("amount", "uitvoering te geven aan artikel 6 van de instellingsbeschikking")
    assert not reader.has_fact("amount", "Paragraaf 23, achtste lid onderdeel b, twaalfde lid, Besluit Fiscaal Bestuursrecht.")
    assert not reader.has_fact("amount", "de door de Commissie gestelde vraag 5 naar aanleiding van het Verslag")
    assert not reader.has_fact("amount", "van het oorspronkelijke F-16 programma (het 998-programma) zijn gedaan")
    assert not reader.has_fact("amount", "De inschrijving is geldig voor de duur van 1 jaar.")
    assert not reader.has_fact("amount", "op grond van artikel 3:4, tweede lid, van de Awb")
    assert not reader.has_fact("amount", "het antwoord op Kamervragen van het lid Van Nispen.[6 ]")
    assert reader.has_fact("amount", "In 10 jaar tijd zijn 800 inspecties uitgevoerd.")  # the count beside the time


def _view(question: str) -> QuestionView:
    return QuestionView.of(question, np.zeros(4, np.float32), {})


def test_a_count_of_things_is_not_answered_by_a_sum_of_money() -> None:
    inspectors = _view("Hoeveel inspecteurs werken er bij de Inspectie van het Onderwijs?")
    assert inspectors.counts_things
    assert not inspectors.holds("er is jaarlijks 15,5 miljoen euro extra geïnvesteerd in de inspectie")
    assert inspectors.holds("bij de inspectie werken 450 inspecteurs")
    # A verb after "hoeveel" asks a sum, not a count of things; so does a mass noun.
    for question in ("Hoeveel geven banken uit aan het tegengaan van witwassen?", "Hoeveel winst maakten jeugdzorgaanbieders?"):
        view = _view(question)
        assert not view.counts_things and view.holds("banken geven 1,4 miljard euro uit"), question
    assert _view("Hoeveel extra zwaarbeveiligde cellen levert de gevangenis op?").counts_things  # modifiers skipped


def test_a_count_in_a_unit_needs_that_unit() -> None:
    length = _view("Hoeveel kilometer lang wordt de Delta Rhine Corridor?")
    assert not length.holds("de planning schuift vier jaar op en 12 bedrijven wachten")
    assert length.holds("een leiding van 250 km tussen Rotterdam en Chemelot")
    delay = _view("Hoeveel jaar later komt de leidingenstrook af?")
    assert delay.holds("waardoor de planning vier jaar opschuift") and not delay.holds("richting 2030 en daarna")
    assert _view("Binnen hoeveel tijd moet het kabinet het laten weten?").holds("de Kamer binnen zes weken te informeren")


def test_a_sentence_pointing_back_is_read_with_the_one_before() -> None:
    assert reader.leans_back("Voorbeelden daarvan zijn MST (Multi Systeem Therapie) en MDFT.")
    assert reader.leans_back("Dit is in juli 2021 afgerond.")
    assert not reader.leans_back("Ik stel hierbij vast dat er een sluis komt.")  # "hereby", not "with that"
    assert not reader.leans_back("De afronding van de terugkeer is in juli 2021 voorzien.")


def test_a_question_told_is_not_an_answer() -> None:
    assert not reader.can_answer("Bij het Commissiedebat Vliegveiligheid van 6 september jl. is gevraagd naar de kosten van de registratie.")
    assert not reader.can_answer("Leden hebben gevraagd wie de kosten van de opvang draagt.")
    assert not reader.can_answer("U vraagt of het kabinet bereid is de regeling te verlengen.")
    assert reader.can_answer("De gemeenten dragen de kosten van de opvang, zoals gevraagd door de VNG in 2022.")


MOTIE = ("De Kamer,\n\ngehoord de beraadslaging,\n\n"
         "constaterende dat de vrijstelling groen beleggen per 1 januari 2025 wordt gehalveerd;\n\n"
         "overwegende dat duurzame projecten daardoor minder financiering krijgen;\n\n"
         "verzoekt de regering de box 3 belasting over spaargeld te verlagen,\n\nen gaat over tot de orde van de dag.")


def _motie_passage(with_cores: bool) -> ReadPassage:
    letter = Letter(id="kst-1-1", text=MOTIE, type="motie")
    passage = Passage("kst-1-1#1", "kst-1-1", 0, len(MOTIE), None, 1, MOTIE)
    spans = np.asarray(passage.sentences(), dtype=np.int64)
    cores = np.asarray(passage.sentence_cores(), dtype=np.int64) if with_cores else None
    return ReadPassage(0, Hit(passage, letter, 1.0, 0.9, 3.0), spans, np.eye(len(spans), 4, dtype=np.float32), 0.9, cores)


def test_a_motie_clause_is_scored_by_what_it_says_not_by_the_request_it_runs_into() -> None:
    """A clause's quote runs on to the request; scored whole, every clause held the request's words and facts
    (an unrelated motie answered "Hoeveel belasting betaal je in box 3 ...?" from its clause on groen beleggen)."""
    question = "Hoeveel belasting betaal je in box 3 over spaargeld?"
    view = QuestionView.of(question, np.asarray([1, 0, 0, 0], np.float32), {t: 1.0 for t in reader.tokenize(question)})
    column = FEATURES.index

    def by_clause(with_cores: bool) -> dict[str, np.ndarray]:
        found = reader.candidates(view, [_motie_passage(with_cores)])
        return {MOTIE[c.core_start : c.core_end].split()[0]: c.features for c in found}

    whole, cored = by_clause(False), by_clause(True)
    assert whole["constaterende"][column("coverage")] == whole["verzoekt"][column("coverage")] > 0.5  # the tail's words
    assert cored["constaterende"][column("coverage")] == 0.0 < cored["verzoekt"][column("coverage")]
    assert cored["overwegende"][column("fact_match")] == -1.0  # "3" stands in the request, not in this clause
    quoted = reader.candidates(view, [_motie_passage(True)])
    clauses = [c for c in quoted if MOTIE[c.core_start :].startswith(("constaterende", "overwegende", "verzoekt"))]
    assert len(clauses) == 3 and all(MOTIE[c.start : c.end].endswith("orde van de dag.") for c in clauses)  # still quoted on


def test_a_person_by_title_answers_who() -> None:
    view = QuestionView.of("Hoe heet de voormalige gedeputeerde?", np.zeros(4, np.float32), {})
    assert view.asks == ("who",)
    assert reader.has_fact("who", "een rapport van prof. Koumans over de exploitatieve haalbaarheid")
    assert reader.has_fact("who", "mijn brief aan de heer Kerkhoff, voormalig eilandgedeputeerde")
    assert not reader.has_fact("who", "een rapport over de exploitatieve haalbaarheid")


def test_a_keyword_query_names_the_fact_it_wants() -> None:
    assert _view("registratie drone kosten RDW").asks == ("money",)
    assert _view("vuurwerkopslag afstand tot woningen").asks == ("amount",)
    assert _view("btw hotelovernachting verhoging 2026").asks == ()
    assert _view("Wie betaalt de kosten van de opvang?").asks == ("who",)  # a question asks by its question word


def test_a_signature_answers_only_which_minister_sent_the_letter() -> None:
    signature = "De Minister van Defensie, A. L ter Beek"
    assert not reader.can_answer(signature)
    assert reader.can_answer(signature, signature=True)
    assert _view("Welke minister van Defensie bood in 1991 de Defensienota aan?").asks_signer
    assert not _view("Wat staat er in de Defensienota 1991?").asks_signer


def test_a_cause_stated_without_omdat_answers_a_waarom() -> None:
    assert reader.has_fact("reason", "Vermoedelijk hangt de dalende winstmarge samen met stijgende personeelslasten.")
    assert reader.has_fact("reason", "De vertraging is te wijten aan de stikstofregels.")
    assert not reader.has_fact("reason", "Samen met België wordt verder verkend welke mogelijkheden er zijn.")


def test_the_kamers_request_told_is_no_answer() -> None:
    assert not reader.can_answer("De vaste commissie voor Defensie heeft verzocht uiterlijk 20 april de kabinetsreactie te ontvangen.")
    assert reader.can_answer("Uw Kamer kan de kabinetsreactie uiterlijk voor het einde van het meireces tegemoet zien.")


@pytest.mark.parametrize("text", ["1." * 100_000, "1," * 100_000, "1" + " " * 200_000 + "x", "7 " * 100_000])
def test_the_fact_checks_stay_linear_on_hostile_text(text: str) -> None:
    """A run of "1.1.1..." took 33 s for 50 kB in the check for a sum of money (read again from each digit) and
    "1" + spaces was quadratic between two optional blanks; now ten times the text takes about ten times as long."""
    counting = _view("Hoeveel inspecteurs werken er?")
    length = _view("Hoeveel kilometer lang is de leiding?")

    def seconds(sample: str) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            reader.has_fact("amount", sample), counting.holds(sample), length.holds(sample), reader.can_answer(sample)
            best = min(best, time.perf_counter() - started)
        return best

    small, full = seconds(text[: len(text) // 10]), seconds(text)
    assert full < 30 * max(small, 0.005), f"{small:.3f} s for a tenth, {full:.2f} s for all"
