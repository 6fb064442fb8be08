"""The index in Milvus: letters, passages (vectors + BM25 with Milvus's Dutch analyzer), sentences, term statistics.

The same pymilvus code runs against Milvus Lite (`milvus-lite:PATH`, a file; the real Milvus server binary as a
child process of this one) and a Milvus server (`milvus://HOST:PORT`). Collections of one generation, named
`{prefix}_{generation}_{kind}`:

    letters    a letter's text in parts of TEXT_PART characters (a VARCHAR holds 64 KB) and its metadata + content hash
    passages   row (the passage's position), offsets, section, page; `words` analysed by ANALYZER into a BM25 sparse
               vector; the dense vector; date, dossier, type for filters
    sentences  each passage's sentence spans and in-context vectors (what the reader reads)
    terms      in how many passages each stemmed word occurs (the reader's idf, exactly as the local index has it)

`{prefix}_meta` holds the manifest of each generation and the row `current`, the live generation's name: a rebuild
writes new collections and then upserts that one row, so readers switch atomically. (Milvus aliases would do the
same on a server, but Milvus Lite 2.5.1 answers UNIMPLEMENTED to create/alter/describe_alias, so the pointer is
a row, which works on both.) A server polls `live_generation` like CURRENT (qa/server/reloader.py).

Letters and passage metadata are loaded into memory when a store opens (the pages and facets list them, and a
passage's text is a slice of its letter); vectors, BM25 and sentences stay in Milvus.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from qa.core.errors import IndexStateError
from qa.core.locks import exclusive
from qa.embed.onnx_runtime import LEGACY_BACKEND
from qa.index import vectors as vector_index
from qa.index.filters import Filters, dossier_key
from qa.index.fusion import RRF_K
from qa.index.generations import BUILD_FOLDER, FORMAT_VERSION, KEEP_GENERATIONS, IndexBusy, IndexOutdated, by_score, letters_summary
from qa.index.lexical import idf, tokenize
from qa.index.location import Location
from qa.ingest.chunking import CHUNKER_VERSION, Passage
from qa.ingest.letter import Letter
from qa.ingest.ministries import sender_matches

warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)  # milvus-lite 2.5 imports it
os.environ.setdefault("RUST_LOG", "warn")  # the Milvus binary's text indexer logs every commit at INFO
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException  # noqa: E402

for _logger in ("pymilvus", "pymilvus.milvus_client"):  # it logs every failed call; ours become one clear IndexStateError
    logging.getLogger(_logger).setLevel(logging.CRITICAL)

# What Milvus's BM25 reads: our tokens (`qa.index.lexical.tokenize`: folded, no stop words, Dutch-stemmed), split at spaces, so
# its ranking is the local one and both stores give the same top results. Milvus's own Dutch analyzer (DUTCH_ANALYZER,
# which the store does not use) stems differently: it is Snowball's original (Porter) Dutch stemmer, ours is Snowball
# 3's ("maatregelen" -> "maatregel" there, "maatregeel" here; "registratie" / "registreer"), and running it over our
# stems merges words ("volgens" -> our "volgen" -> its "volg", the stem of "volgt"): 38 passages matched instead of 34.
ANALYZER = {"tokenizer": "whitespace"}
DUTCH_ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stemmer", "language": "dutch"}]}
BM25_K1, BM25_B = 1.2, 0.75  # as qa/index/lexical.py gives bm25s; Milvus's scores are bm25s's times (k1 + 1)
INSERT_BATCH = 1_000  # rows a request: 100 k rows in ~25 s; batches of 5,000 were ~100x slower (issue 18, measured)
MAX_RESULTS = 16_384  # Milvus's largest limit (topk, and offset + limit of a query)
TEXT_PART = 16_000  # characters of a letter a row: at most 64,000 bytes of UTF-8, within VARCHAR's 65,535
MAX_VARCHAR = 65_535
DUMMY = "dummy"  # Milvus wants a vector field in every collection; letters, terms and meta have a 2-d zero one
SENTENCE_CACHE = 4_096  # passages whose sentences a store keeps (the reader reads ~10 an answer; Kamervragen pairs more)
CONNECT_TIMEOUT = 10.0  # seconds to reach a Milvus server before saying it is unreachable

_clients: dict[str, MilvusClient] = {}


def client(location: Location) -> MilvusClient:
    """One connection per store and process (Milvus Lite allows one process per file)."""
    key = str(location)
    if key not in _clients:
        try:
            if location.kind == "milvus-lite":
                Path(location.target).parent.mkdir(parents=True, exist_ok=True)
                _clients[key] = MilvusClient(location.target)
            else:
                _clients[key] = MilvusClient(uri=location.target, timeout=CONNECT_TIMEOUT)
        except (MilvusException, OSError, RuntimeError) as error:
            if location.kind == "milvus-lite":
                raise IndexStateError(f"cannot open the Milvus Lite database {location.target}: {_reason(error)} (Milvus Lite serves one "
                                      "process a file: is another qa serve or qa index using it? For more, use a Milvus server)") from error
            raise IndexStateError(f"cannot reach the Milvus server at {location.target}: {_reason(error)}") from error
    return _clients[key]


def _reason(error: BaseException) -> str:
    return str(getattr(error, "message", "") or error).splitlines()[0][:300]


def _name(location: Location, generation: str, kind: str) -> str:
    return f"{location.prefix}_{generation.replace('-', '_')}_{kind}"


def _meta(location: Location) -> str:
    return f"{location.prefix}_meta"


def _literal(value: str) -> str:
    """A string literal of a Milvus expression."""
    clean = "".join(char for char in value if char.isprintable())
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


NOTHING = "row < 0"  # an expression no passage passes


def expression(filters: Filters, letters: Mapping[str, Letter]) -> str:
    """The filters as a Milvus expression on the passages: the one place they are translated. Dates, dossier and type
    are fields of each passage; the sender rule is qa.ingest.ministries' (a person, an office, a ministry of its time), so
    it is applied to the letters and goes to Milvus as their ids."""
    parts = []
    if filters.date_from:
        parts.append(f"date >= {_literal(filters.date_from)}")  # an undated letter ("") is before every date
    if filters.date_to:
        parts.append(f'date != "" and date <= {_literal(filters.date_to)}')
    if filters.dossier:
        parts.append(f"dossier == {_literal(dossier_key(filters.dossier))}")
    if filters.type:
        parts.append(f"type == {_literal(filters.type)}")
    if filters.sender:
        ids = [letter_id for letter_id, letter in letters.items() if sender_matches(filters.sender, letter.signer, letter.sender)]
        if not ids:
            return NOTHING
        parts.append(f"letter_id in [{', '.join(_literal(letter_id) for letter_id in ids)}]")
    return " and ".join(parts)


# --- reading -------------------------------------------------------------------------------


class TermStats:
    def __init__(self, document_frequency: dict[str, int], size: int) -> None:
        self._document_frequency, self.size = document_frequency, size

    def frequency(self, token: str) -> int:
        return self._document_frequency.get(token, 0)

    def idf(self, token: str) -> float:
        return idf(self._document_frequency.get(token, 0), self.size)


class MilvusStore:
    """A generation in Milvus, as `qa.index.Store`."""

    def __init__(self, location: Location, generation: str, manifest: dict, letters: dict[str, Letter], passages: list[Passage],
                 document_frequency: dict[str, int], mean: np.ndarray) -> None:
        self._location, self.generation, self.manifest = location, generation, manifest
        self.letters, self.passages = letters, passages
        self._terms = TermStats(document_frequency, len(passages))
        self._mean = mean
        self.letter_passages: dict[str, list[int]] = {}
        self.rows: dict[str, int] = {}
        for row, passage in enumerate(passages):
            self.letter_passages.setdefault(passage.letter_id, []).append(row)
            self.rows[passage.id] = row
        self._client = client(location)
        self._passages = _name(location, generation, "passages")
        self._sentences = _name(location, generation, "sentences")
        self._sentence_cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    @property
    def lexical(self) -> TermStats:
        return self._terms

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    @property
    def backend(self) -> str:
        return str(self.manifest.get("backend", LEGACY_BACKEND))

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @property
    def location(self) -> str:
        return str(self._location)

    def passages_of(self, letter_id: str) -> list[Passage]:
        return [self.passages[row] for row in self.letter_passages.get(letter_id, [])]

    def sentences(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        cached = self._sentence_cache.get(row)
        if cached is None:
            cached = self._cache_sentences(row, self._query(self._sentences, f"row == {int(row)}", ["id", "start", "end", "vector"], limit=MAX_RESULTS))
        return cached

    def sentences_of(self, rows: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        missing = sorted({int(row) for row in rows if row not in self._sentence_cache})
        if missing:  # one query for all of them (the reader reads ~10 passages a question: ~25 ms less than one by one)
            found: dict[int, list[dict]] = {row: [] for row in missing}
            for start in range(0, len(missing), 500):  # ~8 sentences a passage: well within a query's MAX_RESULTS
                batch = missing[start : start + 500]
                for item in self._query(self._sentences, f"row in {batch}", ["id", "row", "start", "end", "vector"], limit=MAX_RESULTS):
                    found[int(item["row"])].append(item)
            for row, items in found.items():
                self._cache_sentences(row, items)
        return [self.sentences(row) for row in rows]

    def _cache_sentences(self, row: int, items: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        items = sorted(items, key=lambda item: item["id"])
        spans = np.asarray([(item["start"], item["end"]) for item in items], dtype=np.int64).reshape(-1, 2)
        vectors = np.asarray([item["vector"] for item in items], dtype=np.float32).reshape(-1, self.dimension).astype(np.float16)
        cached = self._sentence_cache[row] = (spans, vectors)
        while len(self._sentence_cache) > SENTENCE_CACHE:
            self._sentence_cache.popitem(last=False)
        return cached

    def passage_vectors(self, rows: list[int]) -> np.ndarray:
        found: dict[int, Any] = {}
        for start in range(0, len(rows), MAX_RESULTS):
            batch = [int(row) for row in rows[start : start + MAX_RESULTS]]
            for item in self._query(self._passages, f"row in {batch}", ["row", "vector"], limit=len(batch)):
                found[int(item["row"])] = item["vector"]
        return np.asarray([found[int(row)] for row in rows], dtype=np.float32).reshape(-1, self.dimension)

    def mean_vector(self) -> np.ndarray:
        return self._mean

    def dense_ranking(self, query_vector: np.ndarray, filters: Filters, limit: int) -> list[tuple[int, float]]:
        data = [np.asarray(query_vector, dtype=np.float32).reshape(-1).tolist()]
        return self._search(data, "vector", {"metric_type": "IP", "params": self._vector_search_params}, filters, limit, 1.0)

    def lexical_ranking(self, query: str, filters: Filters, limit: int | None) -> list[tuple[int, float]]:
        words = " ".join(tokenize(query))
        if not words:
            return []
        ranked = self._search([words], "sparse", {"metric_type": "BM25"}, filters, limit or MAX_RESULTS, 1.0 / (BM25_K1 + 1))
        return [(row, score) for row, score in ranked if score > 0]

    def native_hybrid(self, query_vector: np.ndarray, query: str, filters: Filters, limit: int, candidates: int = 100) -> list[tuple[int, float]]:
        """Milvus's own hybrid search (`hybrid_search`, RRFRanker k 60: both rankings weigh the same), for comparison with
        `qa.answer.retrieval.search`'s weighted fusion of the same two rankings (eval/compare_stores.py)."""
        from pymilvus import AnnSearchRequest, RRFRanker

        condition = expression(filters, self.letters)
        if condition == NOTHING or not self.passages:
            return []
        requests = [AnnSearchRequest([np.asarray(query_vector, dtype=np.float32).reshape(-1).tolist()], "vector",
                                     {"metric_type": "IP", "params": self._vector_search_params}, candidates, expr=condition or None)]
        words = " ".join(tokenize(query))
        if words:
            requests.append(AnnSearchRequest([words], "sparse", {"metric_type": "BM25"}, candidates, expr=condition or None))
        results = self._client.hybrid_search(self._passages, requests, RRFRanker(RRF_K), limit=limit)
        return [(int(hit["id"]), float(hit["distance"])) for hit in results[0]]

    @property
    def _vector_search_params(self) -> dict[str, int]:
        kind = self.manifest.get("vector_index", "flat")
        return {"nprobe": vector_index.nprobe_for(int(self.manifest["nlist"]))} if kind == "ivf" else {}

    def _search(self, data: list, field: str, params: dict, filters: Filters, limit: int, scale: float) -> list[tuple[int, float]]:
        condition = expression(filters, self.letters)
        if condition == NOTHING or not self.passages:
            return []
        try:
            results = self._client.search(self._passages, data=data, anns_field=field, limit=min(limit, MAX_RESULTS, len(self.passages)),
                                          filter=condition, search_params=params)
        except MilvusException as error:
            raise IndexStateError(f"{self._location}: search failed ({_reason(error)})") from error
        return by_score([(int(hit["id"]), float(hit["distance"]) * scale) for hit in results[0]])

    def _query(self, collection: str, condition: str, output: list[str], limit: int | None = None) -> list[dict]:
        try:
            if limit is not None:
                return list(self._client.query(collection, filter=condition, output_fields=output, limit=limit))
            return list(_iterate(self._client, collection, condition, output))
        except MilvusException as error:
            raise IndexStateError(f"{self._location}: reading {collection} failed ({_reason(error)})") from error

    def info(self) -> dict[str, object]:
        return {
            "folder": str(self._location),
            "model": self.model,
            "backend": self.backend,
            "dimension": self.dimension,
            "built_at": self.manifest["built_at"],
            "letters": len(self.letters),
            "passages": len(self.passages),
            "vector_index": self.manifest.get("vector_index", "flat"),
            **letters_summary(self.letters.values()),
            "size_bytes": os.path.getsize(self._location.target) if self._location.kind == "milvus-lite" else None,  # all generations
            "format_version": self.manifest["format_version"],
            "generation": self.generation,
            "store": self._location.kind,
        }


def _iterate(milvus: MilvusClient, collection: str, condition: str, output: list[str]) -> Iterator[dict]:
    iterator = milvus.query_iterator(collection, batch_size=INSERT_BATCH * 4, filter=condition, output_fields=output)
    try:
        while batch := iterator.next():
            yield from batch
    finally:
        iterator.close()


def live_generation(location: Location) -> str | None:
    milvus = client(location)
    try:
        if not milvus.has_collection(_meta(location)):
            return None
        found = milvus.query(_meta(location), filter='key == "current"', output_fields=["value"], consistency_level="Strong")
    except MilvusException as error:
        raise IndexStateError(f"{location}: cannot read the live generation ({_reason(error)})") from error
    return str(json.loads(found[0]["value"])["generation"]) if found else None


def exists(location: Location) -> bool:
    return live_generation(location) is not None


def load(location: Location) -> MilvusStore:
    """The live generation, read whole except its vectors and sentences; refuses another format or chunker."""
    generation = live_generation(location)
    if generation is None:
        raise no_index_in(location)
    milvus = client(location)
    try:
        for kind in ("letters", "passages", "sentences", "terms"):
            milvus.load_collection(_name(location, generation, kind))  # loaded already, unless the server restarted
        found = milvus.query(_meta(location), filter=f"key == {_literal(generation)}", output_fields=["value"], consistency_level="Strong")
        manifest = json.loads(found[0]["value"])
        if manifest.get("format_version") != FORMAT_VERSION or manifest.get("chunker_version") != CHUNKER_VERSION:
            raise IndexOutdated(f"{location} was built by another version of qa (format {manifest.get('format_version')}, "
                                f"chunker {manifest.get('chunker_version')}; this qa writes format {FORMAT_VERSION}, chunker {CHUNKER_VERSION}); "
                                f"rebuild it with `qa index build PATH ... --store {location}` from its letters", (), manifest.get("model"))
        parts: dict[str, list[tuple[int, str]]] = {}
        records: dict[str, dict] = {}
        for item in _iterate(milvus, _name(location, generation, "letters"), "part >= 0", ["letter_id", "part", "text", "meta"]):
            parts.setdefault(item["letter_id"], []).append((item["part"], item["text"]))
            if item["part"] == 0:
                records[item["letter_id"]] = item["meta"]
        hashes: dict[str, str] = {}
        letters: dict[str, Letter] = {}
        for letter_id in sorted(records, key=lambda key: records[key]["order"]):
            record = dict(records[letter_id])
            hashes[letter_id] = record.pop("content_hash")
            record.pop("order")
            record["page_starts"] = tuple(record["page_starts"])
            letters[letter_id] = Letter(text="".join(text for _, text in sorted(parts[letter_id])), **record)
        passages: list[Passage | None] = [None] * int(manifest["counts"]["passages"])
        for item in _iterate(milvus, _name(location, generation, "passages"), "row >= 0", ["row", "id", "letter_id", "start", "end", "section", "page"]):
            letter = letters[item["letter_id"]]
            passages[item["row"]] = Passage(id=item["id"], letter_id=item["letter_id"], start=item["start"], end=item["end"],
                                            section=json.loads(item["section"]), page=item["page"], text=letter.text[item["start"] : item["end"]])
        frequency = {item["term"]: int(item["df"]) for item in _iterate(milvus, _name(location, generation, "terms"), 'term != ""', ["term", "df"])}
    except IndexOutdated:
        raise
    except (MilvusException, KeyError, IndexError, ValueError, TypeError) as error:
        raise IndexStateError(f"{location}: damaged index ({_reason(error)}); rebuild it with `qa index build --store {location}`") from error
    if any(passage is None for passage in passages) or len(letters) != manifest["counts"]["letters"]:
        raise IndexStateError(f"{location}: damaged index (incomplete {generation}); rebuild it with `qa index build --store {location}`")
    manifest["letters"] = hashes
    mean = np.asarray(manifest.pop("mean_vector"), dtype=np.float32)
    return MilvusStore(location, generation, manifest, letters, [p for p in passages if p is not None], frequency, mean)


def no_index_in(location: Location) -> IndexStateError:
    return IndexStateError(f"no index in {location}; build one with `qa index build --store {location}`")


# --- writing -------------------------------------------------------------------------------


class Target:
    """Where `qa.index.local.update` writes a Milvus generation."""

    def __init__(self, location: Location) -> None:
        self.location = location

    @property
    def checkpoints(self) -> Path:
        """An unfinished build's embedded batches are kept in the local data folder (qa/embed/batches.py)."""
        return self.location.data_dir / BUILD_FOLDER

    def lock(self) -> AbstractContextManager[object]:
        """One writer at a time on a Milvus Lite file (a file lock beside it). On a server the writers must take turns:
        one build job (documented in docs/deployment.md)."""
        if self.location.kind != "milvus-lite":
            return nullcontext()
        busy = IndexBusy(f"{self.location} is being updated by another process; try again when it is done")
        return exclusive(Path(self.location.target + ".qa-write.lock"), busy)

    def exists(self) -> bool:
        return exists(self.location)

    def load(self) -> MilvusStore:
        return load(self.location)

    def writer(self, model: str, dimension: int, backend: str) -> Writer:
        return Writer(self.location, model, dimension, backend)

    def no_index(self) -> IndexStateError:
        return no_index_in(self.location)


def _dummy_vector(schema: Any) -> None:
    schema.add_field(DUMMY, DataType.FLOAT_VECTOR, dim=2)


class Writer:
    """Writes a generation's collections batch by batch; `commit` builds the indexes, loads them and swaps `current`."""

    def __init__(self, location: Location, model: str, dimension: int, backend: str) -> None:
        self.location, self.model, self.dimension, self.backend = location, model, dimension, backend
        self.generation = f"gen-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}"
        self.client = client(location)
        self.letters: dict[str, Letter] = {}
        self.rows = 0
        self.sentence_rows = 0
        self.frequency: dict[str, int] = {}
        self.vector_sum = np.zeros(dimension, dtype=np.float64)
        self.sample: list[np.ndarray] = []
        try:
            self._create()
        except MilvusException as error:
            self.abort()
            raise IndexStateError(f"{location}: cannot create the collections ({_reason(error)})") from error

    def _collection(self, kind: str) -> str:
        return _name(self.location, self.generation, kind)

    def _create(self) -> None:
        milvus = self.client
        if not milvus.has_collection(_meta(self.location)):
            schema = milvus.create_schema(auto_id=False)
            schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("value", DataType.VARCHAR, max_length=MAX_VARCHAR)
            _dummy_vector(schema)
            milvus.create_collection(_meta(self.location), schema=schema, index_params=self._dummy_index(), consistency_level="Strong")
        schema = milvus.create_schema(auto_id=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=1024)
        schema.add_field("letter_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("part", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("meta", DataType.JSON)
        _dummy_vector(schema)
        milvus.create_collection(self._collection("letters"), schema=schema)
        schema = milvus.create_schema(auto_id=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("id", DataType.VARCHAR, max_length=1024)
        schema.add_field("letter_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_field("section", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("page", DataType.INT64)
        schema.add_field("words", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True, analyzer_params=ANALYZER)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_field("date", DataType.VARCHAR, max_length=32)
        schema.add_field("dossier", DataType.VARCHAR, max_length=256)
        schema.add_field("type", DataType.VARCHAR, max_length=256)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["words"], output_field_names=["sparse"]))
        milvus.create_collection(self._collection("passages"), schema=schema)
        schema = milvus.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("row", DataType.INT64)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        milvus.create_collection(self._collection("sentences"), schema=schema)
        schema = milvus.create_schema(auto_id=False)
        schema.add_field("term", DataType.VARCHAR, is_primary=True, max_length=1024)
        schema.add_field("df", DataType.INT64)
        _dummy_vector(schema)
        milvus.create_collection(self._collection("terms"), schema=schema)

    def _dummy_index(self) -> Any:
        params = self.client.prepare_index_params()
        params.add_index(DUMMY, index_type="FLAT", metric_type="L2")
        return params

    def _insert(self, collection: str, rows: list[dict]) -> None:
        for start in range(0, len(rows), INSERT_BATCH):
            try:
                self.client.insert(collection, rows[start : start + INSERT_BATCH])
            except MilvusException as error:
                raise IndexStateError(f"{self.location}: writing {collection} failed ({_reason(error)})") from error

    def add_letters(self, letters: Iterable[Letter], hashes: Mapping[str, str]) -> None:
        rows = []
        for letter in letters:
            record = {field.name: getattr(letter, field.name) for field in fields(Letter) if field.name != "text"}
            record |= {"content_hash": hashes[letter.id], "order": len(self.letters)}
            self.letters[letter.id] = letter
            parts = [letter.text[start : start + TEXT_PART] for start in range(0, len(letter.text), TEXT_PART)] or [""]
            rows += [{"key": f"{letter.id}#{i}", "letter_id": letter.id, "part": i, "text": text, "meta": record if i == 0 else {}, DUMMY: [0.0, 0.0]}
                     for i, text in enumerate(parts)]
        self._insert(self._collection("letters"), rows)

    def add_passages(self, passages: Sequence[Passage], vectors: np.ndarray, sentences: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        rows, sentence_rows = [], []
        for passage, vector, (spans, span_vectors) in zip(passages, vectors, sentences):
            letter = self.letters[passage.letter_id]
            text = passage.index_text(letter.title)
            self.frequency.update({token: self.frequency.get(token, 0) + 1 for token in set(tokenize(text) or ["\u2205"])})
            rows.append({"row": self.rows, "id": passage.id, "letter_id": passage.letter_id, "start": passage.start, "end": passage.end,
                         "section": json.dumps(passage.section, ensure_ascii=False), "page": passage.page,
                         "words": _fit(" ".join(tokenize(text))), "vector": vector, "date": letter.date or "",
                         "dossier": dossier_key(letter.dossier), "type": letter.type or ""})
            span_vectors = np.asarray(span_vectors, dtype=np.float16).astype(np.float32).reshape(-1, self.dimension)
            for (start, end), span_vector in zip(np.asarray(spans).reshape(-1, 2).tolist(), span_vectors):
                sentence_rows.append({"id": self.sentence_rows, "row": self.rows, "start": start, "end": end, "vector": span_vector})
                self.sentence_rows += 1
            self.rows += 1
        self.vector_sum += vectors.sum(axis=0, dtype=np.float64)
        if len(self.sample) * INSERT_BATCH < vector_index.TRAIN_PER_LIST * 4_000:  # enough to choose an index by size
            self.sample.append(vectors[:: max(1, len(vectors) // 200)])
        self._insert(self._collection("passages"), rows)
        self._insert(self._collection("sentences"), sentence_rows)

    def commit(self) -> str:
        milvus = self.client
        kind = vector_index.index_kind(self.rows)
        nlist = vector_index.nlist_for(self.rows)
        try:
            self._insert(self._collection("terms"), [{"term": term, "df": df, DUMMY: [0.0, 0.0]} for term, df in self.frequency.items()])
            for kind_name in ("letters", "passages", "sentences", "terms"):
                milvus.flush(self._collection(kind_name))
            params = milvus.prepare_index_params()
            if kind == "ivf":
                params.add_index("vector", index_type="IVF_FLAT", metric_type="IP", params={"nlist": nlist})
            else:
                params.add_index("vector", index_type="FLAT", metric_type="IP")
            params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
            milvus.create_index(self._collection("passages"), params)
            params = milvus.prepare_index_params()
            params.add_index("vector", index_type="FLAT", metric_type="IP")
            milvus.create_index(self._collection("sentences"), params)
            for kind_name in ("letters", "terms"):
                milvus.create_index(self._collection(kind_name), self._dummy_index())
            for kind_name in ("letters", "passages", "sentences", "terms"):
                milvus.load_collection(self._collection(kind_name))
            manifest = {
                "format_version": FORMAT_VERSION, "chunker_version": CHUNKER_VERSION, "model": self.model, "backend": self.backend,
                "dimension": self.dimension, "built_at": datetime.now(UTC).isoformat(timespec="seconds"), "counts": {"letters": len(self.letters), "passages": self.rows},
                "vector_index": kind, "nlist": nlist, "mean_vector": (self.vector_sum / max(self.rows, 1)).astype(np.float32).tolist(),
            }
            milvus.upsert(_meta(self.location), [{"key": self.generation, "value": json.dumps(manifest), DUMMY: [0.0, 0.0]}])
            milvus.load_collection(_meta(self.location))
            # The swap: one row, so readers see the old generation or the new one, never a mixture.
            milvus.upsert(_meta(self.location), [{"key": "current", "value": json.dumps({"generation": self.generation}), DUMMY: [0.0, 0.0]}])
        except MilvusException as error:
            raise IndexStateError(f"{self.location}: committing {self.generation} failed ({_reason(error)})") from error
        _collect_garbage(self.location, self.generation)
        return self.generation

    def abort(self) -> None:
        for kind_name in ("letters", "passages", "sentences", "terms"):
            try:
                self.client.drop_collection(self._collection(kind_name))
            except MilvusException:
                pass


def _fit(text: str) -> str:
    """At most MAX_VARCHAR bytes of UTF-8, cut at a word (a passage is ~1,000 characters; this is for a runaway one)."""
    data = text.encode("utf-8")
    if len(data) <= MAX_VARCHAR:
        return text
    return data[: MAX_VARCHAR - 4].decode("utf-8", errors="ignore").rpartition(" ")[0]


def _collect_garbage(location: Location, live: str) -> None:
    """Drop the collections of old generations (the live one and its predecessor stay: a server may still read it) and
    of interrupted builds. Called while holding the write lock."""
    milvus = client(location)
    start = f"{location.prefix}_gen_"
    generations: dict[str, list[str]] = {}
    for name in milvus.list_collections():
        if name.startswith(start):
            generations.setdefault(name[len(location.prefix) + 1 :].rsplit("_", 1)[0], []).append(name)
    keep = {live.replace("-", "_")} | set(sorted(generations)[-KEEP_GENERATIONS:])
    for generation, names in generations.items():
        if generation not in keep:
            for name in names:
                milvus.drop_collection(name)
            milvus.delete(_meta(location), filter=f"key == {_literal(generation.replace('_', '-', 1))}")
