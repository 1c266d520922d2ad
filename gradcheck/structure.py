"""Which outputs each input slice reaches, found at run time, so that one forward
evaluation can estimate many coordinates at once.

Notes
-----
Perturb one slice of an input (every coordinate with index ``i`` along axis ``a``, each by
a different random amount) with a complex step, and read which outputs get a non-zero
imaginary part: outputs that do not depend on the slice are computed from real numbers
only and keep an imaginary part of exactly zero. (Without a complex step, outputs that do
not depend on the slice come out bit-for-bit unchanged.) Projected on each output axis,
the reach of slice ``i`` is a set of indices, and a coordinate reaches at most the *box*
where the projections of all its slices intersect.

Two kinds of probe find that structure. An *identity* test (three probes, whatever the
size) asks whether slice ``i`` reaches only index ``i`` of an output axis of the same
length, as the samples of a batch and the features of an element-wise layer do. A
*banded* probe perturbs each slice alone and records its reach, as needed for the
spatial axes of a convolution; it is made only where the evaluations it saves repay it.

Slices along an axis whose boxes are disjoint in every output get the same colour. The
coordinates that share their colour on every structured axis (and their index on every
other axis) have disjoint boxes: perturb them together, and every output's change belongs
to exactly one of them. The batch axis of most layers is structured this way (one colour:
samples are independent), so are the features of an element-wise layer and the spatial
axes of a convolution (a colour per kernel offset), so a full check costs a few dozen
evaluations instead of one per coordinate.

Every grouped evaluation is verified: an output outside every member's box that changed
means the structure does not hold, and :class:`StructureViolation` sends the caller back
to one coordinate at a time. The caller also re-checks suspects one at a time and ends
with a directional check over all coordinates, so a shortcut can cost time, never a
verdict.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gradcheck.numeric import COMPLEX_STEP, Estimate, evaluate_all
from gradcheck.progress import advance

__all__ = ["Structure", "StructureViolation", "detect", "estimate"]

Evaluate = Callable[[Sequence[np.ndarray]], list[np.ndarray]]
_PROBE_STEP = 1e-4  # relative size of a real-valued probe: far above round-off


class StructureViolation(Exception):
    """A grouped evaluation changed an output no member of the group should reach."""


@dataclass
class Structure:
    """Reach maps of one input, and a colouring of its slices along each structured axis.

    ``reach[a][j][b]`` is a boolean matrix (slices along input axis ``a``) x (indices along
    axis ``b`` of output ``j``), or ``None`` where every slice reaches every index.
    """

    shape: tuple[int, ...]
    reach: dict[int, list[list[npt.NDArray[np.bool_] | None]]]
    colours: dict[int, npt.NDArray[np.intp]]
    probes: int

    @property
    def n_classes(self) -> int:
        count = 1
        for a, m in enumerate(self.shape):
            count *= int(self.colours[a].max()) + 1 if a in self.colours else m
        return count

    def classes(self) -> Iterator[npt.NDArray[np.bool_]]:
        """Boolean masks (input-shaped) of the coordinates estimated together."""
        choices = [
            range(int(self.colours[a].max()) + 1) if a in self.colours else range(m)
            for a, m in enumerate(self.shape)
        ]
        for combo in itertools.product(*choices):
            mask = np.ones(self.shape, dtype=bool)
            for a, c in enumerate(combo):
                along = self.colours[a] == c if a in self.colours else np.arange(self.shape[a]) == c
                view = [1] * len(self.shape)
                view[a] = self.shape[a]
                mask &= along.reshape(view)
            yield mask


def _as_complex(base: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Every input complex, as in every complex-step evaluation (code may not mix dtypes)."""
    return [b.astype(np.complex128) for b in base]


def _reached(
    outputs: list[np.ndarray], reference: list[np.ndarray] | None
) -> list[npt.NDArray[np.bool_]]:
    if reference is None:
        return [np.imag(y) != 0 for y in outputs]
    return [~((y == y0) | (np.isnan(y) & np.isnan(y0))) for y, y0 in zip(outputs, reference)]


def _projections(reached: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.bool_]]:
    axes = range(reached.ndim)
    return [np.asarray(reached.any(axis=tuple(b for b in axes if b != keep))) for keep in axes]


def _greedy_colours(conflict: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    m = len(conflict)
    colours = np.full(m, -1, dtype=np.intp)
    for i in range(m):
        taken = set(colours[:i][conflict[i, :i]].tolist())
        colours[i] = next(c for c in range(m) if c not in taken)
    return colours


class _Prober:
    """Evaluates the layer with chosen slices perturbed; reports what each output reached."""

    def __init__(self, evaluate: Evaluate, base: Sequence[np.ndarray], which: int,
                 rng: np.random.Generator, complex_step: bool) -> None:
        self.evaluate, self.base, self.which, self.rng = evaluate, base, which, rng
        self.complex_step = complex_step
        self.x = base[which]
        self.reference = None if complex_step else evaluate(base)
        self.count = 0 if complex_step else 1

    def reached(self, axis: int, slices: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.bool_]]:
        """Perturb (by random amounts) the slices along ``axis`` where ``slices`` is True."""
        shape = self.x.shape
        view = [1] * len(shape)
        view[axis] = shape[axis]
        where = np.broadcast_to(slices.reshape(view), shape)
        signs = self.rng.choice([-1.0, 1.0], size=shape)
        amount = np.where(where, self.rng.uniform(0.5, 1.5, size=shape) * signs, 0.0)
        point = _as_complex(self.base) if self.complex_step else list(self.base)
        if self.complex_step:
            point[self.which] = self.x + 1j * COMPLEX_STEP * amount
        else:
            point[self.which] = self.x + _PROBE_STEP * amount * np.maximum(1.0, np.abs(self.x))
        self.count += 1
        return _reached(self.evaluate(point), self.reference)


def _identity_axes(prober: _Prober, axis: int, out_shapes: list[tuple[int, ...]]) -> list[int] | None:
    """For each output, an axis on which slice ``i`` of the input reaches only index ``i``.

    Tested with a random split of the slices into two halves, its complement, and another
    random split (proper, non-empty subsets: a probe of every slice would prove nothing):
    every output must change only at the indices of the perturbed slices, along the chosen
    axis. A slice reaching any other index is caught when the split separates the two.
    """
    m = prober.x.shape[axis]
    candidates = [[b for b, n in enumerate(shape) if n == m] for shape in out_shapes]
    if any(not c for c in candidates):
        return None
    first = np.zeros(m, dtype=bool)
    first[prober.rng.permutation(m)[: m // 2]] = True
    second = np.zeros(m, dtype=bool)
    second[prober.rng.permutation(m)[: (m + 1) // 2]] = True
    for subset in (first, ~first, second):
        reached = prober.reached(axis, subset)
        candidates = [
            [b for b in cands if not np.any(_projections(r)[b] & ~subset)]
            for cands, r in zip(candidates, reached)
        ]
        if any(not c for c in candidates):
            return None
    return [c[0] for c in candidates]


def _banded_reach(prober: _Prober, axis: int) -> list[list[npt.NDArray[np.bool_]]]:
    """Probe every slice along ``axis`` alone: per output, per output axis, slices x indices."""
    m = prober.x.shape[axis]
    per_slice = [[_projections(r) for r in prober.reached(axis, np.arange(m) == i)] for i in range(m)]
    return [
        [np.array([per_slice[i][j][b] for i in range(m)]) for b in range(len(per_slice[0][j]))]
        for j in range(len(per_slice[0]))
    ]


def _colour_slices(matrices: list[list[npt.NDArray[np.bool_]]]) -> npt.NDArray[np.intp]:
    m = len(matrices[0][0])
    conflict = np.zeros((m, m), dtype=bool)
    for output in matrices:
        overlap = np.ones((m, m), dtype=bool)
        for mat in output:
            as_int = mat.astype(np.int64)
            overlap &= (as_int @ as_int.T) > 0
        conflict |= overlap
    np.fill_diagonal(conflict, False)
    return _greedy_colours(conflict)


def detect(
    evaluate: Evaluate,
    base: Sequence[np.ndarray],
    which: int,
    rng: np.random.Generator,
    *,
    complex_step: bool,
) -> Structure | None:
    """Find axes of input ``which`` whose slices can be estimated together.

    First, for each axis, whether slice ``i`` reaches only index ``i`` of some output axis
    of the same length (samples of a batch, features of an element-wise or per-feature
    layer): three probes each, whatever the size. Then, along the axes still left, if the
    evaluations saved would repay it, each slice is probed alone and slices whose reach
    never overlaps share a colour (the spatial axes of a convolution). ``None`` when
    nothing is gained.
    """
    x = base[which]
    shape = tuple(x.shape)
    if x.ndim == 0 or x.size < 4:
        return None
    prober = _Prober(evaluate, base, which, rng, complex_step)
    out_shapes = [y.shape for y in evaluate(base)] if complex_step else [
        y.shape for y in (prober.reference or [])]
    reach: dict[int, list[list[npt.NDArray[np.bool_] | None]]] = {}
    colours: dict[int, npt.NDArray[np.intp]] = {}
    for a, m in enumerate(shape):
        if m < 2:
            continue
        axes = _identity_axes(prober, a, out_shapes)
        if axes is not None:
            colours[a] = np.zeros(m, dtype=np.intp)
            reach[a] = [
                [np.eye(m, dtype=bool) if b == axes[j] else None for b in range(len(out))]
                for j, out in enumerate(out_shapes)
            ]
    for a, m in enumerate(shape):
        classes = Structure(shape, reach, colours, prober.count).n_classes
        if a in colours or m < 4 or classes < 4 * m:
            continue
        matrices = _banded_reach(prober, a)
        colour = _colour_slices(matrices)
        if colour.max() + 1 < m:
            colours[a] = colour
            reach[a] = [[None if mat.all() else mat for mat in output] for output in matrices]
    if not colours:
        return None
    found = Structure(shape, reach, colours, prober.count)
    return found if found.n_classes * 2 <= x.size else None


def _box_sums(
    structure: Structure, j: int, values: np.ndarray, selections: dict[int, np.ndarray] | None = None
) -> np.ndarray:
    """Sum ``values`` (shaped like output ``j``) over each coordinate's box.

    Returns an array indexed by the structured input axes. With ``selections`` (one 0/1
    vector per structured axis), returns instead, for every output entry, how many selected
    coordinates' boxes cover it.
    """
    letters = iter(string.ascii_letters)
    out_subs = [next(letters) for _ in range(values.ndim)]
    operands: list[np.ndarray] = [values]
    subscripts = ["".join(out_subs)]
    in_subs = {a: next(letters) for a in structure.colours}
    for a, per_output in structure.reach.items():
        for b, mat in enumerate(per_output[j]):
            if mat is not None:
                operands.append(mat.astype(values.dtype))
                subscripts.append(in_subs[a] + out_subs[b])
        operands.append(
            np.ones(structure.shape[a], dtype=values.dtype) if selections is None
            else selections[a].astype(values.dtype)
        )
        subscripts.append(in_subs[a])
    result = "".join(out_subs) if selections is not None else "".join(in_subs[a] for a in structure.colours)
    return np.einsum(",".join(subscripts) + "->" + result, *operands, optimize=True)


def _changes(evaluate: Evaluate, base: Sequence[np.ndarray], which: int,
             masks: list[Any], step: Any) -> list[list[np.ndarray]]:
    """Per mask, how each output changes when the input's coordinates in the mask move
    together (a complex step, or a central difference over ``step``). All points are
    evaluated first, in one batch when ``evaluate`` can (a layer in the worker process)."""
    x = base[which]
    points = []
    for mask in masks:
        for sign in ((1j,) if step is None else (1.0, -1.0)):
            point = _as_complex(base) if step is None else list(base)
            point[which] = x + sign * (COMPLEX_STEP if step is None else step) * mask
            points.append(point)
    results = evaluate_all(evaluate, points)
    if step is None:
        return [[np.imag(y) / COMPLEX_STEP for y in outputs] for outputs in results]
    return [[(p.astype(np.float64) - q.astype(np.float64)) / 2 for p, q in zip(plus, minus)]
            for plus, minus in zip(results[::2], results[1::2])]


def estimate(
    evaluate: Evaluate,
    base: Sequence[np.ndarray],
    which: int,
    structure: Structure,
    douts: Sequence[np.ndarray],
    method: str,
    *,
    noise: float,
    noise_rel: float,
) -> Estimate:
    """Derivatives of ``L = sum_j <dout_j, y_j>`` for every coordinate of input ``which``.

    ``method`` is ``"complex"`` (one evaluation per colour class) or ``"central"`` (two).
    Raises :class:`StructureViolation` if any evaluation contradicts the structure.
    """
    x = base[which]
    step = None
    if method == "central":
        rel = max(noise_rel, 2.2e-16) ** (1 / 3)
        step = (x + rel * np.maximum(1.0, np.abs(x))) - x
    elif method != "complex":
        raise ValueError(f"grouped estimation supports complex and central, not {method!r}")
    values = np.zeros(structure.shape)
    structured = list(structure.colours)
    masks = list(structure.classes())
    for mask, changes in zip(masks, _changes(evaluate, base, which, masks, step)):
        selections = {
            a: np.asarray(mask.any(axis=tuple(b for b in range(mask.ndim) if b != a))) for a in structured
        }
        total = np.zeros([structure.shape[a] for a in structured])
        for j, (dout, change) in enumerate(zip(douts, changes)):
            covered = _box_sums(structure, j, np.ones_like(change), selections)
            if np.any((change != 0) & (covered == 0)):
                raise StructureViolation(f"output {j} changed outside the predicted reach")
            total = total + _box_sums(structure, j, dout * change)
        index = np.nonzero(mask)
        values[index] = total[tuple(index[a] for a in structured)]
        advance(len(index[0]))
    if step is None:
        return Estimate(values.reshape(-1), np.zeros(values.size))
    return Estimate((values / step).reshape(-1), (noise / step).reshape(-1))
