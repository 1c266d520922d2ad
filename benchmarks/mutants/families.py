"""The family modules of the catalogue (each defines MUTANTS and VARIANTS)."""

from __future__ import annotations

from benchmarks.mutants import (
    basic,
    classifiers,
    conv,
    field_patterns,
    models,
    normalization,
    recurrent,
    torch_course,
    torch_models,
)

MODULES = (basic, classifiers, conv, field_patterns, models, normalization, recurrent, torch_course,
           torch_models)
