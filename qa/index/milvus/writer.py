"""Writing a generation to Milvus: its collections batch by batch, then the indexes, the manifest and the swap of the
`current` row (`Writer`, a `qa.index.protocol.StoreWriter`); `Target` is where `qa.index.generations.update` writes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from qa.core.errors import IndexStateError
from qa.core.locks import exclusive
from qa.index import vectors as vector_index
from qa.index.filters import dossier_key
from qa.index.generations import BUILD_FOLDER, FORMAT_VERSION, KEEP_GENERATIONS, IndexBusy
from qa.index.lexical import tokenize
from qa.index.location import Location
from qa.index.milvus.connection import (
    ANALYZER,
    BM25_B,
    BM25_K1,
    DUMMY,
    INSERT_BATCH,
    MAX_VARCHAR,
    TEXT_PART,
    DataType,
    Function,
    FunctionType,
    MilvusException,
    client,
    collection_name,
    meta_collection,
    reason,
)
from qa.index.milvus.expressions import literal
from qa.index.milvus.store import MilvusStore, exists, load, no_index_in
from qa.ingest.chunking import CHUNKER_VERSION, Passage
from qa.ingest.letter import Letter


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
            raise IndexStateError(f"{location}: cannot create the collections ({reason(error)})") from error

    def _collection(self, kind: str) -> str:
        return collection_name(self.location, self.generation, kind)

    def _create(self) -> None:
        milvus = self.client
        if not milvus.has_collection(meta_collection(self.location)):
            schema = milvus.create_schema(auto_id=False)
            schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("value", DataType.VARCHAR, max_length=MAX_VARCHAR)
            _dummy_vector(schema)
            milvus.create_collection(meta_collection(self.location), schema=schema, index_params=self._dummy_index(), consistency_level="Strong")
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
                raise IndexStateError(f"{self.location}: writing {collection} failed ({reason(error)})") from error

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
            milvus.upsert(meta_collection(self.location), [{"key": self.generation, "value": json.dumps(manifest), DUMMY: [0.0, 0.0]}])
            milvus.load_collection(meta_collection(self.location))
            # The swap: one row, so readers see the old generation or the new one, never a mixture.
            milvus.upsert(meta_collection(self.location), [{"key": "current", "value": json.dumps({"generation": self.generation}), DUMMY: [0.0, 0.0]}])
        except MilvusException as error:
            raise IndexStateError(f"{self.location}: committing {self.generation} failed ({reason(error)})") from error
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
            milvus.delete(meta_collection(location), filter=f"key == {literal(generation.replace('_', '-', 1))}")
