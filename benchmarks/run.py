"""Reproducible performance comparisons: ``python -m benchmarks.run``.

Prints markdown tables: per layer, one forward+backward, gradcheck's directional verdict
and full (every entry located) check with their forward-evaluation counts, and, when
torch is installed (``pip install ".[bench]"``), ``torch.autograd.gradcheck`` in fast and
slow mode on the matching ``torch.nn.functional`` op. All times are medians over repeats
taken in the same run, so the ratios are comparable even on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import gradcheck
import reference_layers as ref

ROOT = Path(__file__).resolve().parent.parent


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def alternating_medians(first: Callable[[], Any], second: Callable[[], Any], repeats: int,
                        ) -> tuple[float, float]:
    """Median times of two functions timed in alternation."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


@dataclass
class Case:
    name: str
    shapes: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    args: tuple[Any, ...]
    torch_fn: Callable[..., Any] | None = None
    torch_args: tuple[Any, ...] = ()
    torch_slow: bool = True
    full: bool = True
    results: dict[str, Any] = field(default_factory=dict)


def _cases(rng: np.random.Generator) -> list[Case]:
    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape)

    x16 = normal(4, 3, 16, 16)
    x32 = normal(4, 3, 32, 32)
    relu_x = (rng.permutation(4 * 8 * 16 * 16) - 4 * 8 * 16 * 16 / 2 + 0.5).reshape(4, 8, 16, 16) * 1e-3
    pool_x = rng.permutation(4 * 3 * 16 * 16).reshape(4, 3, 16, 16) * 1e-2
    return [
        Case("affine", "x (64, 256), w (256, 128), b (128,)", ref.affine_forward, ref.affine_backward,
             (normal(64, 256), normal(256, 128), normal(128)), full=False),
        Case("batchnorm", "x (64, 128), gamma (128,), beta (128,), train",
             ref.batchnorm_forward, ref.batchnorm_backward,
             (normal(64, 128) * 2 + 1, normal(128), normal(128), {"mode": "train"}), full=False),
        Case("affine", "x (4, 3, 16, 16), w (768, 8), b (8,)", ref.affine_forward, ref.affine_backward,
             (x16, normal(768, 8), normal(8)),
             lambda x, w, b: x.reshape(4, -1) @ w + b),
        Case("conv", "x (4, 3, 16, 16), w (8, 3, 3, 3), stride 1, pad 1",
             ref.conv_forward_naive, ref.conv_backward_naive,
             (x16, normal(8, 3, 3, 3), normal(8), {"stride": 1, "pad": 1}),
             lambda x, w, b: _torch().nn.functional.conv2d(x, w, b, stride=1, padding=1)),
        Case("conv", "x (4, 3, 32, 32), w (8, 3, 5, 5), stride 1, pad 2",
             ref.conv_forward_naive, ref.conv_backward_naive,
             (x32, normal(8, 3, 5, 5), normal(8), {"stride": 1, "pad": 2}),
             lambda x, w, b: _torch().nn.functional.conv2d(x, w, b, stride=1, padding=2),
             torch_slow=False),
        Case("batchnorm", "x (128, 64), gamma (64,), beta (64,), train",
             ref.batchnorm_forward, ref.batchnorm_backward,
             (normal(128, 64) * 2 + 1, normal(64), normal(64), {"mode": "train"}),
             lambda x, g, b: _torch().nn.functional.batch_norm(x, None, None, g, b, training=True)),
        Case("affine", "x (64, 3072), w (3072, 512), b (512,)", ref.affine_forward, ref.affine_backward,
             (normal(64, 3072), normal(3072, 512) * 0.05, normal(512)), full=False),
        Case("batchnorm", "x (1024, 512), gamma (512,), beta (512,), train",
             ref.batchnorm_forward, ref.batchnorm_backward,
             (normal(1024, 512) * 2 + 1, normal(512), normal(512), {"mode": "train"}), full=False),
        Case("relu", "x (4, 8, 16, 16)", ref.relu_forward, ref.relu_backward, (relu_x,),
             lambda x: _torch().relu(x)),
        Case("max_pool", "x (4, 3, 16, 16), 2x2, stride 2", ref.max_pool_forward_naive,
             ref.max_pool_backward_naive,
             (pool_x, {"pool_height": 2, "pool_width": 2, "stride": 2}),
             lambda x: _torch().nn.functional.max_pool2d(x, 2, 2)),
    ]


def _torch() -> Any:
    import torch

    return torch


def _have_torch() -> bool:
    try:
        _torch()
    except ImportError:
        return False
    return True


def _floats(args: tuple[Any, ...]) -> list[np.ndarray]:
    return [a for a in args if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)]


def measure(case: Case, repeats: int, torch_repeats: int, directional_only: bool = False) -> None:
    r = case.results

    def fwd_bwd() -> None:
        out, cache = case.forward(*case.args)
        case.backward(np.ones_like(out) * 0.5, cache)

    def directional() -> Any:
        return gradcheck.check_layer(case.forward, case.backward, *case.args, mode="directional")

    fwd_bwd()
    report = directional()
    assert report.passed, str(report)
    r["directional_evals"] = report.n_evaluations
    # Warmed up, then alternating, so that a burst of load on a shared machine hits both
    # sides alike; as many repeats as fit in about two seconds (30 to 1000): the median
    # of a few dozen sub-millisecond calls moves by 20% from run to run.
    for _ in range(10):
        fwd_bwd()
        directional()
    one = median_time(directional, 5)
    count = int(min(1000, max(repeats, 30, 2.0 / max(one, 1e-6))))
    r["fwd_bwd"], r["directional"] = alternating_medians(fwd_bwd, directional, count)
    r["coordinates"] = sum(a.size for a in _floats(case.args))
    if not case.full or directional_only:
        return
    full = gradcheck.check_layer(case.forward, case.backward, *case.args)
    assert full.passed, str(full)
    r["full_evals"] = full.n_evaluations
    r["full"] = median_time(lambda: gradcheck.check_layer(case.forward, case.backward, *case.args),
                            repeats)
    if case.torch_fn is not None and _have_torch():
        torch = _torch()
        tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in _floats(case.args)]

        def run(fast: bool) -> None:
            ok = torch.autograd.gradcheck(case.torch_fn, tensors, fast_mode=fast)
            assert ok

        r["torch_fast"] = median_time(lambda: run(True), torch_repeats)
        if case.torch_slow:
            r["torch_slow"] = median_time(lambda: run(False), torch_repeats)


def peak_memory(case_index: int) -> dict[str, float]:
    """Full check of one case in a fresh process: tracemalloc peak and the process's max RSS."""
    code = (
        "import json, tracemalloc, numpy as np, gradcheck\n"
        "from benchmarks.run import _cases, peak_rss_mib\n"
        f"case = _cases(np.random.default_rng(0))[{case_index}]\n"
        "before = peak_rss_mib()\n"
        "tracemalloc.start()\n"
        "report = gradcheck.check_layer(case.forward, case.backward, *case.args)\n"
        "peak = tracemalloc.get_traced_memory()[1]\n"
        "tracemalloc.stop()\n"
        "print(json.dumps({'passed': report.passed, 'traced_peak_mib': peak / 2**20,"
        " 'max_rss_mib': peak_rss_mib(), 'rss_before_mib': before}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    return json.loads(out.stdout)


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it is not inherited on exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cli_times(timeout: float) -> dict[str, Any]:
    """``gradcheck check`` on the student example (naive loops) and on the reference catalogue."""
    results: dict[str, Any] = {}

    def timed(args: list[str]) -> tuple[float, str, int]:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "gradcheck", *args], capture_output=True, text=True,
                              cwd=ROOT, timeout=timeout)
        return time.perf_counter() - start, proc.stdout, proc.returncode

    for layer in ("conv", "max_pool"):
        for kind in ("correct", "buggy"):
            seconds, out, code = timed(["check", f"examples/layers_{kind}.py", "--layer", layer,
                                        "--json", f"/tmp/gradcheck-bench-{kind}-{layer}.json"])
            data = json.loads(Path(f"/tmp/gradcheck-bench-{kind}-{layer}.json").read_text())
            results[f"{kind} {layer}"] = {
                "seconds": seconds, "exit": code, "passed": data["passed"],
                "failing_case": data["layers"][0]["failing_case"],
            }
    seconds, out, code = timed(["check"])
    results["reference catalogue"] = {"seconds": seconds, "exit": code,
                                      "summary": out.strip().splitlines()[-1]}
    return results


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def table(cases: list[Case]) -> str:
    head = ("| layer | shapes | fwd+bwd ms | directional ms (evals) | directional / fwd+bwd "
            "| full ms (evals / coordinates) | torch fast ms | torch slow ms | torch slow / full |")
    lines = [head, "|" + "---|" * 9]
    for c in cases:
        r = c.results
        slow = r.get("torch_slow")
        slow_text = _ms(slow) if slow else ("not run" if "torch_fast" in r else "-")
        ratio = f"{slow / r['full']:.0f}x" if slow else "-"
        full = f"{_ms(r['full'])} ({r['full_evals']} / {r['coordinates']})" if "full" in r else "-"
        lines.append(
            f"| {c.name} | {c.shapes} | {_ms(r['fwd_bwd'])} | {_ms(r['directional'])} "
            f"({r['directional_evals']}) | {r['directional'] / r['fwd_bwd']:.1f}x "
            f"| {full} | {_ms(r.get('torch_fast'))} | {slow_text} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch-repeats", type=int, default=3)
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--directional-only", action="store_true",
                        help="only one forward+backward against the directional verdict (seconds, "
                             "not minutes: the columns issue 10 asks about)")
    args = parser.parse_args(argv)
    cases = _cases(np.random.default_rng(0))
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}" + (f", torch {_torch().__version__}" if _have_torch() else ", no torch"))
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    print(f"BLAS threads: {threads or 'library default'}")
    for case in cases:
        measure(case, args.repeats, args.torch_repeats, args.directional_only)
    print()
    print(table(cases))
    if args.directional_only:
        return 0
    memory = peak_memory(4)
    print(f"\nfull check of conv x (4, 3, 32, 32), w (8, 3, 5, 5), pad 2: "
          f"{cases[4].results['full']:.2f} s, numpy/Python allocations peak "
          f"{memory['traced_peak_mib']:.0f} MiB, process max RSS {memory['max_rss_mib']:.0f} MiB "
          f"(of which {memory['rss_before_mib']:.0f} MiB before the check)")
    cli = {} if args.skip_cli else cli_times(600)
    if cli:
        print("\n| `gradcheck check` run | seconds | verdict | smallest failing case |")
        print("|---|---|---|---|")
        for name, r in cli.items():
            verdict = r.get("summary") or ("passed" if r["passed"] else "FAILED")
            print(f"| {name} | {r['seconds']:.1f} | {verdict} | {r.get('failing_case') or '-'} |")
    if args.json:
        payload = {"cases": [{"name": c.name, "shapes": c.shapes, **c.results} for c in cases],
                   "memory": memory, "cli": cli}
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
