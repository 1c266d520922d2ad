"""The checker's random draws: directions to differentiate along and upstream gradients.

Both are random signs times magnitudes in [0.5, 1): no tiny components, so no entry of a
gradient escapes a direction by being weighted by almost nothing. They are made from raw bits
(a random sign and mantissa under the exponent of 0.5), several times cheaper than drawing
uniform floats, and the raw words of each seed's stream are generated once and kept: for a
layer that runs in under a millisecond, the draws were the largest part of a directional
check after the layer's own calls.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Draws", "checker_rng", "direction", "directions", "signed_halves",
           "upstream"]

_SIGN_AND_MANTISSA = np.uint32(0x807FFFFF)
_SIGN_AND_MANTISSA64 = np.uint64(0x800FFFFFFFFFFFFF)
# Sign, the two lowest exponent bits and the mantissa; under the fixed exponent bits of
# 2**-3 the two random exponent bits pick one of the octaves 2**-3 ... 2**0.
_SIGN_OCTAVES_AND_MANTISSA64 = np.uint64(0x803FFFFFFFFFFFFF)
_EXPONENT_OF_AN_EIGHTH = np.uint64(0x3FC0000000000000)
_SEED_SALT = 0x67726164
# Memoised words per seed (8 MiB); a draw reaching past them is generated, not kept.
MEMO_WORDS = 1 << 20


def checker_rng(seed: int) -> np.random.Generator:
    """The checker's own random stream (samples, probes), a fresh generator each time.

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
        self.sequence = np.random.SeedSequence([seed, _SEED_SALT])
        self.words: dict[tuple[int, str], np.ndarray] = {}

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        key = (n_words, np.dtype(dtype).str)
        if key not in self.words:
            self.words[key] = self.sequence.generate_state(n_words, dtype)
        return self.words[key].copy()


@functools.lru_cache(maxsize=256)
def _seed_words(seed: int) -> _SeedWords:
    return _SeedWords(seed)


class _WordMemo:
    """The start of one seed's stream of raw 64-bit words (the directions' and upstream
    gradients' bits), generated once: every check with that seed draws the same words, and
    generating them was most of the cost of a draw."""

    def __init__(self, seed: int) -> None:
        self.sequence = np.random.SeedSequence([seed, _SEED_SALT, 1])
        self.bits = np.random.PCG64(self.sequence)
        self.words = np.empty(0, dtype=np.uint64)
        self.lock = threading.Lock()

    def take(self, start: int, n: int) -> npt.NDArray[np.uint64]:
        """Words ``start`` to ``start + n`` of the stream (read-only when memoised)."""
        end = start + n
        if len(self.words) < end <= MEMO_WORDS:
            with self.lock:
                have = len(self.words)
                if have < end:  # grown by doubling, so a few draws fill it
                    more = self.bits.random_raw(min(MEMO_WORDS, max(end, 2 * have, 4096)) - have)
                    words = np.concatenate([self.words, more])
                    words.flags.writeable = False
                    self.words = words
        if end <= len(self.words):
            return self.words[start:end]
        bits = np.random.PCG64(self.sequence)
        bits.advance(start)
        return bits.random_raw(n)


@functools.lru_cache(maxsize=8)
def _word_memo(seed: int) -> _WordMemo:
    return _WordMemo(seed)


class Draws:
    """The random draws of one check: raw words for directions and upstream gradients
    (:meth:`words`), and a generator for everything else (samples, structure probes),
    made on first use. ``Draws.of(generator)`` draws both from a generator of your own."""

    def __init__(self, seed: int | None = None, generator: np.random.Generator | None = None) -> None:
        if (seed is None) == (generator is None):
            raise TypeError("Draws takes a seed or a generator")
        self.seed = seed
        self._generator = generator
        self._memo = None if seed is None else _word_memo(seed)
        self._taken = 0

    @classmethod
    def of(cls, rng: Draws | np.random.Generator) -> Draws:
        return rng if isinstance(rng, Draws) else cls(generator=rng)

    @property
    def generator(self) -> np.random.Generator:
        if self._generator is None:
            assert self.seed is not None
            self._generator = checker_rng(self.seed)
        return self._generator

    def words(self, n: int) -> npt.NDArray[np.uint64]:
        """The next ``n`` raw 64-bit words (possibly read-only)."""
        if self._memo is None:
            return self.generator.bit_generator.random_raw(n)
        start, self._taken = self._taken, self._taken + n
        return self._memo.take(start, n)


def signed_halves(rng: Draws | np.random.Generator, shape: tuple[int, ...], octave: int = -1,
                  ) -> npt.NDArray[np.float64]:
    """Independent random values of magnitude in [2**octave, 2**(octave + 1)) (by default
    [0.5, 1)), either sign, 52 random mantissa bits."""
    if not -1022 <= octave <= 1022:
        raise ValueError(f"octave={octave} is outside float64's normal range")
    bits = np.bitwise_and(Draws.of(rng).words(math.prod(shape)), _SIGN_AND_MANTISSA64)
    bits |= np.uint64((1023 + octave) << 52)  # the float64 exponent bits of 2**octave
    return bits.view(np.float64).reshape(shape)


def direction(rng: Draws | np.random.Generator, x: np.ndarray) -> npt.NDArray[np.float64]:
    """A random direction scaled like ``x`` (by ``max(|x|, 1)`` entry-wise)."""
    return directions(rng, [x])[0]


def directions(rng: Draws | np.random.Generator, xs: Sequence[np.ndarray], step: float = 1.0,
               ) -> list[npt.NDArray[np.float64]]:
    """:func:`direction` through every one of ``xs``, from one draw, times ``step`` (a power
    of two, so that the product is exact and costs no pass over the arrays)."""
    octave = math.frexp(step)[1] - 2
    if step != 2.0 ** (octave + 1):
        raise ValueError(f"step={step!r} must be a power of two")
    halves = signed_halves(rng, (sum(x.size for x in xs),), octave)
    # Every input's absolute values into one buffer, then scaled in two passes over it all:
    # halves * max(|x|, 1).
    scale = np.empty(halves.size)
    way, start = [], 0
    for x in xs:
        part = scale[start:start + x.size].reshape(x.shape)
        np.abs(x, out=part)
        way.append(part)
        start += x.size
    np.maximum(scale, 1.0, out=scale)
    scale *= halves
    return way


def upstream(rng: Draws | np.random.Generator, like: np.ndarray) -> np.ndarray:
    """A random upstream gradient for the output ``like``, in its dtype (never all ones).

    Random signs times magnitudes spread log-uniformly over [0.25, 4): its mean square is
    as large against its mean absolute value as a standard normal's (the gradients grow with
    the first, tolerances with the second), at a fraction of a normal draw's cost.
    """
    draws = Draws.of(rng)
    if like.dtype == np.float64:
        bits = np.bitwise_and(draws.words(like.size), _SIGN_OCTAVES_AND_MANTISSA64)
        bits |= _EXPONENT_OF_AN_EIGHTH  # [1/8, 2) ...
        values = bits.view(np.float64)
        values *= 2.0  # ... to [1/4, 4), exactly
        return values.reshape(like.shape)
    # Other dtypes from float32 values, two from each word.
    words = draws.words((like.size + 1) // 2).view(np.uint32)[:like.size]
    octave = words >> 23  # random bits the sign-and-mantissa mask below drops
    octave &= np.uint32(3)
    octave += np.uint32(127 - 2)
    octave <<= np.uint32(23)
    bits = np.bitwise_and(words, _SIGN_AND_MANTISSA)
    bits |= octave
    return bits.view(np.float32).reshape(like.shape).astype(like.dtype)
