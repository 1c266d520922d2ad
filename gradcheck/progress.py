"""Progress of a long check: one line on stderr, rewritten in place.

A check in ``mode="full"`` on a large layer estimates every entry, one or two forward
evaluations each: minutes of silence without this. The checker says which gradient it
estimates (:func:`begin`) and the estimators report each batch of entries done
(:func:`advance`); both do nothing unless a :func:`reporting` block is active. The line
reads ``gradcheck affine_forward: dw 12000/307200 entries (4%), 9 s, about 3 min left``
and is cleared when the check ends, so the report prints as usual.

``progress=None`` (the default) shows it only in a terminal or a notebook, and only for a
check that, at the rate it goes, takes more than a few seconds; ``True`` always shows it,
``False`` never.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from time import monotonic
from typing import TextIO

__all__ = ["advance", "begin", "check_progress", "reporting"]

SHOW_AFTER = 0.5  # seconds before anything is shown, and then only for ...
LONG = 3.0  # ... a check projected to take at least this many seconds
_EVERY = 0.25  # seconds between rewrites of the line


class _Reporter:
    def __init__(self, label: str, stream: TextIO, *, always: bool) -> None:
        self.label = label
        self.stream = stream
        self.always = always
        self.started = monotonic()
        self.name = ""
        self.total = 0
        self.done = 0
        self.part_started = self.started
        self.last_write = 0.0
        self.width = 0  # of the line shown, 0 when none is

    def begin(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, total, 0
        self.part_started = monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        now = monotonic()
        if now - self.last_write < _EVERY:
            return
        elapsed = now - self.started
        part = now - self.part_started
        left = part / self.done * max(self.total - self.done, 0) if self.done else 0.0
        if not self.always and (elapsed < SHOW_AFTER or elapsed + left < LONG):
            return
        self.last_write = now
        self._write(self._line(elapsed, left))

    def _line(self, elapsed: float, left: float) -> str:
        done = min(self.done, self.total)
        pct = 100 * done // max(self.total, 1)
        line = (f"gradcheck {self.label}: {self.name} {done}/{self.total} entries ({pct}%), "
                f"{_duration(elapsed)}")
        return line + (f", about {_duration(left)} left" if done < self.total and left >= 1 else "")

    def _write(self, line: str) -> None:
        # "\r" and padding rather than terminal escapes: a notebook shows them too
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def clear(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


_current: ContextVar[_Reporter | None] = ContextVar("gradcheck_progress", default=None)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _interactive(stream: TextIO) -> bool:
    """A terminal, or a Jupyter notebook's output stream."""
    if getattr(stream, "isatty", lambda: False)():
        return True
    return "ipykernel" in sys.modules and type(stream).__module__.startswith("ipykernel")


def check_progress(progress: object) -> None:
    """``TypeError`` naming the argument unless ``progress`` is ``None``, ``True`` or ``False``."""
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress={progress!r} must be True, False or None (show it in a terminal "
                        "or notebook for a long check)")


@contextlib.contextmanager
def reporting(progress: bool | None, label: str, stream: TextIO | None = None) -> Iterator[None]:
    """Within this block, :func:`begin` and :func:`advance` report on ``stream`` (stderr)."""
    stream = stream if stream is not None else sys.stderr
    if progress is False or (progress is None and not _interactive(stream)) or _current.get() is not None:
        yield  # off, or an enclosing check reports already
        return
    reporter = _Reporter(label, stream, always=bool(progress))
    token = _current.set(reporter)
    try:
        yield
    finally:
        _current.reset(token)
        reporter.clear()


def begin(name: str, total: int) -> None:
    """The checker starts estimating ``total`` entries of the gradient ``name``."""
    reporter = _current.get()
    if reporter is not None:
        reporter.begin(name, total)


def advance(count: int = 1) -> None:
    """``count`` more entries are estimated."""
    reporter = _current.get()
    if reporter is not None:
        reporter.advance(count)
