"""The directional verdict's cost against one forward+backward, at an older revision and now,
side by side: ``python -m benchmarks.directional_ab --old REV [--rounds 4]``.

Each round runs the same measurement in a fresh process for each revision, one after the
other (the older revision from a temporary ``git worktree``), so a burst of load on a shared
machine hits both alike. Times are CPU time of the calling thread (``time.thread_time``),
the mean of the fastest tenth of 400 repeats, which scheduling on a busy machine changes
little; run it with ``OPENBLAS_NUM_THREADS=1``, so that the matrix products run in that
thread too. The figure is the ratio directional / forward+backward, per round.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEASURE = r"""
import json, time, numpy as np, gradcheck, reference_layers as ref
rng = np.random.default_rng(0)
cases = {
    "affine x (64, 256), w (256, 128)": (ref.affine_forward, ref.affine_backward,
        (rng.standard_normal((64, 256)), rng.standard_normal((256, 128)), rng.standard_normal(128))),
    "batchnorm x (64, 128), train": (ref.batchnorm_forward, ref.batchnorm_backward,
        (rng.standard_normal((64, 128)) * 2 + 1, rng.standard_normal(128), rng.standard_normal(128),
         {"mode": "train"})),
    "conv x (4, 3, 16, 16), w (8, 3, 3, 3), pad 1": (ref.conv_forward_naive, ref.conv_backward_naive,
        (rng.standard_normal((4, 3, 16, 16)), rng.standard_normal((8, 3, 3, 3)), rng.standard_normal(8),
         {"stride": 1, "pad": 1})),
}
out = {}
for name, (f, b, args) in cases.items():
    def check(): gradcheck.check_layer(f, b, *args, mode="directional")
    def fwd_bwd():
        y, cache = f(*args); b(np.ones_like(y) * 0.5, cache)
    for _ in range(10): check()
    times = ([], [])
    for _ in range(400 if "conv" not in name else 60):
        for fn, into in ((check, times[0]), (fwd_bwd, times[1])):
            start = time.thread_time(); fn(); into.append(time.thread_time() - start)
    fast = [sorted(t)[:max(1, len(t) // 10)] for t in times]
    out[name] = [sum(t) / len(t) for t in fast]
print(json.dumps(out))
"""


def run(tree: Path) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", MEASURE], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old", required=True, help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.old],
                       check=True)
        try:
            rounds = [(run(old), run(ROOT)) for _ in range(args.rounds)]
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
    print(f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'library default')}\n")
    print(f"| layer | directional / fwd+bwd at {args.old} | now |")
    print("|---|---|---|")
    for name in rounds[0][0]:
        before = ", ".join(f"{r[0][name][0] / r[0][name][1]:.1f}x" for r in rounds)
        now = ", ".join(f"{r[1][name][0] / r[1][name][1]:.1f}x" for r in rounds)
        print(f"| {name} | {before} | {now} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
