"""Progress of a long job: a bar on a terminal, plain lines everywhere else (a log file, cron, a pipe).

A tqdm bar redraws one line with carriage returns; written to a file it shows up as one line at
the end, so `qa serve > serve.log` of a first start (building the sample index, ~2 minutes) looked
dead until it was done (issue 14). Off a terminal a line is printed at every PROGRESS_STEP of the
work and at least every PROGRESS_SECONDS.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

PROGRESS_STEP = 0.10  # a line at each tenth of the work ...
PROGRESS_SECONDS = 30.0  # ... and one at least this often, so a slow machine's log still shows the job is alive


class Progress(Protocol):
    def update(self, n: int) -> object: ...

    def close(self) -> object: ...


class ProgressLines:
    """Plain progress lines, e.g. "Embedding: 512/1,024 passages (50%), 48 s, 10.7 passages/s, about 48 s left"."""

    def __init__(self, total: int, desc: str, unit: str, write: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, step: float = PROGRESS_STEP, seconds: float = PROGRESS_SECONDS) -> None:
        self.total, self.desc, self.unit, self.clock, self.step, self.seconds = total, desc, unit, clock, step, seconds
        self.write = write or _stderr
        self.done = 0
        self.started = self.last_time = clock()
        self.last_fraction = 0.0
        self.closed = False

    def update(self, n: int) -> None:
        self.done += n
        now, fraction = self.clock(), self.done / self.total if self.total else 1.0
        if fraction >= 1.0 or fraction - self.last_fraction >= self.step - 1e-9 or now - self.last_time >= self.seconds:
            self._line(now, fraction)

    def close(self) -> None:
        if not self.closed and self.last_fraction < 1.0 and self.done:
            self._line(self.clock(), self.done / self.total if self.total else 1.0)
        self.closed = True

    def _line(self, now: float, fraction: float) -> None:
        elapsed = now - self.started
        left = f", about {elapsed / fraction - elapsed:.0f} s left" if 0 < fraction < 1 else ""
        rate = f", {self.done / elapsed:.1f} {self.unit}/s" if elapsed > 0 else ""
        self.write(f"{self.desc}: {self.done:,}/{self.total:,} {self.unit} ({fraction:.0%}), {elapsed:.0f} s{rate}{left}")
        self.last_fraction, self.last_time = fraction, now


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def progress(total: int, desc: str, unit: str, stream: TextIO | None = None) -> Progress:
    """A tqdm bar when `stream` (default stderr) is a terminal, else ProgressLines."""
    stream = stream or sys.stderr
    if stream.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream)
    return ProgressLines(total, desc, unit, write=lambda line: print(line, file=stream, flush=True))


def finer_slices(size: int, total: int, multiple_of: int, step: float = PROGRESS_STEP) -> int:
    """A slice size of at most `size` that reports each `step` of `total`, rounded up to whole batches
    (`multiple_of`), so slicing changes how often progress is told, not which texts share a batch."""
    wanted = max(1, int(total * step))
    return max(multiple_of, min(size, -(-wanted // multiple_of) * multiple_of))
