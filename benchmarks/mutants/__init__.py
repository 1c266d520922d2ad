"""The mutation catalogue: realistic student bugs as small edits to layer sources.

Each :class:`Mutant` names a source file of this repository (a reference layer module,
the student-style ``examples/layers_correct.py``, or its torch-course counterpart
``examples/torch_layers_correct.py``), an exact snippet in it and its
replacement, the spec the edited layer is checked as, and what the verdict must say: which
gradients fail (or ``"forward"``, or a contract violation ``"contract:<kind>"``), which
names may come with them where chance decides (bugs that are random by nature), the
diagnosis where one applies, and the geometry of the smallest failing case where the bug
only shows for some geometries. :class:`Variant` is the opposite: a correct rewrite that
must pass. :func:`run` checks one edited file through the path a user takes: the worker
process and the generated cases of ``gradcheck check``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from gradcheck.candidate import Outcome
from gradcheck.discover import Match
from gradcheck.isolation import check_isolated
from gradcheck.kinds import ViolationKind
from gradcheck.models import MODEL_NAMES
from gradcheck.options import CheckOptions
from gradcheck.specs import get_spec

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0
DEFAULT_OPTIONS = CheckOptions(mode="directional", budget=30.0)


@dataclass(frozen=True)
class Edit:
    """One textual edit of a source file; ``old`` must occur exactly once. ``also`` holds
    further ``(old, new)`` pairs, each replaced wherever it occurs (at least once), for a
    change that touches several places (a parameter renamed where it is made and used).

    A ``spec`` that is a model's label (``FullyConnectedNet(batchnorm)``) checks that model
    in that configuration; its source is edited inside a copy of its package."""

    name: str
    source: str
    old: str
    new: str
    spec: str
    functions: tuple[str, str | None] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # "torch": a class of the torch course (EECS 498/598), ``functions`` its methods
    # ("MaxPool.forward", "MaxPool.backward"), checked under the class name as spec ``spec``;
    # "torch_model": a model of that course, ``spec`` its label ("DeepConvNet(batchnorm)")
    kind: str = "layer"
    also: tuple[tuple[str, str], ...] = ()
    # the file checked, when it is not the edited source but a file of its package that
    # imports it (a model whose layers.py is edited)
    checked: str | None = None

    def edited(self) -> str:
        text = (ROOT / self.source).read_text()
        count = text.count(self.old)
        if count != 1:
            raise ValueError(f"{self.name}: the snippet occurs {count} times in {self.source}")
        text = text.replace(self.old, self.new)
        for old, new in self.also:
            if old not in text:
                raise ValueError(f"{self.name}: the snippet {old!r} is not in {self.source}")
            text = text.replace(old, new)
        return text

    @property
    def is_model(self) -> bool:
        return self.kind == "torch_model" or self.spec.split("(")[0] in MODEL_NAMES

    def match(self) -> Match:
        """The functions to check: given, or the spec's first pair the edited file defines."""
        if self.functions and self.kind == "torch":
            owner = self.functions[0].rpartition(".")[0]
            return Match(owner, *self.functions, kind="torch", config=self.spec)
        if self.is_model:
            name, _, config = self.spec.partition("(")
            kind = "torch_model" if self.kind == "torch_model" else "model"
            return Match(self.spec, name, None, kind=kind, config=config.rstrip(")"))
        if self.functions:
            return Match(self.spec, *self.functions)
        text = self.edited()
        names = get_spec(self.spec).names
        defined = [(f, b) for f, b in names if f"def {f}(" in text and (b is None or f"def {b}(" in text)]
        forward, backward = (defined or names)[0]
        return Match(self.spec, forward, backward)


@dataclass(frozen=True)
class Mutant(Edit):
    """A bug: the verdict must fail, naming every name in ``expect`` and nothing outside
    ``expect | may``.

    ``may`` is for bugs whose symptoms are random by nature: a mask redrawn from an
    unseeded generator agrees with the forward's by chance on a small case, so whether a
    gradient also differs there, or the draws happen to look like a backward nonlinear in
    dout, varies from run to run; that the layer is nondeterministic does not.
    """

    expect: frozenset[str] = frozenset()
    diagnosis: str | None = None
    geometry: str | None = None
    may: frozenset[str] = frozenset()

    def named_right(self, failing: frozenset[str]) -> bool:
        """Whether ``failing`` (the names a verdict gives) is what this mutant must get."""
        return self.expect <= failing <= self.expect | self.may

    def expectation(self) -> str:
        return f"{sorted(self.expect)}" + (f" (perhaps with {sorted(self.may)})" if self.may else "")


@dataclass(frozen=True)
class Variant(Edit):
    """A correct rewrite: the verdict must pass (a note is fine, a warning is not)."""


@dataclass(frozen=True)
class Warned(Edit):
    """A correct rewrite with a hazard (a write into dout, another year's convention): the
    verdict must pass, with exactly the warnings ``expect`` (kinds), whose text contains
    ``diagnosis``."""

    expect: frozenset[ViolationKind] = frozenset()
    diagnosis: str | None = None


@dataclass
class Result:
    edit: Edit
    outcome: Outcome

    @property
    def failing(self) -> frozenset[str]:
        o = self.outcome
        # "-": not judged; after a forward that failed, that is no separate finding
        skipped = ("ok", "-") if o.forward == "FAILED" else ("ok",)
        names = {g for g, v in o.gradients.items() if v not in skipped}
        if o.forward == "FAILED":
            names.add("forward")
        names |= {f"contract:{kind}" for kind in o.contract}
        if o.error:
            names.add("error")
        return frozenset(names)

    @property
    def warned(self) -> frozenset[str]:
        return frozenset(w["kind"] for w in self.outcome.warnings)

    @property
    def text(self) -> str:
        o = self.outcome
        return "\n".join([o.error, o.forward_message, o.report_text, *o.notes,
                          *(w["message"] for w in o.warnings)])

    @property
    def verdict_right(self) -> bool:
        """The mutant is caught and named right, the variant passes, the warned rewrite
        passes with exactly its warnings."""
        if isinstance(self.edit, Variant):
            return self.outcome.passed and not self.warned
        if isinstance(self.edit, Warned):
            w = self.edit
            return (self.outcome.passed and self.warned == w.expect
                    and (w.diagnosis is None or w.diagnosis in self.text))
        if not isinstance(self.edit, Mutant):
            raise TypeError(f"not a catalogue entry: {self.edit!r}")
        m = self.edit
        return (
            not self.outcome.passed
            and m.named_right(self.failing)
            and (m.diagnosis is None or m.diagnosis in self.text)
            and (m.geometry is None or m.geometry in (self.outcome.failing_case or ""))
        )


def _in_package(edit: Edit, tmp: Path) -> tuple[Path, Path]:
    """A copy of the package ``edit.source`` belongs to, in ``tmp``; the paths of the source
    and of the checked file in it (a model imports its layers from the package: ``from
    ..layers import *``)."""
    source = ROOT / edit.source
    root = source.parent
    while (root.parent / "__init__.py").exists():
        root = root.parent
    shutil.copytree(root, tmp / root.name, ignore=shutil.ignore_patterns("__pycache__"))
    checked = ROOT / (edit.checked or edit.source)
    return tmp / root.name / source.relative_to(root), tmp / root.name / checked.relative_to(root)


def run(edit: Edit, directory: Path | None = None) -> Result:
    """Write the edited source to a file and check it as ``gradcheck check`` would."""
    digest = hashlib.sha1(edit.name.encode()).hexdigest()[:10]
    # the checked code may write into its folder (the forged-results test does): not our crash
    with tempfile.TemporaryDirectory(prefix="gradcheck-mutant-", dir=directory,
                                     ignore_cleanup_errors=True) as tmp:
        path = Path(tmp) / f"layers_{digest}.py"
        path, checked = _in_package(edit, Path(tmp)) if edit.is_model else (path, path)
        path.write_text(edit.edited())
        options = CheckOptions.build(DEFAULT_OPTIONS, **edit.options)
        outcome = check_isolated(str(checked), edit.match(), options, TIMEOUT)
    return Result(edit, outcome)


class Catalogue(NamedTuple):
    mutants: list[Mutant]
    variants: list[Variant]
    warned: list[Warned]


def catalogue() -> Catalogue:
    """Every mutant, variant and warned rewrite of every family module in this package."""
    from benchmarks.mutants import families

    mutants: list[Mutant] = []
    variants: list[Variant] = []
    warned: list[Warned] = []
    for module in families.MODULES:
        mutants += module.MUTANTS
        variants += module.VARIANTS
        warned += getattr(module, "WARNED", [])
    names = [e.name for e in [*mutants, *variants, *warned]]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate catalogue names: {sorted(duplicates)}")
    return Catalogue(mutants, variants, warned)
