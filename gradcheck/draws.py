"""The checker's random draws: directions to differentiate along and upstream gradients.

Both are random signs times magnitudes in [0.5, 1): no tiny components, so no entry of a
gradient escapes a direction by being weighted by almost nothing. They are made from raw bits
(a random sign and mantissa under the exponent of 0.5), several times cheaper than drawing
uniform floats; for a layer that runs in under a millisecond, the draws were the largest
part of a directional check after the layer's own calls.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["checker_rng", "direction", "directions", "signed_halves", "upstream"]

_SIGN_AND_MANTISSA = np.uint32(0x807FFFFF)


def checker_rng(seed: int) -> np.random.Generator:
    """The checker's own random stream (upstream gradients, directions, samples).

    Seeded apart from ``default_rng(seed)``, which test data is often drawn from: with the
    same stream, ``dout`` would equal the input ``x`` whenever their shapes agree, and an
    error proportional to ``dout - x`` would cancel.
    """
    # numpy takes any ISeedSequence here (its stubs name only SeedSequence).
    return np.random.Generator(np.random.PCG64(_seed_words(seed)))  # type: ignore[arg-type]


class _SeedWords(np.random.bit_generator.ISeedSequence):
    """The words ``SeedSequence([seed, ...])`` generates, computed once per seed: the same
    stream as ``default_rng([seed, ...])`` without hashing the seed again for every check."""

    def __init__(self, seed: int) -> None:
        self.sequence = np.random.SeedSequence([seed, 0x67726164])
        self.words: dict[tuple[int, str], np.ndarray] = {}

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        key = (n_words, np.dtype(dtype).str)
        if key not in self.words:
            self.words[key] = self.sequence.generate_state(n_words, dtype)
        return self.words[key].copy()


@functools.lru_cache(maxsize=256)
def _seed_words(seed: int) -> _SeedWords:
    return _SeedWords(seed)


def signed_halves(rng: np.random.Generator, shape: tuple[int, ...], octave: int = -1,
                  ) -> npt.NDArray[np.float32]:
    """Independent random values of magnitude in [2**octave, 2**(octave + 1)) (by default
    [0.5, 1)), either sign, 23 random mantissa bits."""
    if not -126 <= octave <= 126:
        raise ValueError(f"octave={octave} is outside float32's normal range")
    bits = _words(rng, shape)
    bits &= _SIGN_AND_MANTISSA
    bits |= np.uint32((127 + octave) << 23)  # the float32 exponent bits of 2**octave
    return bits.view(np.float32).reshape(shape)


def _words(rng: np.random.Generator, shape: tuple[int, ...]) -> npt.NDArray[np.uint32]:
    """One random 32-bit word per entry of ``shape`` (flat), two from each raw 64-bit draw."""
    n = math.prod(shape)
    return rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]


def direction(rng: np.random.Generator, x: np.ndarray) -> npt.NDArray[np.float64]:
    """A random direction scaled like ``x`` (by ``max(|x|, 1)`` entry-wise)."""
    return _scaled_like(x, signed_halves(rng, x.shape))


def directions(rng: np.random.Generator, xs: Sequence[np.ndarray], step: float = 1.0,
               ) -> list[npt.NDArray[np.float64]]:
    """:func:`direction` through every one of ``xs``, from one draw, times ``step`` (a power
    of two, so that the product is exact and costs no pass over the arrays)."""
    octave = math.frexp(step)[1] - 2
    if step != 2.0 ** (octave + 1):
        raise ValueError(f"step={step!r} must be a power of two")
    halves = signed_halves(rng, (sum(x.size for x in xs),), octave)
    way, start = [], 0
    for x in xs:
        way.append(_scaled_like(x, halves[start:start + x.size].reshape(x.shape)))
        start += x.size
    return way


def _scaled_like(x: np.ndarray, halves: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    scale = np.abs(x)
    np.maximum(scale, 1.0, out=scale)
    scale *= halves
    return scale


def upstream(rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
    """A random upstream gradient for the output ``like``, in its dtype (never all ones).

    Random signs times magnitudes spread log-uniformly over [0.25, 4): its mean square is
    as large against its mean absolute value as a standard normal's (the gradients grow with
    the first, tolerances with the second), at a fraction of a normal draw's cost.
    """
    bits = _words(rng, like.shape)
    octave = bits >> 23  # random bits the sign-and-mantissa mask below drops
    octave &= np.uint32(3)
    octave += np.uint32(127 - 2)
    octave <<= np.uint32(23)
    bits &= _SIGN_AND_MANTISSA
    bits |= octave
    return bits.view(np.float32).reshape(like.shape).astype(like.dtype)
