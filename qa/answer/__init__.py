"""Answering: retrieval over the index, the reader that picks the sentence, extractive and generated answers."""
