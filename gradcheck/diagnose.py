"""Most-likely causes of a wrong gradient, from its shape or from analytic vs numeric.

Each function returns a sentence addressed to the person who wrote the backward pass, in
terms of their own argument names and shapes, or ``None`` when no known pattern fits.
The patterns are the mistakes of hand-derived backward passes: transposes, a broadcast
that was not summed, ``keepdims``, sign, a factor of the batch size, missing
contributions, and errors confined to some samples, to the border or to stride-aligned
positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["diagnose_overlap", "diagnose_shape", "diagnose_values"]


def _squeezed(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def diagnose_shape(name: str, grad_shape: tuple[int, ...], arg_shape: tuple[int, ...]) -> str:
    """Explain why ``d<name>`` of shape ``grad_shape`` cannot be the gradient of ``name``."""
    g, a = tuple(grad_shape), tuple(arg_shape)
    d = f"d{name}"
    if len(g) == len(a) and any(gd == 0 < ad for gd, ad in zip(g, a)):
        empty = tuple(i for i, (gd, ad) in enumerate(zip(g, a)) if gd == 0 < ad)
        return (
            f"{d} has shape {g}: axes {empty} are empty where {name} has {a}. Slicing the "
            "padding off with [p:-p] gives nothing when p = 0; slice [p:p + H] instead."
        )
    if len(g) == len(a) >= 2 and g == a[::-1]:
        return (
            f"{d} looks transposed: it has shape {g} but {name} has shape {a}. "
            "Check the order and transposes of the matrix product that builds it "
            "(dimension analysis: the gradient always has the shape of its input)."
        )
    if len(g) == len(a) and sorted(g) == sorted(a):
        return (
            f"{d} has the axes of {name} in the wrong order: shape {g} instead of {a}; "
            "check the transpose or the einsum subscripts that build it."
        )
    if _squeezed(g) == _squeezed(a):
        return (
            f"{d} has shape {g} but {name} has {a}: only axes of size 1 differ "
            f"(keepdims or a missing reshape); reshape it to {name}.shape."
        )
    if len(g) > len(a) and g[len(g) - len(a) :] == a:
        lead = g[: len(g) - len(a)]
        axes = tuple(range(len(lead)))
        axis_text = str(axes[0]) if len(axes) == 1 else str(axes)
        return (
            f"{d} has extra leading axes {lead}: {name} was broadcast over them in the "
            f"forward pass, so its gradient must be summed over them "
            f"(np.sum(..., axis={axis_text})); it has shape {g} but {name} has {a}."
        )
    if len(g) == len(a) and all(ad in (gd, 1) for gd, ad in zip(g, a)):
        summed = tuple(i for i, (gd, ad) in enumerate(zip(g, a)) if ad == 1 and gd != 1)
        return (
            f"{d} has shape {g} but {name} has {a}: {name} was broadcast along axes "
            f"{summed}, so its gradient must be summed over them with keepdims=True."
        )
    if int(np.prod(g)) == int(np.prod(a)):
        return (
            f"{d} has the right number of entries but shape {g} instead of {a}; "
            f"reshape it to {name}.shape (was the input flattened in forward?)."
        )
    if len(g) < len(a) and a[len(a) - len(g) :] == g:
        return (
            f"{d} has shape {g} but {name} has {a}: the gradient was summed over axes "
            f"that belong to {name}; keep one entry per entry of {name}."
        )
    return f"{d} must have the shape of {name}, {a}; it has {g}."


def _fit_factor(a: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Least-squares ``c`` in ``a ~ c * n`` and the relative residual of that fit."""
    nn = float(np.vdot(n, n))
    if nn == 0.0:
        return float("nan"), float("inf")
    c = float(np.vdot(n, a)) / nn
    resid = float(np.linalg.norm(a - c * n)) / max(float(np.linalg.norm(a)), 1e-300)
    return c, resid


def _close(c: float, target: float, rel: float = 1e-3) -> bool:
    return bool(abs(c - target) <= rel * abs(target))


def _scale_message(d: str, c: float, batch_size: int | None, shape: tuple[int, ...] = ()) -> str:
    if batch_size and batch_size > 1:
        n = batch_size
        if _close(c, 1.0 / n):
            return (
                f"{d} is 1/{n} of the true gradient (N = {n} is the batch size): the "
                "backward divides by N where the forward does not, or a mean over the "
                "batch was applied twice (a broadcast bias takes the SUM over the batch)."
            )
        if _close(c, float(n)):
            return (
                f"{d} is {n} times the true gradient (N = {n} is the batch size): the "
                "forward averages over the batch but the backward does not divide by N."
            )
    if _close(c, 2.0) or _close(c, 0.5):
        twos = [axis for axis, size in enumerate(shape) if size == 2]
        also = f" (2 is also the length of axis {twos[0]} of its input)" if twos else ""
        return (
            f"{d} is {c:.3g} times the true gradient: a factor of 2 is off{also}; for example "
            "the derivative of x**2 is 2x, and 0.5 * reg * sum(W**2) gives reg * W."
        )
    for axis, size in enumerate(shape):
        if size > 2 and not (axis == 0 and size == batch_size):
            if _close(c, 1.0 / size):
                return (
                    f"{d} is 1/{size} of the true gradient, and {size} is the length of axis "
                    f"{axis} of its input (shape {tuple(shape)}): the backward divides by (or "
                    "averages over) that axis where the forward does not."
                )
            if _close(c, float(size)):
                return (
                    f"{d} is {size} times the true gradient, and {size} is the length of axis "
                    f"{axis} of its input (shape {tuple(shape)}): the forward divides by (or "
                    "averages over) that axis but the backward does not."
                )
    for axis, size in enumerate(shape):
        if size > 1 and (_close(c, np.sqrt(size)) or _close(c, 1.0 / np.sqrt(size))):
            return (
                f"{d} is {c:.4g} times the true gradient, the square root of the length "
                f"{size} of axis {axis} of its input (shape {tuple(shape)}): a 1/sqrt(...) "
                "scale, as in scaled dot-product attention, is missing or applied twice."
            )
    return f"{d} is {c:.4g} times the true gradient: a constant factor is off."


def _batch_pattern(d: str, wrong: np.ndarray) -> str | None:
    per_sample = wrong.reshape(wrong.shape[0], -1)
    bad = np.flatnonzero(per_sample.any(axis=1))
    mostly_wrong = per_sample[bad].mean() >= 0.75 if len(bad) else False
    if 0 < len(bad) < wrong.shape[0] and mostly_wrong:
        shown = ", ".join(str(int(i)) for i in bad[:6]) + (", ..." if len(bad) > 6 else "")
        return (
            f"{d} is wrong only for batch element(s) {shown} of {wrong.shape[0]}: "
            "look for an index or a loop bound that does not cover the whole batch "
            "(e.g. using x[0], or a range that stops early)."
        )
    return None


_ORDINAL = {2: "2nd", 3: "3rd", 4: "4th"}


def _spatial_pattern(d: str, wrong: np.ndarray) -> str | None:
    """Mismatches confined to the border, or to stride-aligned rows/columns (4-D)."""
    h, w = wrong.shape[-2:]
    rows = np.flatnonzero(wrong.reshape(-1, h, w).any(axis=(0, 2)))
    cols = np.flatnonzero(wrong.reshape(-1, h, w).any(axis=(0, 1)))
    if len(rows) == 0:
        return None
    inner = np.zeros((h, w), dtype=bool)
    inner[1:-1, 1:-1] = True
    flat_wrong = wrong.reshape(-1, h, w).any(axis=0)
    if h > 2 and w > 2 and not np.any(flat_wrong & inner):
        return (
            f"{d} is wrong only on the border rows/columns of the image: check how the "
            "backward pass handles padding (slicing off the pad, e.g. [p:-p] fails for p = 0)."
        )
    for stride in (2, 3, 4):
        if (
            (len(rows) < h or len(cols) < w)
            and (len(rows) >= 2 or len(cols) >= 2)
            and np.all(rows % stride == rows[0] % stride)
            and np.all(cols % stride == cols[0] % stride)
            and (h > stride or w > stride)
        ):
            return (
                f"{d} is wrong only at every {_ORDINAL[stride]} row/column: check that the "
                "backward pass uses the stride when it maps outputs back to input positions."
            )
    return None


def diagnose_values(
    name: str,
    analytic: np.ndarray,
    numeric: np.ndarray,
    wrong: np.ndarray,
    *,
    batch_size: int | None = None,
    batch_axis: bool = False,
) -> str | None:
    """Most likely cause of the mismatches between full ``analytic`` and ``numeric`` arrays.

    ``wrong`` is the boolean mask of mismatched entries; ``batch_axis`` says whether axis 0
    of ``name`` indexes samples. The patterns are tried in turn, the most specific first:
    where the zeros are, a constant factor, a transpose, which samples, which positions.
    """
    d = f"d{name}"
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if not np.any(wrong):
        return None
    small = 1e-9 * max(float(np.abs(n).max()), 1e-300)  # a numeric entry this small is zero
    return (
        _zeros_pattern(d, a, n, wrong, small)
        or _factor_pattern(d, a, n, small, batch_size)
        or _transpose_pattern(d, a, n)
        or (_batch_pattern(d, wrong) if batch_axis and a.ndim >= 1 and a.shape[0] > 1 else None)
        or (_spatial_pattern(d, wrong) if a.ndim == 4 else None)
        or None
    )


def _zeros_pattern(d: str, a: np.ndarray, n: np.ndarray, wrong: np.ndarray, small: float) -> str | None:
    """Mismatches explained by where the analytic and the numeric gradient are zero."""
    count = int(np.count_nonzero(wrong))
    if np.all(a == 0):
        return (
            f"{d} is all zeros but the numeric gradient is not: the backward pass never "
            f"writes {d} (or returns a zeros array it did not fill)."
        )
    if np.all(a[wrong] == 0) and count < a.size:
        return (
            f"{d} is zero at every mismatched entry ({count} of "
            f"{a.size}): contributions are missing there (a mask, a loop bound or an "
            "overlapping window that assigns with = instead of accumulating with +=)."
        )
    a_zero, n_zero = a[wrong] == 0, np.abs(n[wrong]) <= small
    if np.all(n_zero) and count < a.size:
        return (
            f"{d} is non-zero exactly where the numeric gradient is zero ({count} "
            f"of {a.size} entries): a contribution where none is due, such as a mask that is not "
            "applied (padding, masked time steps, dropped units) or applied to the wrong entries."
        )
    if np.all(a_zero ^ n_zero) and np.any(a_zero) and np.any(n_zero):
        return (
            f"{d} is zero where the numeric gradient is not, and non-zero where it is zero: "
            "the gradient lands on the wrong entries. In an element-wise layer, the mask "
            "selects the wrong entries (build it from the forward input saved in the cache, "
            "e.g. x > 0, not from dout); in a convolution or pooling, check that the backward "
            "uses the stride, padding and dilation when it maps outputs back to input positions."
        )
    return None


def _factor_pattern(d: str, a: np.ndarray, n: np.ndarray, small: float, batch_size: int | None) -> str | None:
    """``a = c * n`` for a constant ``c`` other than 1: a sign or a scale."""
    c, resid = _fit_factor(a, n)
    if not (resid < 1e-3 and np.isfinite(c)):
        return None
    if _close(c, -1.0):
        return f"{d} has the wrong sign: it equals minus the numeric gradient."
    # A few numbers always fit a factor (batch norm's dx for N = 2 is two opposite
    # numbers): only a sign, a batch size or a factor of 2 is evidence then; an arbitrary
    # factor needs at least three entries to be a pattern.
    informative = np.count_nonzero(np.abs(n) > small) >= 3
    sizes = [size for size in (batch_size, *a.shape) if size is not None and size > 1]
    named = _close(c, 2.0) or _close(c, 0.5) or any(
        _close(c, float(size)) or _close(c, 1.0 / size) or _close(c, np.sqrt(size))
        or _close(c, 1 / np.sqrt(size))
        for size in sizes)
    if not _close(c, 1.0, 1e-6) and (informative or named):
        return _scale_message(d, c, batch_size, a.shape)
    return None


def _transpose_pattern(d: str, a: np.ndarray, n: np.ndarray) -> str | None:
    """A square gradient that holds the transpose of the right one."""
    if a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 1 and np.allclose(
            a, n.T, rtol=1e-6, atol=1e-12 * max(1.0, float(np.abs(n).max()))):
        return (
            f"{d} holds the transpose of the right gradient: check the order of "
            "the matrix product (dimension analysis cannot see it for square matrices)."
        )
    return None


def diagnose_overlap(name: str, reach_wrong: list[int], reach_right: list[int]) -> str | None:
    """Mismatches exactly on the entries that feed several outputs: ``=`` where ``+=`` is due.

    ``reach_wrong``/``reach_right`` count, for some mismatched and some matching entries,
    how many outputs each one reaches.
    """
    if reach_wrong and reach_right and min(reach_wrong) >= 2 and max(reach_right) <= 1:
        return (
            f"d{name} is wrong exactly at the entries that feed more than one output (up to "
            f"{max(reach_wrong)}), and right at those that feed one or none: contributions from "
            "overlapping windows or repeated indices are assigned (=) where they must be "
            "accumulated (+=, np.add.at)."
        )
    return None
