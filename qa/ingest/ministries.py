"""The ministry register: who sent a letter, in what role, for which ministry.

Senders arrive as the letter head says them ("BRIEF VAN DE MINISTER VAN VOLKSHUISVESTING, RUIMTELIJKE
ORDENING EN MILIEUBEHEER"), as the Tweede Kamer API says them ("Staatssecretaris Van Rij (Financiën –
Fiscaliteit en Belastingdienst), mede namens de Minister voor Buitenlandse Handel en
Ontwikkelingssamenwerking"), in OCR ("Ministervan BinnenlandseZaken") or as the indieners of a motie
("Erkens en Grinwis"). Filters and facets need the ministry, under its official name of the time, and
the source cards the person and role. The first signer is the sender; "mede namens" adds co-senders.

`REGISTER` holds the ministries since the 1970s with their official names, abbreviations, years
and successors; `PORTFOLIOS` the ministers without portfolio ("minister voor ...") and the
department they sit in. Everything here is pure and linear in the sender's length (a hostile
sender of 30,000 spaces costs nothing, issue 12).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

MAX_SENDER = 300  # characters of a sender read; the longest real one (a mede-namens list) is under 200


@dataclass(frozen=True)
class Ministry:
    abbreviation: str  # the usual short form, unique in the register ("VROM", "IenW")
    name: str  # the official name, without "Ministerie van"
    since: int  # the year it got this name
    until: int | None = None  # the year it was renamed or split; None: it still exists
    successor: str | None = None  # abbreviation of what it became
    aliases: tuple[str, ...] = ()  # other spellings and abbreviations (lower case, folded)

    @property
    def label(self) -> str:
        """'Verkeer en Waterstaat (V&W)', 'Defensie': what a filter or a card shows."""
        return self.name if self.abbreviation == self.name else f"{self.name} ({self.abbreviation})"


# Official names and years from the Parlement.com / Rijksoverheid histories of the departments.
REGISTER: tuple[Ministry, ...] = (
    Ministry("AZ", "Algemene Zaken", 1937, aliases=("minister-president",)),
    Ministry("BZ", "Buitenlandse Zaken", 1798, aliases=("buza",)),
    Ministry("BiZa", "Binnenlandse Zaken", 1798, 1998, "BZK", aliases=("biza",)),
    Ministry("BZK", "Binnenlandse Zaken en Koninkrijksrelaties", 1998),
    Ministry("Defensie", "Defensie", 1959, aliases=("def",)),
    Ministry("Financiën", "Financiën", 1798, aliases=("fin", "financien")),
    Ministry("Justitie", "Justitie", 1798, 2010, "VenJ", aliases=("jus",)),
    Ministry("VenJ", "Veiligheid en Justitie", 2010, 2017, "JenV", aliases=("v&j",)),
    Ministry("JenV", "Justitie en Veiligheid", 2017, aliases=("j&v",)),
    Ministry("EZ", "Economische Zaken", 1946, aliases=()),  # 1946-2010 and again since 2024
    Ministry("EL&I", "Economische Zaken, Landbouw en Innovatie", 2010, 2012, "EZ", aliases=("eli",)),
    Ministry("EZK", "Economische Zaken en Klimaat", 2017, 2024, "EZ", aliases=("ezk",)),
    Ministry("KGG", "Klimaat en Groene Groei", 2024),
    Ministry("LenV", "Landbouw en Visserij", 1959, 1989, "LNV", aliases=("l&v",)),
    Ministry("LNV-1989", "Landbouw, Natuurbeheer en Visserij", 1989, 2003, "LNV", aliases=()),
    Ministry("LNV", "Landbouw, Natuur en Voedselkwaliteit", 2003, 2024, "LVVN", aliases=("lnv",)),  # and 2017-2024
    Ministry("LVVN", "Landbouw, Visserij, Voedselzekerheid en Natuur", 2024),
    Ministry("SoZa", "Sociale Zaken", 1952, 1981, "SZW", aliases=()),
    Ministry("SZW", "Sociale Zaken en Werkgelegenheid", 1981, aliases=("szw",)),
    Ministry("CRM", "Cultuur, Recreatie en Maatschappelijk Werk", 1965, 1982, "WVC"),
    Ministry("VoMil", "Volksgezondheid en Milieuhygiëne", 1971, 1982, "WVC", aliases=("volksgezondheid en milieuhygiene",)),
    Ministry("WVC", "Welzijn, Volksgezondheid en Cultuur", 1982, 1994, "VWS"),
    Ministry("VWS", "Volksgezondheid, Welzijn en Sport", 1994, aliases=("vws",)),
    Ministry("OenW", "Onderwijs en Wetenschappen", 1965, 1994, "OCW", aliases=("o&w", "onderwijs en wetenschap")),
    Ministry("OCW", "Onderwijs, Cultuur en Wetenschap", 1994, aliases=("ocenw", "onderwijs, cultuur en wetenschappen")),
    Ministry("VRO-1965", "Volkshuisvesting en Ruimtelijke Ordening", 1965, 1982, "VROM", aliases=()),
    Ministry("VROM", "Volkshuisvesting, Ruimtelijke Ordening en Milieubeheer", 1982, 2010, "IenM", aliases=("vrom",)),
    Ministry("VRO", "Volkshuisvesting en Ruimtelijke Ordening", 2024, aliases=("vro",)),
    Ministry("VenW", "Verkeer en Waterstaat", 1877, 2010, "IenM", aliases=("v&w",)),
    Ministry("IenM", "Infrastructuur en Milieu", 2010, 2017, "IenW", aliases=("i&m",)),
    Ministry("IenW", "Infrastructuur en Waterstaat", 2017, aliases=("i&w", "ienw")),
    Ministry("AenM", "Asiel en Migratie", 2024, aliases=("a&m",)),
    Ministry("KabNA", "Nederlands-Antilliaanse Zaken", 1959, 1998, "BZK", aliases=("nederlands-antilliaanse en arubaanse zaken",)),
)
BY_ABBREVIATION = {ministry.abbreviation: ministry for ministry in REGISTER}

# "Minister voor X" (a minister without portfolio) and the department whose budget and civil service
# they use; also the portfolio abbreviations of the mede-namens lists ("de ministers voor VRO, K&E en BHO").
PORTFOLIOS: dict[str, str] = {
    "ontwikkelingssamenwerking": "BZ",
    "buitenlandse handel en ontwikkelingssamenwerking": "BZ",
    "bho": "BZ",
    "europese zaken": "BZ",
    "volkshuisvesting en ruimtelijke ordening": "BZK",  # 2022-2024 within BZK; "minister van VRO" since 2024
    "vro": "BZK",
    "klimaat en energie": "EZK",
    "k&e": "EZK",
    "natuur en stikstof": "LNV",
    "rechtsbescherming": "JenV",
    "migratie": "JenV",
    "medische zorg": "VWS",
    "langdurige zorg en sport": "VWS",
    "primair en voortgezet onderwijs": "OCW",
    "basis- en voortgezet onderwijs en media": "OCW",
    "armoedebeleid, participatie en pensioenen": "SZW",
    "wonen en rijksdienst": "BZK",
    "nederlands-antilliaanse zaken": "KabNA",
    "nederlands-antilliaanse en arubaanse zaken": "KabNA",
}

ROLE_MINISTER = "minister"
ROLE_STATE_SECRETARY = "staatssecretaris"
ROLE_PRIME_MINISTER = "minister-president"
ROLE_MEMBERS = "Kamerleden"  # the indieners of a motie
ROLE_MEMBER = "Kamerlid"


@dataclass(frozen=True)
class Signer:
    role: str | None  # minister, staatssecretaris, minister-president, Kamerlid, Kamerleden
    ministry: Ministry | None
    person: str | None = None  # "De Jonge", "drs. V.L.W.A. Heijnen", "Erkens en Grinwis"
    portfolio: str | None = None  # what follows the role as the sender says it ("Financiën – Fiscaliteit en Belastingdienst")
    without_portfolio: bool = False  # "minister voor Ontwikkelingssamenwerking": a minister in another's department

    @property
    def description(self) -> str:
        """'Minister De Jonge (Binnenlandse Zaken en Koninkrijksrelaties)', 'Kamerleden Erkens en Grinwis'."""
        role = (self.role or "").capitalize() if self.role not in (ROLE_MEMBERS, ROLE_MEMBER) else self.role
        parts = [part for part in (role, self.person) if part]
        name = self.portfolio if self.without_portfolio and self.portfolio else self.ministry.name if self.ministry else None
        if name:
            parts.append(f"({name})" if self.person else f"{'voor' if self.without_portfolio else 'van'} {name}")
        return " ".join(parts)


def fold(text: str) -> str:
    """Lower case without accents, OCR glue repaired ("Ministervan" -> "minister van"), one space."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(char for char in text if not unicodedata.combining(char)).lower()
    text = re.sub(r"(minister|staatssecretaris)(van|voor)\b", r"\1 \2", text)
    text = text.replace("–", " – ").replace("—", " – ")
    return " ".join(text.split())


def _name_key(name: str) -> str:
    return fold(name).replace(",", "")


# Every official name, alias and abbreviation, folded, to its ministry (the first of a name used twice:
# `_of_year` picks by the letter's year).
_NAMES: dict[str, Ministry] = {}
for _ministry in REGISTER:
    for _key in (_ministry.name, *_ministry.aliases):
        _NAMES.setdefault(_name_key(_key), _ministry)
    _NAMES.setdefault(_name_key(_ministry.abbreviation), _ministry)
_SAME_NAME = {name: [ministry for ministry in REGISTER if ministry.name == name]
              for name in {ministry.name for ministry in REGISTER}
              if sum(ministry.name == name for ministry in REGISTER) > 1}  # "Volkshuisvesting en Ruimtelijke Ordening" 1965-1982, 2024-


def _of_year(ministry: Ministry | None, year: int | None) -> Ministry | None:
    """Of the ministries that bore this name, the one that bore it in `year`."""
    if ministry is None or year is None or ministry.name not in _SAME_NAME:
        return ministry
    return next((m for m in _SAME_NAME[ministry.name] if m.since <= year < (m.until or 10_000)), ministry)


_PORTFOLIO_KEYS = {_name_key(key): value for key, value in PORTFOLIOS.items()}


def _compact(text: str) -> str:
    """Letters only: OCR's hyphens and spaces inside words ("Ruimte-lijke", "Ruimte Lijke", "BinnenlandseZaken") vanish."""
    return "".join(char for char in fold(text) if char.isalpha())


MIN_SIMILARITY = 0.88  # difflib ratio of an OCR'd name to a register name: "Binneimlandse Zaken" 0.94, "Defensie"/"Justitie" 0.62


def ministry_named(text: str | None, portfolio: bool = False, year: int | None = None) -> Ministry | None:
    """The ministry a name or abbreviation stands for ("Verkeer en Waterstaat", "IenW", "Financiën –
    Fiscaliteit en Belastingdienst"); `portfolio`: it followed "minister voor", so a minister without
    portfolio is looked up first; `year`: the letter's, for a name two ministries bore."""
    return _of_year(_named(text, portfolio), year)


def _named(text: str | None, portfolio: bool) -> Ministry | None:
    if not text:
        return None
    key = _name_key(text[:MAX_SENDER])
    key = key.removeprefix("het ").removeprefix("de ").strip(" .,;")
    if portfolio and key in _PORTFOLIO_KEYS:
        return BY_ABBREVIATION[_PORTFOLIO_KEYS[key]]
    if key in _NAMES:
        return _NAMES[key]
    if key in _PORTFOLIO_KEYS:
        return BY_ABBREVIATION[_PORTFOLIO_KEYS[key]]
    return _ocr_named(key, portfolio)


def _ocr_named(key: str, portfolio: bool) -> Ministry | None:
    """The register name a portfolio starts with ("Financiën – Fiscaliteit en Belastingdienst"), compared letters
    only so OCR's hyphens and spaces do not count, the longest first; else the most similar whole name (difflib, on
    at most the name's length plus a few letters: cheap on any input)."""
    import difflib

    compact = _compact(key)
    if not compact:
        return None
    names = _compact_names(portfolio)
    starting = [(name, ministry) for name, ministry in names if len(name) > 3 and compact.startswith(name)]
    if starting:
        return max(starting, key=lambda item: len(item[0]))[1]
    best, best_ratio = None, MIN_SIMILARITY
    for name, ministry in names:
        if len(name) < 6:
            continue
        ratio = difflib.SequenceMatcher(None, compact[: len(name) + 3], name, autojunk=False).ratio()
        if ratio > best_ratio:
            best, best_ratio = ministry, ratio
    return best


@lru_cache(maxsize=2)
def _compact_names(portfolio: bool) -> tuple[tuple[str, Ministry], ...]:
    names = [(_compact(name), ministry) for name, ministry in _NAMES.items()]
    portfolios = [(_compact(name), BY_ABBREVIATION[value]) for name, value in _PORTFOLIO_KEYS.items()]
    return tuple(portfolios + names if portfolio else names + portfolios)


# "minister", "ministers", "staatssecretaris(sen)", "minister-president" at the start of an office.
_ROLE = re.compile(r"(minister-president|ministers?|staatssecretaris(?:sen)?)\b\s*(?:,\s*)?", re.IGNORECASE)
_OFFICE_SPLIT = re.compile(
    r",?\s+en\s+(?:van\s+)?(?:de\s+|het\s+)?(?=(?:minister|staatssecretaris)\b)|\s+en\s+van\s+(?:de\s+)?", re.IGNORECASE)
_CO_SENDERS = re.compile(r",?\s*\bmede\s+namens\s+", re.IGNORECASE)
_PARENS = re.compile(r"\(([^()]*)\)")
_MOTION_SPLIT = re.compile(r"\s*(?:,|\ben\b|\bc\.s\.?)\s*")
_GLUED = re.compile(r"(minister|staatssecretaris)(van|voor)\b", re.IGNORECASE)
_HYPHENATED_ROLE = re.compile(r"\b(minis|staatssecre|staatsse|secre)-\s?(ter|taris|cretaris)\b", re.IGNORECASE)
_LEADING_ARTICLE = re.compile(r"^(?:de|het)\s+", re.IGNORECASE)


def _prepare(sender: str) -> str:
    """One space, at most MAX_SENDER characters, OCR glue undone ("Ministervan" -> "Minister van")."""
    text = " ".join(sender[: MAX_SENDER * 4].split())[:MAX_SENDER]
    return _GLUED.sub(r"\1 \2", _HYPHENATED_ROLE.sub(r"\1\2", text))


_MOTION_TITLE = re.compile(r"\bMotie\s+van\s+(?:het\s+lid|de\s+leden)\s+(?P<who>.{1,200}?)(?:\s+(?:over|ter|inzake|betreffende)\b|$)",
                           re.IGNORECASE)


def signers(sender: str | None, letter_type: str | None = None, title: str | None = None, year: int | None = None) -> tuple[Signer, ...]:
    """Who signed: the sender first, then the co-senders of "mede namens" and of joint letters. A motie's
    indieners come from its title ("Motie van de leden Bromet en Holman over ...") when it names them all."""
    if letter_type == "motie" and title and (named := _MOTION_TITLE.search(title[:MAX_SENDER * 2])):
        return (_motion_signer(_prepare(named["who"])),)
    if not sender or not sender.strip():
        return ()
    text = _prepare(sender)
    if letter_type == "motie":
        return (_motion_signer(text),)
    main, *co = _CO_SENDERS.split(text, maxsplit=1)
    found = _offices(main, year=year)
    for part in co:
        found += _offices(part, co_list=True, year=year)
    return tuple(found)


def first_signer(sender: str | None, letter_type: str | None = None, title: str | None = None) -> Signer | None:
    found = signers(sender, letter_type, title)
    return found[0] if found else None


def _motion_signer(sender: str) -> Signer:
    if fold(sender).startswith("tweede kamer"):
        return Signer(ROLE_MEMBERS, None, None)
    names = [name for name in _MOTION_SPLIT.split(sender) if name]
    role = ROLE_MEMBER if len(names) == 1 and "c.s" not in sender else ROLE_MEMBERS
    return Signer(role, None, sender.strip(" ,"))


def _offices(text: str, co_list: bool = False, year: int | None = None) -> list[Signer]:
    """The signers of one part of a sender: "minister van x en van y", "minister De Jonge (x)",
    "de ministers voor VRO, EZK en BHO" (a list of abbreviations, each its own signer)."""
    result: list[Signer] = []
    role: str | None = None
    for piece in _OFFICE_SPLIT.split(text):
        piece = _LEADING_ARTICLE.sub("", piece.strip(" ,."))
        if not piece:
            continue
        if match := _ROLE.match(piece):
            role = _role(match.group(1))
            piece = piece[match.end():]
        if role == ROLE_PRIME_MINISTER:
            parens = _PARENS.findall(piece)
            result.append(Signer(role, BY_ABBREVIATION["AZ"], parens[0].strip() if parens else None, "Algemene Zaken"))
            continue
        result.extend(_office(piece, role, co_list, year))
    return result


def _role(word: str) -> str:
    word = word.lower()
    if word.startswith("minister-president"):
        return ROLE_PRIME_MINISTER
    return ROLE_STATE_SECRETARY if word.startswith("staatssecretaris") else ROLE_MINISTER


def _office(piece: str, role: str | None, co_list: bool, year: int | None = None) -> list[Signer]:
    """One office: "van X", "voor X", "De Jonge (X)", "van X (drs. V. Heijnen)", "voor VRO, EZK, LNV"."""
    person: str | None = None
    lowered = piece.lower()
    parens = _PARENS.findall(piece)
    after_voor = lowered.startswith("voor ")
    named_first = lowered.startswith(("van ", "voor ")) and (
        not parens or ministry_named(_PARENS.sub("", piece.split(" ", 1)[1]), after_voor) is not None)
    if named_first:  # "van X (drs. V. Heijnen)"; not "Van Huffelen (X)", a person whose name starts with Van
        portfolio = _PARENS.sub("", piece.split(" ", 1)[1]).strip(" ,")
        person = parens[0].strip() if parens else None
    elif parens:
        portfolio = parens[0].strip()
        person = piece.split("(", 1)[0].strip(" ,") or None
    else:
        portfolio = piece
    ministry = ministry_named(portfolio, after_voor, year)
    if ministry is None and co_list and ("," in portfolio or " en " in portfolio):
        names = [name for name in re.split(r",\s*|\s+en\s+", portfolio) if name]
        return [Signer(role, ministry_named(name, after_voor, year), None, name, after_voor) for name in names]
    return [Signer(role, ministry, person, portfolio or None, after_voor and named_first)]


def sender_matches(query: str, signer: Signer | None, sender: str | None = None) -> bool:
    """The one sender filter rule (API, pages, CLI), on a letter's first signer: a facet value
    (`Ministry.label`) or an abbreviation ("IenW", "V&W") matches that ministry only; other text matches
    when it is part of the ministry's official name, of the signer's office ("minister van Defensie",
    "Ontwikkelingssamenwerking") or person, or, without a ministry (moties), of the sender. A co-sender
    does not count: a letter "mede namens" the minister of SZW is IenW's."""
    wanted = _name_key(query[:MAX_SENDER])
    if not wanted:
        return True
    if signer is None:
        return False
    exact = _LABELS.get(wanted) or _ABBREVIATIONS.get(wanted)
    if exact is not None:
        return signer.ministry is exact
    if signer.ministry is None:
        return wanted in _name_key(sender or signer.person or "")
    preposition = "voor" if signer.without_portfolio else "van"
    office = " ".join(part for part in (signer.role, preposition, signer.portfolio or signer.ministry.name, signer.person) if part)
    return wanted in _name_key(signer.ministry.name) or wanted in _name_key(office)


_LABELS = {_name_key(ministry.label): ministry for ministry in REGISTER}
_ABBREVIATIONS = {_name_key(ministry.abbreviation): ministry for ministry in REGISTER} | {
    _name_key(alias): ministry for ministry in REGISTER for alias in ministry.aliases if len(alias) <= 5}


def ministry_label(signer: Signer | None) -> str | None:
    """The facet value of a letter: its first signer's ministry as `Ministry.label`."""
    return signer.ministry.label if signer and signer.ministry else None
