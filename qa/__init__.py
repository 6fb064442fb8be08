"""Kamerbrieven QA: cited answers to questions about Dutch parliamentary letters."""
