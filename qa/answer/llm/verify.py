"""Checking a generated answer sentence by sentence against the passages it cites: the heart of issue 13.

A language model writes fluent sentences and cites `[n]` after them, but nothing makes the
sentence true of passage n. Before a sentence reaches the user it must pass, against the passages
it cites:

1. it cites at least one passage that the model was shown;
2. every fact in it (numbers, dates, amounts, month names, names and acronyms) occurs in a cited
   passage or in the header the model saw for it (its letter's title, date, sender, section);
3. it is supported: one sentence of a cited passage (or two adjacent ones) holds enough of its
   content words (idf-weighted, the reader's `coverage`) and is close in meaning (the claim's
   vector against the passage's in-context sentence vectors that the index stores).

The supporting sentence becomes the citation's exact quote, with its offsets in the letter, so the
letter page highlights what backs the claim. Everything here is pure: texts, spans and vectors in,
verdicts out; the embedding of a claim and the idf weights are computed by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.answer.reader import ReadPassage, can_answer, coverage
from qa.core.display import dutch_date
from qa.index.lexical import fold, tokenize


@dataclass(frozen=True)
class VerifyPolicy:
    """Every number of verification in one place, with the measurement behind it (bench/llm.py, docs/benchmarks.md).

    Calibration (`python bench/llm.py --index /tmp/e5 --calibrate-only`, shared corpus, e5-small, 24 questions of
    the question set's dev part): 571 answerable sentences of the passages read, each verified against its own passage
    (must pass) and 427 against another passage of the same letter (same topic, other content: should fail). Verbatim sentences are
    the easy case for words; what the thresholds buy is measured against the model's own sentences in the same
    report (kept share, and every kept sentence's facts re-checked by tests/integration/test_llm.py)."""

    # Share of the claim's idf-weighted content words that the supporting sentence(s) must hold. Own passage:
    # 0.998 accepted at 0.4-0.8; other passage of the same letter: 5.2 % at 0.4, 4.2 % at 0.5, 3.0 % at 0.6, 2.8 % at
    # 0.7-0.8 (a floor: most likely sentences both passages hold; not inspected one by one).
    # 0.6: near that floor, low enough that a fair paraphrase that swaps a few words still passes.
    min_coverage: float = 0.6
    # The claim's query vector against the supporting window's in-context vectors (e5-small). Medians: own 0.884,
    # other passage 0.823 — it separates poorly alone; 0.78 rejects 0.3 % of the own sentences (0.80: 1.2 % of them,
    # 0.82: 3.5 %), so it only vetoes a window whose words match but whose meaning is far off.
    min_meaning: float = 0.78
    # A supporting window is one sentence of the passage or two adjacent ones (a claim that merges two sentences);
    # a longer window would let scattered words add up to coverage (not measured: a design limit).
    window: int = 2
    # A claim must have at least this many content words to be checked at all ("Ja. [1]" is not a claim).
    min_content_words: int = 2
    # A sentence without a marker is checked against every passage the model saw, and cited to the one that backs it
    # (same checks). Small models copy a passage's sentence and forget the [n] (SmolLM2-135M, most of its sentences).
    # False: such a sentence is dropped ("zonder bronverwijzing").
    attribute_uncited: bool = True


DEFAULT_VERIFY = VerifyPolicy()

NOT_FOUND = "niet gevonden in de bron"
_MARKER = re.compile(r"\[(\d{1,3})\]")
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•])\s+")  # "1. ", "- " before a sentence of a list
_MARKERS = re.compile(r"(?:\s*\[\d{1,3}\](?:\s*[,;]?\s*\[\d{1,3}\])*)")
# Abbreviations after which a full stop does not end a sentence.
_ABBREVIATIONS = {"o.a", "bijv", "nr", "mr", "dr", "drs", "ir", "prof", "jl", "blz", "art", "e.d", "d.w.z", "m.b.t", "i.v.m", "t.b.v",
                  "incl", "excl", "ca", "resp", "vs", "etc", "z.g.a.n", "p", "min", "max", "mln", "mld", "mrd", "st", "kamerstuk", "kamerstukken"}
_MONTHS = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december")
_NUMBER_WORDS = {
    "een": "1", "twee": "2", "drie": "3", "vier": "4", "vijf": "5", "zes": "6", "zeven": "7", "acht": "8", "negen": "9", "tien": "10",
    "elf": "11", "twaalf": "12", "dertien": "13", "veertien": "14", "vijftien": "15", "twintig": "20", "dertig": "30", "veertig": "40",
    "vijftig": "50", "honderd": "100", "duizend": "1000",
}
_COUNTED = set(_NUMBER_WORDS) - {"een"}  # "een" is mostly the article
_SCALES = ("miljoen", "miljard", "procent", "%", "€", "euro")
_NUMBER = re.compile(r"(?<![\w])\d+(?:[.,]\d+)*(?![\w])")
_NAME = re.compile(r"(?<![\w])([A-ZÀ-Þ][\w'’-]*\w|[A-Z]{2,})")
# Capitalised words that are no name to check: sentence openers a model uses and words letters capitalise.
_NOT_NAMES = {"de", "het", "een", "dit", "dat", "deze", "die", "er", "in", "op", "ook", "daarnaast", "verder", "volgens", "bovendien",
              "ik", "wij", "u", "zij", "hij", "kamer", "tweede", "eerste", "minister", "staatssecretaris", "kabinet", "regering",
              "brief", "passage", "bron", "antwoord", "vraag", "vragen", "geachte", "voorzitter", "ministerie", "rijksoverheid"}
# A model saying that the passages do not answer: not a claim, and never kept as one.
_DECLINES = re.compile(r"\b(beantwoorden (deze|de) vraag niet|geen (informatie|antwoord)|niet (te )?beantwoorden|staat (dat|dit|het) niet|"
                       r"kan (ik )?(deze|de) vraag niet|noemen (dat|dit|het) niet)\b", re.I)


def markers(sentence: str) -> tuple[int, ...]:
    """The citation numbers in a sentence, in order, each once."""
    return tuple(dict.fromkeys(int(n) for n in _MARKER.findall(sentence)))


def strip_markers(sentence: str) -> str:
    """The sentence without its `[n]` markers, whitespace made single."""
    text = _MARKER.sub("", sentence)
    text = _LIST_ITEM.sub("", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return " ".join(text.split())


def _ends_here(text: str, stop: int) -> bool:
    """Does the full stop at `stop` end a sentence (not an abbreviation, a decimal or an initial)?"""
    if text[stop] != ".":
        return True
    word = re.search(r"([\w.]+)$", text[:stop])
    if word is None:
        return True
    token = word.group(1).lower()
    return token not in _ABBREVIATIONS and not (len(token) == 1 and token.isalpha() and token.upper() == word.group(1))


def _boundaries(text: str, final: bool) -> list[int]:
    """Where sentences end: after `.!?` (and the markers that follow it) before whitespace, or at a line break.

    A boundary counts only when what follows is known: text after it, or `final` (the stream ended)."""
    cuts: list[int] = []
    for match in re.finditer(r"[.!?](?=[\"'”’)]*(?:\s|\[|$))|\n", text):
        stop = match.start()
        if text[stop] != "\n" and not _ends_here(text, stop):
            continue
        end = match.end()
        quotes = re.match(r"[\"'”’)]*", text[end:])
        end += quotes.end() if quotes else 0
        tail = _MARKERS.match(text, end)
        if tail:
            end = tail.end()
            trailing = re.match(r"[.!?]", text[end:])  # "… afgerond [1]." after a stop inside? rare; take it along
            end += trailing.end() if trailing else 0
        rest = text[end:]
        if not final and re.fullmatch(r"\s*\[\d{0,3}", rest):
            break  # a marker still arriving
        if not rest.strip():
            if final:
                cuts.append(len(text))
            break  # more markers may still come
        if text[stop] == "\n" or rest[:1].isspace():
            cuts.append(end)
    return cuts


def split_sentences(text: str, final: bool = True) -> tuple[list[str], str]:
    """Complete sentences of generated text (each with the markers that follow it) and the unfinished rest.

    While streaming, call with `final=False`: a sentence counts as complete only when text follows it,
    so "… afgerond." waits for a possible " [1]"."""
    sentences: list[str] = []
    start = 0
    for cut in _boundaries(text, final):
        piece = " ".join(text[start:cut].split())
        if piece:
            sentences.append(piece)
        start = cut
    rest = text[start:]
    if final:
        if rest.strip():
            sentences.append(" ".join(rest.split()))
        rest = ""
    # A lone marker line ("[1]") belongs to the sentence before it; a list number ("2.") to the one after it.
    merged: list[str] = []
    pending = ""
    for sentence in sentences:
        if not re.search(r"[^\W\d_]", _MARKER.sub("", sentence)):
            if _MARKER.search(sentence) and merged:
                merged[-1] = f"{merged[-1]} {sentence}"
            else:
                pending = f"{pending}{sentence} "
            continue
        merged.append(pending + sentence)
        pending = ""
    if pending.strip():
        rest = pending + rest if not final else rest
    return merged, rest


def _normal_number(token: str) -> str:
    """'1.500' and '1500' alike; '1,5' keeps its decimal comma as a point."""
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", token):
        return token.replace(".", "")
    return token.replace(",", ".")


def facts(sentence: str) -> list[str]:
    """What a sentence asserts that must stand in its source word for word: numbers (digits or Dutch number words
    from two up), scale words (miljoen, procent, €), month names, and names and acronyms past the first word."""
    text = strip_markers(sentence)
    found: list[str] = [_normal_number(n) for n in _NUMBER.findall(text)]
    words = re.findall(r"[\w€%]+", fold(text))
    found += [_NUMBER_WORDS[w] for w in words if w in _COUNTED]
    found += [w for w in words if w in _MONTHS or w in _SCALES]
    found += ["%"] * text.count("%") + ["€"] * text.count("€")
    for match in _NAME.finditer(text):
        word = match.group(1)
        first = match.start() == len(text) - len(text.lstrip())
        if (first and not word.isupper()) or fold(word) in _NOT_NAMES or word.isupper() and len(word) < 2:
            continue
        found.append(fold(word))
    return list(dict.fromkeys(found))


def source_facts(text: str) -> set[str]:
    """Everything a source text could ground: its numbers (normalised), number words as digits, its folded words."""
    folded = fold(text)
    words = set(re.findall(r"[\w'’-]+", folded))
    words |= {part for word in list(words) for part in re.split(r"[-'’]", word) if part}
    grounded = words | {_normal_number(n) for n in _NUMBER.findall(text)}
    grounded |= {_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS}
    grounded |= {digits for digits, word in ((v, k) for k, v in _NUMBER_WORDS.items()) if word in words}
    if "%" in text or "procent" in words:
        grounded |= {"%", "procent"}
    if "€" in text or "euro" in words or "eur" in words:
        grounded |= {"€", "euro"}
    return grounded


def header(passage: ReadPassage) -> str:
    """What the prompt said about a passage besides its text: letter title, date, sender, section."""
    letter, hit_passage = passage.hit.letter, passage.hit.passage
    return " ".join(filter(None, [letter.title, letter.id, letter.date, dutch_date(letter.date) if letter.date else None,
                                  letter.sender, hit_passage.section]))


def is_decline(sentence: str) -> bool:
    """The model saying that the passages do not answer."""
    return bool(_DECLINES.search(strip_markers(sentence)))


@dataclass(frozen=True)
class Support:
    """The best window of one cited passage for a claim."""

    passage: int  # index into the read passages
    start: int  # the window's offsets in the letter text
    end: int
    coverage: float
    meaning: float


@dataclass(frozen=True)
class Verdict:
    """One generated sentence, checked."""

    raw: str  # as generated, markers included
    text: str  # without markers
    cited: tuple[int, ...]  # the passage numbers it cites (1-based, as in the prompt)
    kept: bool
    reason: str | None = None  # why it was not kept, in Dutch
    supports: tuple[Support, ...] = ()  # the cited passages that back it (kept) or came closest (not kept)
    missing: tuple[str, ...] = ()  # facts that no cited passage holds
    decline: bool = False  # the model said the passages do not answer
    repeat: bool = False  # the same sentence again (not checked twice, not counted)
    attributed: bool = False  # kept without a marker of the model's: cited to the passage that backs it
    scores: dict[str, float] = field(default_factory=dict)


def best_window(claim_weights: Mapping[str, float], claim_vector: np.ndarray | None, passage: ReadPassage, number: int,
                policy: VerifyPolicy = DEFAULT_VERIFY) -> Support | None:
    """The sentence (or adjacent sentences) of a passage that best backs a claim: most coverage, then meaning."""
    text = passage.hit.letter.text
    spans = np.asarray(passage.spans).reshape(-1, 2)
    if not len(spans):
        return None
    cosines = (np.asarray(passage.vectors, dtype=np.float32) @ claim_vector) if claim_vector is not None else np.zeros(len(spans))
    best: Support | None = None
    best_key: tuple[float, int, float] | None = None
    for first in range(len(spans)):
        for size in range(1, policy.window + 1):
            last = first + size - 1
            if last >= len(spans):
                break
            start, end = int(spans[first][0]), int(spans[last][1])
            cover = coverage(text[start:end], dict(claim_weights))
            meaning = float(np.max(cosines[first : last + 1])) if claim_vector is not None else 1.0
            # Most coverage; on a tie the shorter window (the quote stays as short as what backs the claim), then meaning.
            key = (round(cover, 4), -size, round(meaning, 4))
            if best_key is None or key > best_key:
                best, best_key = Support(number - 1, start, end, round(cover, 4), round(meaning, 4)), key
    return best


def verify_sentence(sentence: str, passages: Sequence[ReadPassage], claim_weights: Mapping[str, float],
                    claim_vector: np.ndarray | None, policy: VerifyPolicy = DEFAULT_VERIFY, question: str = "") -> Verdict:
    """Keep a generated sentence only when the passages it cites hold its facts and back its words and meaning.

    `claim_weights`: idf of the sentence's content words (`tokenize`), from the index; `claim_vector`: the
    sentence embedded as a query (None checks words only); `question`: a sentence that only repeats its words
    says nothing (SmolLM2 restates the question; the passage then "supports" it)."""
    text = strip_markers(sentence)
    cited = markers(sentence)
    if is_decline(sentence):
        return Verdict(sentence, text, cited, False, "het model vond geen antwoord in de passages", decline=True)
    valid = [n for n in cited if 1 <= n <= len(passages)]
    attributed = not cited and policy.attribute_uncited
    if attributed:
        valid = list(range(1, len(passages) + 1))
    elif not cited:
        return Verdict(sentence, text, cited, False, "zonder bronverwijzing")
    if not valid:
        return Verdict(sentence, text, cited, False, f"verwijst naar een passage die er niet is ({', '.join(f'[{n}]' for n in cited)})")
    terms = set(tokenize(text))
    if len(terms) < policy.min_content_words or not can_answer(text):  # "Vraag 1:", a heading, a question
        return Verdict(sentence, text, cited, False, "geen bewering om te controleren")
    if question and not terms - set(tokenize(question)):
        return Verdict(sentence, text, cited, False, "herhaalt alleen de vraag")
    windows = [w for n in valid if (w := best_window(claim_weights, claim_vector, passages[n - 1], n, policy)) is not None]
    windows.sort(key=lambda w: (w.coverage, w.meaning), reverse=True)
    if attributed:  # the one passage that backs it best, as if the model had cited it
        valid = [windows[0].passage + 1] if windows else []
        windows = windows[:1]
    grounded: set[str] = set()
    for n in valid:
        grounded |= source_facts(passages[n - 1].hit.passage.text + " " + header(passages[n - 1]))
    missing = tuple(fact for fact in facts(sentence) if fact not in grounded)
    backing = tuple(w for w in windows if w.coverage >= policy.min_coverage and w.meaning >= policy.min_meaning)
    scores = {"coverage": windows[0].coverage, "meaning": windows[0].meaning} if windows else {}
    if missing:
        shown = ", ".join(f"'{fact}'" for fact in missing[:3])
        where = "de best passende passage (zonder bronverwijzing)" if attributed else "de geciteerde passage"
        return Verdict(sentence, text, cited, False, f"{shown} staat niet in {where}", tuple(windows[:1]), missing, scores=scores)
    if not backing:
        reason = "geen passage ondersteunt deze zin (zonder bronverwijzing)" if attributed else "de geciteerde passage ondersteunt deze zin niet"
        return Verdict(sentence, text, cited, False, reason, tuple(windows[:1]), scores=scores)
    return Verdict(sentence, text, cited, True, None, backing, scores=scores, attributed=attributed)
