"""The index: letters, passages, their vectors and BM25, in one of two stores.

Bottom to top: `filters`, `lexical` (Dutch BM25), `vectors` (which FAISS index), `fusion` (reciprocal rank),
`location` (which store a string names) and `protocol` (what readers and writers of any store do); `generations`
(the store-neutral update: embed what changed, write a new generation, swap it in); the two stores, `local`
(a folder of FAISS + BM25 generations) and `milvus`; `stores`, the face the layers above use; `facets`.
"""
