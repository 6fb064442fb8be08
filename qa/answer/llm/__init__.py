"""Generated answers from a chat model the user runs, every sentence checked against the passage it cites.

- `client`: the OpenAI-compatible server (settings, timeouts, retries, errors); the only I/O here.
- `prompt`: the Dutch system prompts and numbered passages (pure).
- `verify`: sentence splitting, facts, support and the supporting quote (pure; the heart).
- `generate`: the flow of one answer, streamed as events, with the extractive answer as the fallback.

The extractive answer (qa/answer/answering.py) stays the default and works without any of this.
"""
