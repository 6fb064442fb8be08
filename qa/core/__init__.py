"""The bottom layer, imported by every other: errors, input limits, how things are shown, settings, locks, progress.

Nothing here imports another part of qa (docs/architecture.md)."""
