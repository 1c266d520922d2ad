"""Smallest detectable error: one gradient entry off by a relative ``delta``.

For each layer, one entry of one gradient (of typical size) is multiplied by
``1 + delta``; the smallest ``delta`` on a half-decade grid that the check reports, naming
that gradient, is the figure. Measured for float64 and float32 inputs, in full and
directional modes. ``python -m benchmarks.sensitivity``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

import gradcheck
import reference_layers as ref
from gradcheck.adapters import argument_names

GRID = [10.0 ** (-k / 2) for k in range(2, 19)]  # 1e-1 ... 1e-9


Layer = tuple[str, Callable[..., Any], Callable[..., Any], tuple[Any, ...], str]


def layers(rng: np.random.Generator) -> list[Layer]:
    """(label, forward, backward, args, gradient to corrupt)."""
    return [
        ("affine dw", ref.affine_forward, ref.affine_backward,
         (rng.normal(size=(8, 12)), rng.normal(size=(12, 6)), rng.normal(size=6)), "w"),
        ("conv dx", ref.conv_forward_naive, ref.conv_backward_naive,
         (rng.normal(size=(2, 3, 8, 8)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4),
          {"stride": 1, "pad": 1}), "x"),
        ("batchnorm dgamma", ref.batchnorm_forward, ref.batchnorm_backward,
         (rng.normal(size=(16, 8)) * 2 + 1, rng.normal(size=8), rng.normal(size=8), {"mode": "train"}),
         "gamma"),
        ("lstm_step dWh", ref.lstm_step_forward, ref.lstm_step_backward,
         (rng.normal(size=(3, 4)) * 0.5, rng.normal(size=(3, 5)) * 0.5, rng.normal(size=(3, 5)) * 0.5,
          rng.normal(size=(4, 20)) * 0.4, rng.normal(size=(5, 20)) * 0.4, rng.normal(size=20) * 0.1), "Wh"),
    ]


def corrupted(backward: Callable[..., Any], position: int, delta: float) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        grads = list(backward(*args))
        g = np.array(grads[position], copy=True)
        flat = g.reshape(-1)
        k = int(np.argmin(np.abs(np.abs(flat) - np.sqrt(np.mean(flat * flat)))))  # a typical entry
        flat[k] = flat[k] * (1 + delta)
        grads[position] = g
        return tuple(grads)

    return wrapped


def smallest_detected(label: str, forward: Callable[..., Any], backward: Callable[..., Any],
                      args: tuple[Any, ...], name: str, dtype: Any, mode: str) -> float | None:
    args = tuple(a.astype(dtype) if isinstance(a, np.ndarray) else a for a in args)
    position = _differentiable(forward, args).index(name)
    clean = gradcheck.check_layer(forward, backward, *args, mode=mode)
    if not clean.passed:
        raise AssertionError(f"{label}: false alarm on the correct layer\n{clean}")
    found = None
    for delta in GRID:
        report = gradcheck.check_layer(forward, corrupted(backward, position, delta), *args, mode=mode)
        if report.failed_gradients == [name]:
            found = delta
        else:
            break
    return found


def _differentiable(forward: Callable[..., Any], args: tuple[Any, ...]) -> list[str]:
    names = argument_names(forward, len(args))
    return [n for n, a in zip(names, args) if isinstance(a, np.ndarray)]


def measure() -> list[dict[str, Any]]:
    rows = []
    for label, forward, backward, args, name in layers(np.random.default_rng(0)):
        entries = args[argument_names(forward, len(args)).index(name)].size
        row: dict[str, Any] = {"layer": label, "entries": entries}
        for dtype in (np.float64, np.float32):
            for mode in ("full", "directional"):
                row[f"{np.dtype(dtype).name} {mode}"] = smallest_detected(
                    label, forward, backward, args, name, dtype, mode)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    rows = measure()
    keys = ["float64 full", "float32 full", "float64 directional", "float32 directional"]
    print("| gradient (entries) | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for r in rows:
        cells = [f"{r[k]:.0e}" if r[k] is not None else "> 1e-1" for k in keys]
        print(f"| {r['layer']} ({r['entries']}) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
