"""The family modules of the catalogue (each defines MUTANTS and VARIANTS)."""

from __future__ import annotations

from benchmarks.mutants import basic, conv, normalization, recurrent

MODULES = (basic, conv, normalization, recurrent)
