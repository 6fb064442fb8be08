"""The reader: how well does a sentence, read in its passage, answer the question — and how sure are we?

- Candidates: every sentence of the read passages that can be an answer (never a question, heading,
  letterhead or signature), with cheap features: its similarity to the question read in context
  (e5 token vectors pooled at indexing time), idf-weighted word coverage, the kind of fact asked
  and present, its letter's title and section, its passage's rank.
- The sentence scorer is a weighted sum of those features (`scores`, weights in `AnswerPolicy`).
  A listwise model learned on the Kamervragen pairs did not carry over to letters (see
  docs/reader.md), so the shipped weights are set and measured on the letters' question set.
- The confidence model is learned from real data: logistic regression on the Kamervragen pairs'
  train split (`train/train_reader.py`) over the chosen sentence's score and features and the
  evidence of the whole retrieval (idf mass no passage holds, the dense score relative to the
  corpus mean), calibrated on a part the fit did not see; its reliability table is on the test split.
  It lives in qa/answer/confidence.py; this module makes the candidates and their features.

Everything here is pure: vectors and texts in, scores out. No model run per question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.answer.retrieval import Hit
from qa.index.lexical import tokenize
from qa.ingest.chunking import is_heading

# A question word counts as present in a compound that ends with it when it has at least this many
# letters (stemmed): "kost" in "aanvraagkost"; shorter words ("as", "rit") end too many unrelated words.
COMPOUND_HEAD_MIN = 4

# The kind of fact a question asks for, and what a sentence holding it looks like.
_ASKS = {
    "time": re.compile(r"\b(wanneer|welke datum|(?:op |sinds |vanaf )?welke dag|welke maand|in welk jaar|per wanneer|tot wanneer|hoe lang|welk jaar|welke termijn|vanaf wanneer|op welke termijn|welke periode)\b", re.I),
    "amount": re.compile(r"\b(hoeveel|hoe groot|hoe hoog|welk bedrag|hoe veel|wat kost|wat kosten|hoeveelheid|aantal|welk percentage|hoe duur)\b", re.I),
    # A price, cost or fine asks for a sum of money, not any number (a size, a year, a footnote).
    "money": re.compile(
        r"\b(?:wat|hoeveel)\b[^?]{0,80}?\b(?:kost|kosten|kostte|kostten|gekost)\b|\bwelk bedrag|\bhoeveel (?:euro|geld|gulden)\b"
        r"|\bmet hoeveel euro\b|\bhoe duur\b|\bwelke boete\b|\bhoe hoog (?:is|was|wordt|werd) de (?:boete|prijs|premie|vergoeding|subsidie)\b",
        re.I,
    ),
    "reason": re.compile(r"\b(waarom|om welke reden|waardoor|hoe komt|wat is de reden)\b", re.I),
    # Whether the Kamer adopted a motie: the motie's own text never says ("verzoekt de regering ..." is no vote).
    "vote": re.compile(r"\b(?:motie|moties|amendement|wetsvoorstel)\b[^?]*\b(?:aangenomen|verworpen|aanvaard)\b", re.I),
    "who": re.compile(r"\b(wie|hoe heet|hoe heten|welke naam|welke minister|welk ministerie|welke organisatie|welke instantie|welke partij|welke landen|welk land)\b", re.I),
}
# A keyword query ("registratie drone kosten RDW") names the fact it wants by a noun, not by a question word.
_KEYWORD_ASKS = {
    "money": re.compile(r"\b(kosten|bedrag|budget|prijs|prijzen|tarief|tarieven)\b", re.I),
    "amount": re.compile(r"\b(aantal|afstand|procent|percentage|hoeveelheid)\b", re.I),
    "time": re.compile(r"\b(datum|termijn|deadline|welke jaren)\b", re.I),
}
_QUESTION_START = re.compile(r"^\s*(?:wie|wat|wanneer|waarom|waar|waarmee|waardoor|hoe|hoeveel|welke?|is|zijn|kan|kunnen|mag|mogen|klopt|heeft|hebben|wordt|worden|en|maar)\b", re.I)


KEYWORD_QUERY_WORDS = 8  # the question set's keyword queries have 4-7 words; a sentence without "?" has more


def is_keyword_query(text: str) -> bool:
    return "?" not in text and len(text.split()) <= KEYWORD_QUERY_WORDS and not _QUESTION_START.match(text)


_HAS = {
    "time": re.compile(
        r"\b(\d{1,2}\s+(jan|feb|maa|apr|mei|jun|jul|aug|sep|okt|nov|dec)\w*|(januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december)(\s+\d{4})?"
        r"|(19|20)\d{2}|kwartaal|uiterlijk|voorjaar|najaar|zomer|winter|eind|begin|medio|binnen\s+\w+\s+(dagen|weken|maanden|jaar)|\d+\s+(dagen|weken|maanden|jaar))\b",
        re.I,
    ),
    # A number that is not a day of a date, a year, part of a name ("F-16", "het 998-programma") or of a reference ("2019/1937"),
    # a currency, or a number word.
    "amount": re.compile(
        r"(€|%|\bEUR\b|\beuro\b|\bf\s?\d"
        r"|(?<![A-Za-z]-)(?<!/)\b(?!(?:19|20)\d\d\b)\d[\d.,]*\b(?!/\d)(?!-[A-Za-z])(?!\s+(?:jan|feb|maa|apr|mei|jun|jul|aug|sep|okt|nov|dec|jl\b))"
        r"|\b(miljoen|miljard|procent|duizend|honderd|tientallen|enkele|twee|drie|vier|vijf|zes|zeven|acht|negen|tien|elf|twaalf|vijftien|twintig|dertig|veertig|vijftig|zestig|zeventig|tachtig|negentig|honderden|duizenden|helft|halveren|halvering|verdubbel\w*|verdrievoudig\w*)\b)",
        re.I,
    ),
    "money": re.compile(r"€|ƒ|\b(?:EUR|euro|gulden|Hfl|f\s?\d|miljoen|miljard)\b", re.I),  # "gratis" elsewhere outranked the asked fee
    "reason": re.compile(r"\b(omdat|doordat|vanwege|daarom|reden|teneinde|zodat|aangezien|gezien|met het oog op|als gevolg van|om te"
                         r"|hangt\w*[^.;]{0,80}\bsamen met|houdt[^.;]{0,40}\bverband met|te wijten aan|toe te schrijven aan|het gevolg van|komt door|veroorzaakt)\b", re.I),
    "vote": re.compile(r"\b(aangenomen|verworpen|aanvaard|aanneming|verwerping|stemming|gestemd|ingetrokken)\b", re.I),
    # A person by title ("prof. Koumans", "de heer Kerkhoff") answers a "wie" as well as a minister does.
    "who": re.compile(r"\b(minister|staatssecretaris|kabinet|ministerie|dienst|inspectie|gemeenten?|autoriteit|toezichthouder|[A-Z][a-z]+\s[A-Z][a-z]+|[A-Z]{2,}"
                      r"|(?:prof|dr|mr|ir|drs|ing)\.\s?(?:[A-Z]\.\s?)*[A-Z][a-z]+|(?:de heer|mevrouw|mevr\.)\s+(?:[A-Z]\.\s?)*[A-Z][a-z]+)\b"),
}
# A sentence that leans on the one before it: it opens with a pointing word, or has one among its first
# three words ("Voorbeelden daarvan zijn MST en MDFT.", "Op grond daarvan kan ...").
_ANAPHOR = re.compile(
    r"^(dit|deze|dat|die|hij|zij|ze|het gaat)\b"
    r"|^(?:\S+\s+){0,2}(hiermee|daarmee|daarbij|hiervoor|daarvoor|hierdoor|daardoor|hiervan|daarvan|hierin|daarin)\b",  # not "Ik stel hierbij vast"
    re.I,
)
# An Aanhangsel's block heading, alone on its line: "Vraag 3", "Vraag 3, 4 en 5", "Antwoord 5 en 6",
# "Antwoord 7, 8, 9 10 en 11" (answers that take several questions together list them all).
BLOCK_HEADING = re.compile(r"^(Vraag|Antwoord)\s+(\d+[a-z]?(?:(?:\s*,\s*|\s+en\s+|\s+)\d+[a-z]?)*)\s*$", re.M | re.I)
_BLOCK_NUMBER = re.compile(r"\d+[a-z]?", re.I)


def block_numbers(heading_numbers: str) -> tuple[str, ...]:
    """The question numbers a heading's list names: "5 en 6" -> ("5", "6")."""
    return tuple(number.lower() for number in _BLOCK_NUMBER.findall(heading_numbers))
# The signature that closes a letter ("De Minister van Defensie, A. L ter Beek"): no answer, except to a question
# asking which minister sent the letter ("Welke minister van Defensie bood in 1991 de plannen ... aan?").
_SIGNATURE = re.compile(r"^(?:De|Het)\s+(?:Minister|Staatssecretaris|Minister-President)\b[^.]{0,120},\s*(?:[A-Z]\.\s?)+(?:(?:van|de|der|den|ter|ten)\s+)*[A-Z]")
_ASKS_SIGNER = re.compile(r"\b(?:welke|wie was de)\s+(?:minister|staatssecretaris|bewindspersoon)\b|\bwie\s+(?:schreef|ondertekende|stuurde|bood)\b", re.I)
# Letter heads, addressee, place-and-date lines, signatures and publication furniture, which the
# sentence splitter may join to the first sentence after them.
_LETTERHEAD = re.compile(
    r"\bBRIEF VAN\b|Aan de [Vv]oorzitter van de Tweede Kamer|Tweede Kamer der Staten-Generaal|\bVergaderjaar\s+\d|\bISSN\b"
    r"|(?:'s-Gravenhage|’s-Gravenhage|Den Haag),\s+\d{1,2}\s+\w+\s+\d{4}"
    r"|" + _SIGNATURE.pattern +
    r"|^(?:Vragen van (?:het lid|de leden)|Antwoord van (?:de )?(?:[Mm]inister|[Ss]taatssecretaris))\b"  # an Aanhangsel's head
    r"|https?://|\bwww\.\w"  # footnotes with their links
    # A Kamerstuk's dossier title and number, which an OCR'd head runs together: "Vaststelling van de begroting
    # van de uitgaven ... voor het jaar 1990 Nr. 42" (quoted for "Wat is de norm voor defensie-uitgaven?").
    r"|\bNr\.\s*\d*\s*$|^Vaststelling van de (?:begroting|rekening)\b[^.]*$"
)
# A question told, not answered: "U heeft mij gevraagd ...", "Leden hebben gevraagd wie ...", "is gevraagd naar ...".
_REPORTED_QUESTION = re.compile(
    r"\b(?:heeft|hebben|is|zijn|werd|werden|wordt)\s+(?:(?:mij|ons|u|de regering|het kabinet)\s+)?(?:ge)?vraagd\s+(?:naar|of|wie|wat|wanneer|waarom|hoe|welke|om)\b"
    r"|^U\s+(?:vraagt|vroeg)\b|\bvraagt (?:u|het lid|de leden)\b"
    r"|\b(?:commissie|Kamer|leden|lid)\b[^.;]{0,60}\b(?:heeft|hebben)\s+(?:mij\s+|ons\s+)?verzocht\b",  # the Kamer's request told
    re.I,
)
_ENDS_SENTENCE = re.compile(r"[.!?;:][\"'”’»)]*$")

# What the sentence scorer weighs (`AnswerPolicy.sentence_weights`). Only relative signals: raw
# cosines and BM25 scores differ per corpus and model, a rank and a scaled cosine do not.
FEATURES = (
    "passage_rank",  # 1 / (1 + rank of its passage)
    "coverage",  # idf-weighted share of the question's terms in the sentence
    "fact_match",  # +1 asked kind present, -1 asked and absent, 0 nothing specific asked
    "meaning",  # the in-context cosine scaled from the least (0) to the most (1) similar candidate
    "context_coverage",  # coverage of the question by its letter's title and its section
    "long",  # 1 for a sentence over 400 characters
    "bias",
)


@dataclass(frozen=True)
class ReadPassage:
    """A retrieved passage as the reader sees it: the hit, its stored sentence spans and vectors."""

    rank: int
    hit: Hit
    spans: np.ndarray  # (k, 2) sentence offsets in the letter text
    vectors: np.ndarray  # (k, dimension) in-context sentence vectors
    cosine: float  # question · passage vector
    # (k, 2) what each sentence says, read from (`Passage.sentence_cores`): a motie's clause, whose quote runs
    # on to the end of its dictum. None: the sentences themselves.
    cores: np.ndarray | None = None

    @property
    def core_spans(self) -> np.ndarray:
        return self.spans if self.cores is None else self.cores


@dataclass(frozen=True)
class QuestionView:
    """The question, analysed once: its vector, its terms' idf weights and the kind of fact asked."""

    text: str
    vector: np.ndarray
    weights: dict[str, float]
    asks: tuple[str, ...]
    unit: re.Pattern[str] | None = None  # "Hoeveel kilometer ...": a number in that unit (`asked_count`)
    counts_things: bool = False  # "Hoeveel inspecteurs ...": a sum of money is not the count

    def holds(self, text: str, kinds: Sequence[str] | None = None) -> bool:
        """Does the text state the kind of fact asked (any of `kinds`, by default all asked)?"""
        for kind in self.asks if kinds is None else kinds:
            if kind == "amount" and self.unit:
                if self.unit.search(text):
                    return True
            elif has_fact(kind, _SUM_OF_MONEY.sub(" ", text) if kind == "amount" and self.counts_things else text):
                return True
        return False

    @property
    def asks_signer(self) -> bool:
        """"Welke minister ...?": the letter's signature answers it."""
        return bool(_ASKS_SIGNER.search(self.text))

    @property
    def sum_kinds(self) -> tuple[str, ...]:
        """The asked amount or sum of money, which a sentence either states or not (dates hide in many phrasings)."""
        return tuple(kind for kind in self.asks if kind in ("amount", "money"))

    @property
    def asks_sum(self) -> bool:
        return bool(self.sum_kinds)

    @classmethod
    def of(cls, text: str, vector: np.ndarray, idf: dict[str, float]) -> QuestionView:
        patterns = _KEYWORD_ASKS if is_keyword_query(text) else _ASKS
        asks = tuple(kind for kind, pattern in patterns.items() if pattern.search(text))
        if "money" in asks:  # the narrower kind decides
            asks = tuple(kind for kind in asks if kind != "amount")
        unit, counts_things = asked_count(text) if "amount" in asks else (None, False)
        return cls(text, np.asarray(vector, dtype=np.float32).reshape(-1), idf, asks, unit, counts_things)


@dataclass(frozen=True)
class Candidate:
    passage: int  # index into the read passages
    sentence: int  # index into that passage's spans
    start: int
    end: int
    features: np.ndarray
    cosine: float  # question · sentence read in context
    core_start: int  # what the sentence says (`ReadPassage.cores`), within start-end
    core_end: int


def coverage(text: str, weights: dict[str, float]) -> float:
    """Share of the question's (idf-weighted) content words that occur in a text."""
    total = sum(weights.values())
    if not total:
        return 0.0
    present = set(tokenize(text))
    return sum(weight for term, weight in weights.items() if term in present or _compound_head(term, present)) / total


def _compound_head(term: str, tokens: set[str]) -> bool:
    """Dutch compounds end in their head: "aanvraagkosten" and "registratiekosten" are kinds of "kosten"."""
    return len(term) >= COMPOUND_HEAD_MIN and any(len(token) >= len(term) + 3 and token.endswith(term) for token in tokens)


def is_question(sentence: str) -> bool:
    return sentence.rstrip("\"'”’») ").endswith("?")


def can_answer(sentence: str, signature: bool = False) -> bool:
    """Letter heads, dates, headings, titles and questions are never an answer; a signature only when asked for."""
    if signature and _SIGNATURE.match(sentence) and len(sentence) <= 200:
        return True
    words = sentence.split()
    if len(words) < 4 or is_heading(sentence) or is_question(sentence):
        return False
    if sentence.isupper() or BLOCK_HEADING.match(sentence) or _LETTERHEAD.search(sentence) or _REPORTED_QUESTION.search(sentence):
        return False
    return bool(_ENDS_SENTENCE.search(sentence)) or len(sentence) > 120


def is_title_line(sentence: str, title: str | None) -> bool:
    """The letter's own title (or its start) repeated in the text is a heading, not an answer."""
    words, title_words = sentence.lower().split(), (title or "").lower().split()
    if len(words) < 4 or not title_words:
        return False
    joined, title_joined = " ".join(words), " ".join(title_words)
    return joined in title_joined or (title_joined in joined and len(words) <= len(title_words) + 4)


# Numbers that name rather than count: an article, paragraph, question or Kamerstuk number ("artikel 23 van de
# richtlijn", "Paragraaf 23, achtste lid", "vraag 5", "Kamerstuk 34 919") answered "Hoeveel meldingen ...?".
_REFERENCE = re.compile(
    r"(?:\b(?:artikel(?:en)?|art\.|paragraaf|hoofdstuk|bijlage|onderdeel|nr\.|nummer|vraag|vragen|antwoord|blz\.|pagina|kamerstuk(?:ken)?|richtlijn)|§)"
    r"\s*\d[\d.,/:]*(?:\s\d{3}\b)?[a-z]?"
    r"|\[\s*\d+\s*\]",  # a footnote marker as the Kamervragen print it: "Van Nispen.[6 ]"
    re.I,
)
# A number's digits, dots and commas, at most as long as a real one ("1.234.567.890,12"): unbounded, a run like
# "1.1.1.1..." is read again from each of its digits, and a pattern that fails after it becomes quadratic.
_DIGITS = r"\d[\d.,]{0,20}"
_NUMBER_WORD = rf"(?:{_DIGITS}|een|één|twee|drie|vier|vijf|zes|zeven|acht|negen|tien|elf|twaalf|vijftien|twintig|dertig|veertig|vijftig|honderd|enkele|tientallen|honderden)"
# A length of time is a "wanneer/hoe lang", not a count: "geldig voor de duur van 1 jaar" answered "Hoeveel drones ...?".
_DURATION = re.compile(rf"\b{_NUMBER_WORD}\s+(?:jaar|jaren|maand|maanden|week|weken|dag|dagen|uur|uren|kwartaal|kwartalen|decennium|decennia|eeuw|eeuwen)\b", re.I)
# A sum of money, which does not count things: "100 miljoen euro" answered "Hoeveel inspecteurs ...?".
_SUM_OF_MONEY = re.compile(
    rf"(?:€|ƒ|\bEUR\b|\bf(?=\s?\d))\s?{_DIGITS}(?:\s*(?:miljoen|miljard|mln\.?|mld\.?))?"
    rf"|\b{_DIGITS}\s*(?:(?:miljoen|miljard|mln\.?|mld\.?)\s*)?(?:euro|gulden)\b",
    re.I,
)
# What "hoeveel" asks: the first word after it that is not a modifier ("extra", "Afghaanse", "nieuwe").
_HOW_MANY = re.compile(r"\bhoeveel\s+((?:[\w'-]+\s+){0,3})", re.I)
_MODIFIER = re.compile(r"^(?:extra|minder|meer|nieuwe|andere|verschillende|\w+(?:se|sche|ige|de|te))$", re.I)
# Finite verbs that follow "hoeveel" directly ("Hoeveel kosten ...", "Hoeveel zijn er ..."): no counted noun.
_VERBS_AFTER_HOW_MANY = frozenset(
    "is was zijn waren hebben hadden worden werden moeten moesten kunnen konden zullen zouden mogen willen wilden kosten kostten "
    "betalen betaalden geven gaven krijgen kregen bedragen bedroegen verdienen ontvangen gaan komen staan liggen lopen maken leveren".split()
)
# Units a count can ask for, and how a letter writes them after the number.
_UNITS = {
    "kilometer": r"kilometers?|km", "meter": r"meters?|m", "hectare": r"hectares?|ha", "ton": r"ton|tonnen",
    "kilo": r"kilo'?s?|kg", "liter": r"liters?|l", "megawatt": r"megawatt|MW", "gigawatt": r"gigawatt|GW",
    "procent": r"procent|%", "graden": r"graden|°",
    # "Hoeveel jaar later ...", "Binnen hoeveel tijd ...": a length of time, not any date ("richting 2030").
    "jaar": r"jaar|jaren", "maanden": r"maand|maanden", "weken": r"week|weken", "dagen": r"dag|dagen", "uur": r"uur|uren",
    "tijd": r"jaar|jaren|maand|maanden|week|weken|dag|dagen|uur|uren|kwartaal|kwartalen",
}


def asked_count(question: str) -> tuple[re.Pattern[str] | None, bool]:
    """What a "hoeveel" question counts: a number in its unit for "Hoeveel kilometer ...", and whether it counts
    things ("Hoeveel inspecteurs ...": a plural noun), which a sum of money does not answer."""
    match = _HOW_MANY.search(question)
    if not match:
        return None, False
    words = [word.strip("?.,").lower() for word in match.group(1).split()]
    head = next((word for word in words if not _MODIFIER.match(word)), "")
    if head in _UNITS:
        return re.compile(rf"\b{_NUMBER_WORD}\s?(?:{_UNITS[head]})(?!\w)", re.I), False
    plural = head.endswith(("en", "s")) and head not in _VERBS_AFTER_HOW_MANY
    return None, plural


def has_fact(kind: str, sentence: str) -> bool:
    if kind == "amount":  # a reference or a length of time is not an amount
        sentence = _DURATION.sub(" ", _REFERENCE.sub(" ", sentence))
    return bool(_HAS[kind].search(sentence))


def leans_back(sentence: str) -> bool:
    return bool(_ANAPHOR.match(sentence))


def candidates(question: QuestionView, passages: Sequence[ReadPassage]) -> list[Candidate]:
    """Every sentence of the read passages that can stand as an answer, with its features.

    The features are read from each sentence's core: a motie clause's quote runs on to the end of the dictum,
    and scored whole every clause would hold the request's words and facts (an unrelated motie then answered
    "Hoeveel belasting betaal je in box 3 ...?" with its one clause on "groen beleggen")."""
    raw: list[tuple[int, int, int, int, int, int, list[float], float]] = []
    signature = question.asks_signer  # once per question, not per sentence
    for i, read in enumerate(passages):
        letter, passage = read.hit.letter, read.hit.passage
        context_coverage = coverage(" ".join(filter(None, [letter.title, passage.section])), question.weights)
        cosines = np.asarray(read.vectors, dtype=np.float32) @ question.vector if len(read.spans) else np.zeros(0)
        for j, ((start, end), (core_start, core_end)) in enumerate(zip(read.spans.tolist(), read.core_spans.tolist())):
            sentence = letter.text[start:end]
            if not can_answer(sentence, signature=signature) or is_title_line(sentence, letter.title):
                continue
            core = letter.text[core_start:core_end]
            fact = 0.0
            if question.asks:
                fact = 1.0 if question.holds(core) else -1.0
            features = [1.0 / (1 + read.rank), coverage(core, question.weights), fact, 0.0, context_coverage,
                        1.0 if len(core) > 400 else 0.0, 1.0]  # meaning: scaled below, over all candidates
            raw.append((i, j, start, end, core_start, core_end, features, float(cosines[j])))
    if not raw:
        return []
    lowest, highest = min(item[-1] for item in raw), max(item[-1] for item in raw)
    meaning = FEATURES.index("meaning")
    out = []
    for i, j, start, end, core_start, core_end, features, cosine in raw:
        features[meaning] = (cosine - lowest) / ((highest - lowest) or 1.0)
        out.append(Candidate(i, j, start, end, np.asarray(features, dtype=np.float32), cosine, core_start, core_end))
    return out


def scores(found: Sequence[Candidate], weights: np.ndarray) -> np.ndarray:
    """The sentence scorer: a weighted sum of the features (weights: `AnswerPolicy.sentence_weights`)."""
    if not found:
        return np.zeros(0, dtype=np.float32)
    return np.stack([c.features for c in found]) @ weights
