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

from qa.index.milvus.connection import ANALYZER, DUTCH_ANALYZER, client, close
from qa.index.milvus.expressions import NOTHING, expression
from qa.index.milvus.store import MilvusStore, TermStats, exists, live_generation, load, no_index_in
from qa.index.milvus.writer import Target, Writer

__all__ = ["ANALYZER", "DUTCH_ANALYZER", "NOTHING", "MilvusStore", "Target", "TermStats", "Writer", "client", "close", "exists", "expression",
           "live_generation", "load", "no_index_in"]
