"""Independent labels for assignment 1's classifiers, from torch autograd (never gradcheck).

``python -m benchmarks.grading.label_classifiers FILE OUT`` imports one ``linear_svm.py``
or ``softmax.py`` (with the field labeller's stubs for ``past`` and ``cs231n``) and labels
each of ``svm_loss_naive``, ``svm_loss_vectorized``, ``softmax_loss_naive`` and
``softmax_loss_vectorized`` it defines on six random cases (N, D, C and reg, reg = 0 in
two of them): correct when the loss and dW equal torch's for ``reg * sum(W**2)`` or,
consistently, ``0.5 * reg * sum(W**2)`` (the loss by its value: one of shape (1,) or
(1, 1) is the number the course's notebook prints and checks); and labels naive against
vectorized (same loss and dW on the same cases). Run by :mod:`benchmarks.grading.real` in a subprocess.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.field.worker import _import_student, _StubFinder

FUNCTIONS = ("svm_loss_naive", "svm_loss_vectorized", "softmax_loss_naive", "softmax_loss_vectorized")
RTOL = 1e-6


def _cases() -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(231)
    cases = []
    for k, (n, d, c) in enumerate([(5, 4, 3), (8, 6, 4), (3, 7, 5), (6, 3, 2), (10, 5, 6), (4, 4, 4)]):
        W = rng.normal(scale=0.5, size=(d, c))
        X = rng.normal(size=(n, d))
        y = rng.integers(0, c, size=n)
        cases.append((W, X, y, 0.0 if k % 3 == 0 else float(rng.uniform(0.05, 1.0))))
    return cases


def _torch_loss(kind: str, W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float,
                scale: float) -> tuple[float, np.ndarray]:
    w = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    scores = torch.tensor(X) @ w
    labels = torch.tensor(y)
    if kind == "svm":
        correct = scores[torch.arange(len(y)), labels][:, None]
        margins = torch.clamp(scores - correct + 1, min=0)
        margins = margins * (1 - torch.nn.functional.one_hot(labels, W.shape[1]))
        data = margins.sum() / len(y)
    else:
        data = torch.nn.functional.cross_entropy(scores, labels)
    loss = data + scale * reg * (w * w).sum()
    loss.backward()
    assert w.grad is not None
    return float(loss), w.grad.numpy()


def _close(a: Any, b: np.ndarray) -> bool:
    try:
        got = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return got.shape == b.shape and bool(np.allclose(got, b, rtol=RTOL, atol=1e-9))


def label_function(fn: Any, kind: str) -> dict[str, Any]:
    """``correct``/``wrong``/``crash`` with the culprits (``loss``, ``dW``) and the details."""
    culprits: set[str] = set()
    details = ""
    for index, (W, X, y, reg) in enumerate(_cases()):
        try:
            loss, dW = fn(W.copy(), X.copy(), y.copy(), reg)
        except Exception as exc:  # the student's code crashed
            return {"status": "crash", "correct": False, "culprits": ["forward"],
                    "details": f"case {index}: {type(exc).__name__}: {exc}"}
        if loss is None or dW is None:
            return {"status": "unimplemented", "details": "returns None"}
        # the loss by its value: the docstring asks for "a single float", and the notebook
        # reads a loss of shape (1,) or (1, 1) as that number ('%f' % loss, grad_check_sparse)
        fits = [(_same_number(loss, want_loss), _close(dW, want_dW))
                for want_loss, want_dW in (_torch_loss(kind, W, X, y, reg, s) for s in (1.0, 0.5))]
        if any(all(fit) for fit in fits):
            continue
        loss_ok, dW_ok = any(f[0] for f in fits), any(f[1] for f in fits)
        culprits |= ({"loss"} if not loss_ok else set()) | ({"dW"} if not dW_ok or loss_ok else set())
        details = details or f"case {index} reg={reg:.3g}: {', '.join(sorted(culprits))} differ from torch"
    if culprits:
        return {"status": "wrong", "correct": False, "culprits": sorted(culprits), "details": details}
    return {"status": "correct", "correct": True, "culprits": []}


def _same_number(a: Any, b: Any) -> bool:
    """One number each (any shape of one element), and the same."""
    try:
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return x.size == y.size == 1 and _close(x.reshape(()), y.reshape(()))


def label_agreement(naive: Any, vectorized: Any) -> dict[str, Any]:
    """Naive and vectorized give the same loss and dW on every case."""
    for index, (W, X, y, reg) in enumerate(_cases()):
        try:
            a, b = naive(W.copy(), X.copy(), y.copy(), reg), vectorized(W.copy(), X.copy(), y.copy(), reg)
        except Exception as exc:
            return {"status": "crash", "correct": False, "culprits": ["forward"], "details": str(exc)}
        if a[0] is None or b[0] is None:
            return {"status": "unimplemented", "details": "returns None"}
        # the notebook compares the two losses' values (np.abs(loss_naive - loss_vectorized)):
        # a loss of shape (1,) or (1, 1) against a float is the same number there
        if not (_same_number(a[0], b[0]) and _close(a[1], np.asarray(b[1]))):
            return {"status": "wrong", "correct": False, "culprits": ["dW"],
                    "details": f"case {index}: naive and vectorized differ"}
    return {"status": "correct", "correct": True, "culprits": []}


def label_file(path: Path) -> dict[str, Any]:
    sys.meta_path.insert(0, _StubFinder())
    warnings.simplefilter("ignore")
    try:
        module = _import_student(path)
    except BaseException as exc:
        return {"import": f"import_error: {type(exc).__name__}: {exc}", "layers": {}}
    layers: dict[str, Any] = {}
    for name in FUNCTIONS:
        fn = getattr(module, name, None)
        if callable(fn):
            layers[name] = label_function(fn, name.split("_")[0])
            if layers[name]["status"] == "crash" and "xrange" in layers[name]["details"]:
                module.xrange = range  # Python 2 code: labelled apart, as the field corpus does
                again = label_function(fn, name.split("_")[0])
                layers[name] = {"status": "env_error", "env_status": again["status"],
                                "env_details": f"Python 2 (xrange): {again.get('details', '')}"}
    for kind in ("svm", "softmax"):
        naive, vectorized = (getattr(module, f"{kind}_loss_{form}", None) for form in ("naive", "vectorized"))
        if callable(naive) and callable(vectorized):
            layers[f"{kind}_loss_naive vs {kind}_loss_vectorized"] = label_agreement(naive, vectorized)
    return {"import": "ok", "layers": layers}


def main(argv: list[str]) -> int:
    path, out = Path(argv[0]), Path(argv[1])
    out.write_text(json.dumps(label_file(path), sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
