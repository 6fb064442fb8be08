"""The index on disk: FAISS vectors, BM25, passages, letters and a manifest.

Layout of an index folder::

    index/CURRENT           name of the live generation (replaced atomically)
    index/gen-<time>/       manifest.json, letters.jsonl, passages.jsonl, vectors.faiss, bm25/,
                            sentence_spans.npy + sentence_vectors.npy (each passage's sentences, for answers)
    index/.lock             held while a build or update writes
    index/.build/           vectors of the batches an unfinished build embedded, so that running it again
                            resumes (qa/embed/batches.py); removed when a change completes

Every change writes a complete new generation and then swaps CURRENT, so a failed or killed
build leaves the previous index untouched and readers never see a half-written one.
"""

from qa.core.errors import IndexStateError
from qa.index.generations import (  # a store's shared constants and errors; callers of the local store find them here too
    BUILD_FOLDER,
    FORMAT_VERSION,
    KEEP_GENERATIONS,
    WRITE_BATCH,
    IndexBusy,
    IndexOutdated,
    Target,
    UpdateSummary,
    by_score,
    letters_summary,
)
from qa.index.local.reading import MMAP_ABOVE_BYTES, POINTER, Index, exists, info, live_generation, load, no_index
from qa.index.local.writing import LocalTarget, LocalWriter, update, write_lock

__all__ = ["BUILD_FOLDER", "FORMAT_VERSION", "KEEP_GENERATIONS", "MMAP_ABOVE_BYTES", "POINTER", "WRITE_BATCH", "IndexBusy", "IndexOutdated",
           "IndexStateError", "Target", "UpdateSummary", "by_score", "letters_summary", "Index", "LocalTarget", "LocalWriter", "load", "exists",
           "live_generation", "no_index", "update", "info", "write_lock"]
