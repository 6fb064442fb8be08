"""The connection to Milvus (one client per store and process), the collections' names and the settings of the BM25
field: what the reading store and the writer share. Importing this imports pymilvus (the optional `milvus` extra)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from qa.core.errors import IndexStateError
from qa.index.location import Location

warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)  # milvus-lite 2.5 imports it
os.environ.setdefault("RUST_LOG", "warn")  # the Milvus binary's text indexer logs every commit at INFO
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException  # noqa: E402

# pymilvus is imported here, after the two settings above; the store and the writer take its names from this module.
__all__ = ["ANALYZER", "BM25_B", "BM25_K1", "CONNECT_TIMEOUT", "DUMMY", "DUTCH_ANALYZER", "INSERT_BATCH", "MAX_RESULTS", "MAX_VARCHAR", "TEXT_PART",
           "DataType", "Function", "FunctionType", "MilvusClient", "MilvusException", "client", "collection_name", "iterate", "meta_collection", "reason"]

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
                raise IndexStateError(f"cannot open the Milvus Lite database {location.target}: {reason(error)} (Milvus Lite serves one "
                                      "process a file: is another qa serve or qa index using it? For more, use a Milvus server)") from error
            raise IndexStateError(f"cannot reach the Milvus server at {location.target}: {reason(error)}") from error
    return _clients[key]


def close(location: Location) -> None:
    """Close this process's connection to the store, if it has one (a benchmark that starts a store per size)."""
    connection = _clients.pop(str(location), None)
    if connection is not None:
        connection.close()


def reason(error: BaseException) -> str:
    return str(getattr(error, "message", "") or error).splitlines()[0][:300]



def collection_name(location: Location, generation: str, kind: str) -> str:
    return f"{location.prefix}_{generation.replace('-', '_')}_{kind}"


def meta_collection(location: Location) -> str:
    return f"{location.prefix}_meta"



def iterate(milvus: MilvusClient, collection: str, condition: str, output: list[str]) -> Iterator[dict]:
    """All rows of a collection that meet the condition, in batches (a query's limit is MAX_RESULTS)."""
    iterator = milvus.query_iterator(collection, batch_size=INSERT_BATCH * 4, filter=condition, output_fields=output)
    try:
        while batch := iterator.next():
            yield from batch
    finally:
        iterator.close()

