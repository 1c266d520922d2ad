"""The words a check's results are made of, as enums (strings too: ``Status.PASSED ==
"passed"``, so JSON and text show the plain word)."""

from __future__ import annotations

from enum import Enum

__all__ = ["Method", "Status", "Verdict"]


class _Word(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Status(_Word):
    """The verdict on one gradient of one check."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_COMPARED = "not compared"

    @property
    def cell(self) -> str:
        """How tables and per-layer summaries show it: ``ok``, ``FAILED``, ``not compared``."""
        return {"passed": "ok", "failed": "FAILED"}.get(self.value, self.value)


class Verdict(_Word):
    """The verdict on a check or a layer: failures fail, warnings pass (unless strict)."""

    PASSED = "passed"
    WARNING = "warning"
    FAILED = "FAILED"
    ERROR = "ERROR"  # the layer could not be checked: import failure, timeout, crash


class Method(_Word):
    """A numeric method; ``NONE`` when no estimate was made."""

    AUTO = "auto"
    COMPLEX = "complex"
    CENTRAL = "central"
    RICHARDSON = "richardson"
    FORWARD = "forward"
    NONE = "none"
