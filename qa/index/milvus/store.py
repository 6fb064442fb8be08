"""Reading a generation in Milvus: letters and passage metadata into memory when it opens, vectors, BM25 and sentences
from Milvus when they are asked for (`MilvusStore`, a `qa.index.protocol.Store`)."""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from qa.core.errors import IndexStateError
from qa.index import vectors as vector_index
from qa.index.filters import Filters
from qa.index.fusion import RRF_K
from qa.index.generations import FORMAT_VERSION, IndexOutdated, ManifestFields, by_score, letters_summary
from qa.index.lexical import idf, tokenize
from qa.index.location import Location
from qa.index.milvus.connection import BM25_K1, MAX_RESULTS, MilvusException, client, collection_name, iterate, meta_collection, reason
from qa.index.milvus.expressions import NOTHING, expression, literal
from qa.ingest.chunking import CHUNKER_VERSION, Passage
from qa.ingest.letter import Letter

SENTENCE_CACHE = 4_096  # passages whose sentences a store keeps (the reader reads ~10 an answer; Kamervragen pairs more)


class TermStats:
    def __init__(self, document_frequency: dict[str, int], size: int) -> None:
        self._document_frequency, self.size = document_frequency, size

    def frequency(self, token: str) -> int:
        return self._document_frequency.get(token, 0)

    def idf(self, token: str) -> float:
        return idf(self._document_frequency.get(token, 0), self.size)


class MilvusStore(ManifestFields):
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
        self._passages = collection_name(location, generation, "passages")
        self._sentences = collection_name(location, generation, "sentences")
        self._sentence_cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    @property
    def lexical(self) -> TermStats:
        return self._terms

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
            raise IndexStateError(f"{self._location}: search failed ({reason(error)})") from error
        return by_score([(int(hit["id"]), float(hit["distance"]) * scale) for hit in results[0]])

    def _query(self, collection: str, condition: str, output: list[str], limit: int | None = None) -> list[dict]:
        try:
            if limit is not None:
                return list(self._client.query(collection, filter=condition, output_fields=output, limit=limit))
            return list(iterate(self._client, collection, condition, output))
        except MilvusException as error:
            raise IndexStateError(f"{self._location}: reading {collection} failed ({reason(error)})") from error

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


def live_generation(location: Location) -> str | None:
    milvus = client(location)
    try:
        if not milvus.has_collection(meta_collection(location)):
            return None
        found = milvus.query(meta_collection(location), filter='key == "current"', output_fields=["value"], consistency_level="Strong")
    except MilvusException as error:
        raise IndexStateError(f"{location}: cannot read the live generation ({reason(error)})") from error
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
            milvus.load_collection(collection_name(location, generation, kind))  # loaded already, unless the server restarted
        found = milvus.query(meta_collection(location), filter=f"key == {literal(generation)}", output_fields=["value"], consistency_level="Strong")
        manifest = json.loads(found[0]["value"])
        if manifest.get("format_version") != FORMAT_VERSION or manifest.get("chunker_version") != CHUNKER_VERSION:
            raise IndexOutdated(f"{location} was built by another version of qa (format {manifest.get('format_version')}, "
                                f"chunker {manifest.get('chunker_version')}; this qa writes format {FORMAT_VERSION}, chunker {CHUNKER_VERSION}); "
                                f"rebuild it with `qa index build PATH ... --store {location}` from its letters", (), manifest)
        parts: dict[str, list[tuple[int, str]]] = {}
        records: dict[str, dict] = {}
        for item in iterate(milvus, collection_name(location, generation, "letters"), "part >= 0", ["letter_id", "part", "text", "meta"]):
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
        for item in iterate(milvus, collection_name(location, generation, "passages"), "row >= 0", ["row", "id", "letter_id", "start", "end", "section", "page"]):
            letter = letters[item["letter_id"]]
            passages[item["row"]] = Passage(id=item["id"], letter_id=item["letter_id"], start=item["start"], end=item["end"],
                                            section=json.loads(item["section"]), page=item["page"], text=letter.text[item["start"] : item["end"]])
        frequency = {item["term"]: int(item["df"]) for item in iterate(milvus, collection_name(location, generation, "terms"), 'term != ""', ["term", "df"])}
    except IndexOutdated:
        raise
    except (MilvusException, KeyError, IndexError, ValueError, TypeError) as error:
        raise IndexStateError(f"{location}: damaged index ({reason(error)}); rebuild it with `qa index build --store {location}`") from error
    if any(passage is None for passage in passages) or len(letters) != manifest["counts"]["letters"]:
        raise IndexStateError(f"{location}: damaged index (incomplete {generation}); rebuild it with `qa index build --store {location}`")
    manifest["letters"] = hashes
    mean = np.asarray(manifest.pop("mean_vector"), dtype=np.float32)
    return MilvusStore(location, generation, manifest, letters, [p for p in passages if p is not None], frequency, mean)


def no_index_in(location: Location) -> IndexStateError:
    return IndexStateError(f"no index in {location}; build one with `qa index build --store {location}`")

