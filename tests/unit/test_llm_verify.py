"""The verifier and the prompt as pure functions: sentences, facts, support, the quote and its offsets.

Passages here are real text from a sample letter (kst-27925-781) with its real sentence spans; the
vectors are left out (`claim_vector=None` checks words and facts only), so the meaning part is
covered by tests/integration/test_llm.py with the real model.
"""

from __future__ import annotations

import numpy as np
import pytest

from qa.answer.answering import Reading
from qa.answer.llm.client import GRAMMAR_ENV, LLMSettings
from qa.answer.llm.generate import Composer
from qa.answer.llm.prompt import NO_ANSWER, PromptBudget, build_messages, citation_grammar, shown_passages
from qa.answer.llm.verify import (
    DEFAULT_VERIFY,
    VerifyPolicy,
    facts,
    is_decline,
    markers,
    source_facts,
    split_sentences,
    strip_markers,
    verify_sentence,
)
from qa.answer.reader import QuestionView, ReadPassage
from qa.answer.retrieval import Hit
from qa.core.errors import SettingsError
from qa.index.lexical import tokenize
from qa.ingest.chunking import Passage
from qa.ingest.letter import Letter

TEXT = (
    "BRIEF VAN DE MINISTER VAN DEFENSIE\n\n"
    "Beëindiging van de operatie\n\n"
    "De NAVO-bondgenoten hebben op 14 april 2021 besloten de missie Resolute Support af te bouwen. "
    "Uiterlijk 11 september dient dit te zijn afgerond. "
    "Nederland draagt met 160 militairen bij aan de missie in Mazar-e-Sharif.\n\n"
    "Kosten\n\n"
    "De kosten van de afbouw bedragen naar verwachting € 12,5 miljoen. "
    "Deze worden gedekt uit het Budget Internationale Veiligheid."
)


def _passages() -> list[ReadPassage]:
    letter = Letter("kst-27925-781", TEXT, title="Afbouw Resolute Support", date="2021-05-12", sender="Minister van Defensie")
    out = []
    for rank, heading in enumerate(["Beëindiging van de operatie", "Kosten"]):
        start = TEXT.index(heading) + len(heading) + 2
        end = TEXT.index("\n\nKosten") if rank == 0 else len(TEXT)
        passage = Passage(f"kst-27925-781#{rank + 1}", letter.id, start, end, heading, 1, TEXT[start:end])
        spans = np.asarray(passage.sentences())
        out.append(ReadPassage(rank, Hit(passage, letter, 1.0, None, None), spans, np.zeros((len(spans), 4), np.float32), 0.9))
    return out


PASSAGES = _passages()


def weights(sentence: str) -> dict[str, float]:
    return {term: 1.0 for term in set(tokenize(strip_markers(sentence)))}


def check(sentence: str):  # type: ignore[no-untyped-def]
    return verify_sentence(sentence, PASSAGES, weights(sentence), None, DEFAULT_VERIFY)


# --- splitting ------------------------------------------------------------------------------


def test_sentences_keep_the_markers_that_follow_them() -> None:
    sentences, rest = split_sentences("De missie eindigt op 11 september [1]. Dat is o.a. besloten door de NAVO. [1][2] Ze kost geld [2].")
    assert sentences == ["De missie eindigt op 11 september [1].", "Dat is o.a. besloten door de NAVO. [1][2]", "Ze kost geld [2]."]
    assert rest == ""


def test_while_streaming_a_sentence_waits_for_what_follows_it() -> None:
    assert split_sentences("Uiterlijk 11 september.", final=False) == ([], "Uiterlijk 11 september.")
    assert split_sentences("Uiterlijk 11 september. [", final=False)[0] == []  # a marker is arriving
    assert split_sentences("Uiterlijk 11 september. [1] De", final=False) == (["Uiterlijk 11 september. [1]"], " De")
    assert split_sentences("Bedrag van 12,5 miljoen", final=False) == ([], "Bedrag van 12,5 miljoen")  # a decimal is no end


def test_list_numbers_and_lone_markers_join_their_sentence() -> None:
    sentences, _ = split_sentences("1. De missie wordt afgebouwd [1].\n2. De kosten zijn bekend.\n[2]")
    assert sentences == ["1. De missie wordt afgebouwd [1].", "2. De kosten zijn bekend. [2]"]
    assert strip_markers(sentences[0]) == "De missie wordt afgebouwd."
    assert markers("Zo [2] en zo [1][2].") == (2, 1)


# --- facts -----------------------------------------------------------------------------------


def test_facts_are_numbers_months_amounts_and_names() -> None:
    found = facts("Volgens de minister kost de afbouw van Resolute Support € 12,5 miljoen en drie maanden, uiterlijk 11 september [2].")
    assert {"12.5", "€", "miljoen", "3", "11", "september", "resolute", "support"} <= set(found)
    assert "volgens" not in found and "minister" not in found  # the first word and capitalised office words are no names


def test_source_facts_read_numbers_either_way() -> None:
    grounded = source_facts("Het gaat om 1.500 militairen, 2,5 procent en drie maanden.")
    assert {"1500", "2.5", "%", "procent", "3", "drie"} <= grounded


# --- verdicts -------------------------------------------------------------------------------


def test_a_faithful_sentence_is_kept_and_quotes_its_support_with_offsets() -> None:
    verdict = check("De afbouw van Resolute Support moet uiterlijk 11 september afgerond zijn [1].")
    assert verdict.kept, verdict.reason
    support = verdict.supports[0]
    # The claim joins two sentences (the mission's name, its end date): both are the quote.
    assert TEXT[support.start : support.end] == ("De NAVO-bondgenoten hebben op 14 april 2021 besloten de missie Resolute Support af te bouwen. "
                                                 "Uiterlijk 11 september dient dit te zijn afgerond.")
    assert PASSAGES[0].hit.passage.start <= support.start < support.end <= PASSAGES[0].hit.passage.end
    single = check("Uiterlijk 11 september moet dit afgerond zijn [1].").supports[0]
    assert TEXT[single.start : single.end] == "Uiterlijk 11 september dient dit te zijn afgerond."  # no longer than what backs it


def test_an_invented_number_is_caught_even_when_the_words_match() -> None:
    verdict = check("Nederland draagt met 250 militairen bij aan de missie in Mazar-e-Sharif [1].")
    assert not verdict.kept and verdict.missing == ("250",)
    assert "'250'" in (verdict.reason or "")


def test_an_invented_name_or_date_is_caught() -> None:
    assert check("De missie Resolute Support wordt afgebouwd door Duitsland [1].").missing == ("duitsland",)
    assert "oktober" in check("De NAVO-bondgenoten besloten op 14 oktober 2021 de missie af te bouwen [1].").missing


def test_a_fact_from_the_wrong_passage_is_not_grounded() -> None:
    assert check("De kosten van de afbouw bedragen € 12,5 miljoen [2].").kept
    wrong = check("De kosten van de afbouw bedragen € 12,5 miljoen [1].")
    assert not wrong.kept and "12.5" in wrong.missing


def test_the_header_the_model_saw_grounds_the_letters_date() -> None:
    assert check("In de brief van 12 mei 2021 staat dat de missie uiterlijk 11 september afgerond moet zijn [1].").kept


def test_a_sentence_without_support_is_dropped() -> None:
    verdict = check("Nederland zal de missie voortzetten met extra helikopters en een nieuw hoofdkwartier [1].")
    assert not verdict.kept and verdict.reason == "de geciteerde passage ondersteunt deze zin niet"
    assert verdict.scores["coverage"] < DEFAULT_VERIFY.min_coverage


def test_a_sentence_that_only_restates_the_question_says_nothing() -> None:
    question = "Wanneer moet de afbouw van Resolute Support afgerond zijn?"
    echo = "De afbouw van Resolute Support moet afgerond zijn [1]."
    assert check(echo).kept  # its words do stand in the passage ...
    verdict = verify_sentence(echo, PASSAGES, weights(echo), None, DEFAULT_VERIFY, question)
    assert not verdict.kept and verdict.reason == "herhaalt alleen de vraag"  # ... but it answers nothing
    answer = "De afbouw van Resolute Support moet uiterlijk 11 september afgerond zijn [1]."
    assert verify_sentence(answer, PASSAGES, weights(answer), None, DEFAULT_VERIFY, question).kept


def test_uncited_unknown_and_declining_sentences() -> None:
    strict = VerifyPolicy(attribute_uncited=False)
    uncited = "De afbouw van de missie Resolute Support moet uiterlijk 11 september afgerond zijn."
    assert verify_sentence(uncited, PASSAGES, weights(uncited), None, strict).reason == "zonder bronverwijzing"
    attributed = check(uncited)  # by default: cited to the passage that backs it, after the same checks
    assert attributed.kept and attributed.attributed and attributed.supports[0].passage == 0
    invented = check("De afbouw van de missie Resolute Support kost 99 miljoen euro.")
    assert not invented.kept and "99" in invented.missing and "zonder bronverwijzing" in (invented.reason or "")
    assert "er niet is" in (check("De missie wordt afgebouwd [7].").reason or "")
    declined = check("De passages beantwoorden deze vraag niet.")
    assert declined.decline and not declined.kept
    assert is_decline("Ik kan de vraag niet beantwoorden op basis van deze passages.")


def test_a_sentence_citing_two_passages_may_combine_them() -> None:
    verdict = check("De missie Resolute Support wordt uiterlijk 11 september afgebouwd en kost € 12,5 miljoen [1][2].")
    assert not verdict.missing  # each fact stands in one of the cited passages
    single = check("De missie Resolute Support wordt uiterlijk 11 september afgebouwd en kost € 12,5 miljoen [1].")
    assert "12.5" in single.missing


# --- composing the answer -------------------------------------------------------------------


def _reading() -> Reading:
    from qa.answer.answering import Evidence

    view = QuestionView.of("Wanneer?", np.zeros(4, np.float32), {})
    return Reading("Wanneer?", view, PASSAGES, Evidence(0.0, 0.0, 0.0), [p.hit for p in PASSAGES])


def test_kept_sentences_are_renumbered_by_first_appearance_and_quote_their_support() -> None:
    composer = Composer(_reading())
    second = check("De kosten van de afbouw bedragen € 12,5 miljoen [2].")
    first = check("De afbouw moet uiterlijk 11 september afgerond zijn [1].")
    shown, citations = composer.add(second)
    assert shown == "De kosten van de afbouw bedragen € 12,5 miljoen. [1]" and citations[0].passage_id == "kst-27925-781#2"
    shown, citations = composer.add(first)
    assert shown == "De afbouw moet uiterlijk 11 september afgerond zijn. [2]"
    assert composer.add(check("Nederland zet de missie voort met 250 militairen [1].")) == (None, ())
    answer = composer.answer()
    assert answer.text.count("[") == 2 and [c.n for c in answer.citations] == [1, 2]
    for citation in answer.citations:
        assert TEXT[citation.quote_start : citation.quote_end] == citation.quote


def test_marked_mode_keeps_unsupported_sentences_without_a_citation() -> None:
    composer = Composer(_reading(), show_unsupported=True)
    shown, citations = composer.add(check("Nederland zet de missie voort met 250 militairen [1]."))
    assert shown == "Nederland zet de missie voort met 250 militairen. (niet gevonden in de bron)" and citations == ()


# --- the prompt -----------------------------------------------------------------------------


def test_the_prompt_numbers_passages_with_letter_date_sender_and_section() -> None:
    messages = build_messages("Wanneer is de afbouw klaar?", PASSAGES, [("Wat is Resolute Support?", "Een missie [1].")])
    assert messages[0]["role"] == "system" and "[2]" in messages[0]["content"] and "Nederlands" in messages[0]["content"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Een missie."  # the old numbers meant other passages
    user = messages[-1]["content"]
    assert "[1] Brief: Afbouw Resolute Support (kst-27925-781) · 12 mei 2021 · Minister van Defensie · § Beëindiging van de operatie" in user
    assert "[2] Brief:" in user and "Vraag: Wanneer is de afbouw klaar?" in user and user.endswith("zoals [1]:")
    hinted = build_messages("Wanneer?", PASSAGES, hints=[(1, "Uiterlijk 11 september dient dit te zijn afgerond.")])[-1]["content"]
    assert "waarschijnlijk:\nUiterlijk 11 september dient dit te zijn afgerond. [1]\n" in hinted


def test_the_concept_mode_asks_for_a_formal_draft_of_50_to_250_words() -> None:
    messages = build_messages("Kan de minister aangeven wanneer de missie eindigt?", PASSAGES, task="concept")
    assert "concept-antwoord" in messages[0]["content"] and "50 tot 250 woorden" in messages[0]["content"]
    assert "Schrijf het concept-antwoord." in messages[-1]["content"]


def test_the_budget_leaves_out_passages_that_do_not_fit() -> None:
    assert shown_passages(PASSAGES, PromptBudget(max_total_chars=100)) == 1
    assert shown_passages(PASSAGES) == 2


@pytest.mark.parametrize("url, base", [
    ("http://127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
    ("http://localhost:8080/v1/", "http://localhost:8080/v1"),
    ("https://example.invalid/openai/v1", "https://example.invalid/openai/v1"),
])
def test_llm_urls_get_their_v1(url: str, base: str) -> None:
    from qa.answer.llm.client import LLMSettings

    assert LLMSettings(url).base_url == base


def test_the_key_is_never_in_the_settings_repr_or_shown_url() -> None:
    from qa.answer.llm.client import LLMSettings, describe
    from qa.core.errors import SettingsError

    settings = LLMSettings("http://user:secret-pw@127.0.0.1:8080/v1?key=sk-123", api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(settings) and "secret-pw" not in settings.shown_url and "sk-123" not in settings.shown_url
    assert describe(settings) == {"configured": True, "url": "http://127.0.0.1:8080/v1", "model": None, "api_key": True}
    with pytest.raises(SettingsError):
        LLMSettings("ftp://127.0.0.1")


def test_the_grammar_allows_markers_of_the_shown_passages_only_and_the_one_decline() -> None:
    rules = dict(line.split(" ::= ", 1) for line in citation_grammar(3).splitlines())
    assert rules["nummer"] == '"1" | "2" | "3"'
    assert rules["root"].startswith(f'"{NO_ANSWER}" | zin') and "{0,4}" in rules["root"]  # at most five sentences
    assert rules["zin"].endswith('" [" nummer "]"')  # every sentence ends in its passage number
    assert "{0,11}" in dict(line.split(" ::= ", 1) for line in citation_grammar(2, "concept").splitlines())["root"]


def test_the_grammar_is_sent_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://127.0.0.1:8080/v1"
    assert LLMSettings.from_env(url).grammar is False  # type: ignore[union-attr]
    monkeypatch.setenv(GRAMMAR_ENV, "1")
    assert LLMSettings.from_env(url).grammar is True  # type: ignore[union-attr]
    monkeypatch.setenv(GRAMMAR_ENV, "yes please")
    with pytest.raises(SettingsError, match=GRAMMAR_ENV):
        LLMSettings.from_env(url)
