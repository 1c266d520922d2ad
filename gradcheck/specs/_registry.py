"""The registry of layer specs: one source for property tests, the CLI and the plugin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hypothesis import strategies as st

__all__ = ["Case", "Convention", "Spec", "all_specs", "get_spec", "register"]


class Case(NamedTuple):
    """Arguments for one call of a layer, and a description of its geometry."""

    args: tuple[Any, ...]
    geometry: dict[str, Any]

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.geometry.items())


@dataclass(frozen=True)
class Convention:
    """One course year's convention for a layer (what dropout's ``p`` means, group norm's
    gamma shape).

    ``stated`` is a regular expression that finds the convention stated in the student's
    own docstring; ``adapt(spec)`` returns the spec under this convention (its cases,
    reference and forward check). The first convention of a spec is the current course's.
    ``warn=False`` is for a convention that is no hazard (it only rescales a
    hyper-parameter, as the 0.5 of ``0.5 * reg * sum(W**2)``): a layer following it
    consistently passes with a note instead of a ``convention`` warning.
    """

    name: str
    stated: str
    adapt: Callable[[Spec], Spec] | None = None
    warn: bool = True

    def apply(self, spec: Spec) -> Spec:
        return spec if self.adapt is None else self.adapt(spec)


@dataclass(frozen=True)
class Spec:
    """What gradcheck knows about one layer.

    ``forward``/``backward`` are the reference pair (for a loss, ``forward`` is the loss
    function and ``backward`` is ``None``). ``cases(dtype=np.float64, general=True)``
    returns a hypothesis strategy of :class:`Case`: ``general=False`` keeps to the
    contract the CS231n assignment gives for these names (e.g. sizes that divide evenly by
    the stride), ``general=True`` draws every valid geometry. ``names`` lists the
    ``(forward, backward)`` function names a student's file may use for this layer
    (``backward`` is ``None`` for a loss). ``wrt`` names the differentiable arguments, in
    the order backward returns their gradients.

    ``forward_check(case, outputs)`` replaces the comparison of a candidate's forward
    outputs with the reference's where outputs legitimately differ (dropout masks depend
    on the random generator used); it returns a message for a wrong forward, else
    ``None``. ``general`` says whether ``cases(general=True)`` draws geometry beyond the
    CS231n contract; ``without_general(case)`` returns the case with the settings that only
    general geometry has (a pool's padding, a convolution's dilation and groups) removed,
    which tells a layer that ignores them from one that uses them wrongly.

    The course's contract beyond the signature: ``differentiated(case)`` is False for cases
    the course never calls backward on (a test-mode cache: such a backward may refuse, and
    a wrong one there is a warning); ``informative(case)`` is False for failing cases too
    degenerate to show a bug (a statistic over two entries), which the search passes over
    while an informative one can be found; ``state`` names keys the forward writes into
    its dict argument (running statistics), compared with the reference's;
    ``conventions`` are the course years' conventions, the current one first;
    ``prepare(case, forward)`` makes the calls the course makes before such a case with the
    layer under check (a train-mode batch norm before a test-mode one, so that the running
    statistics it reads are the ones the layer itself stored, in its own shape);
    ``probes(dtype)`` are a few fixed mid-sized cases checked besides the generated ones
    (each mode of a layer; enough units for a dropout rate to show), whose failures stand
    only where no generated case fails.
    """

    name: str
    family: str
    kind: str
    forward: Callable[..., Any]
    backward: Callable[..., Any] | None
    cases: Callable[..., st.SearchStrategy[Case]]
    signature: str
    wrt: tuple[str, ...]
    names: tuple[tuple[str, str | None], ...] = ()
    description: str = ""
    forward_check: Callable[[Case, list[Any]], str | None] | None = None
    general: bool = False
    without_general: Callable[[Case], Case] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    differentiated: Callable[[Case], bool] | None = None
    informative: Callable[[Case], bool] | None = None
    state: tuple[str, ...] = ()
    conventions: tuple[Convention, ...] = ()
    prepare: Callable[[Case, Callable[..., Any]], Case] | None = None
    probes: Callable[[Any], list[Case]] | None = None


_REGISTRY: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"a spec named {spec.name!r} is already registered")
    if spec.kind not in ("layer", "loss"):
        raise ValueError(f"spec {spec.name!r}: kind={spec.kind!r} must be 'layer' or 'loss'")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> Spec:
    """The spec called ``name``; ``KeyError`` lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no spec named {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_specs() -> list[Spec]:
    """Every registered spec, in registration order."""
    return list(_REGISTRY.values())
