"""Mutants and variants of assignment 1's linear classifiers (``svm_loss_naive(W, X, y,
reg)`` and its siblings), edits of the student-style files in ``tests/fixtures``."""

from __future__ import annotations

from benchmarks.mutants import Mutant, Variant, Warned
from gradcheck.kinds import ViolationKind

SVM = "tests/fixtures/assignment/cs231n/classifiers/linear_svm.py"
SOFTMAX = "tests/fixtures/assignment/cs231n/classifiers/softmax.py"
# a 2019 student's softmax helper: the probability of the label as an array of shape (1, 1)
_LOSS_11 = "        loss -= np.log(exp_scores[y[i]] / np.sum(exp_scores).reshape(-1, 1))\n"

MUTANTS: list[Mutant] = [
    Mutant(
        name="svm_loss_naive: the correct class's own margin counted (loss off by 1)",
        source=SVM, spec="svm_loss_naive",
        old="            if j == y[i]:\n                continue\n            margin = scores[j]",
        new="            margin = scores[j]",
        expect=frozenset({"forward"}),
    ),
    Mutant(
        name="svm_loss_naive: no regularisation gradient",
        source=SVM, spec="svm_loss_naive",
        old="    dW += 2 * reg * W\n    return loss, dW\n\n\ndef svm_loss_vectorized",
        new="    return loss, dW\n\n\ndef svm_loss_vectorized",
        expect=frozenset({"W"}), geometry="reg=0.1",
    ),
    Mutant(
        name="svm_loss_naive: regularisation gradient reg * W for reg * sum(W**2)",
        source=SVM, spec="svm_loss_naive",
        old="    dW += 2 * reg * W\n    return loss, dW\n\n\ndef svm_loss_vectorized",
        new="    dW += reg * W\n    return loss, dW\n\n\ndef svm_loss_vectorized",
        expect=frozenset({"W"}),
    ),
    Mutant(
        name="svm_loss_vectorized: dW not divided by N",
        source=SVM, spec="svm_loss_vectorized",
        old="    dW = X.T.dot(counts) / num_train + 2 * reg * W\n",
        new="    dW = X.T.dot(counts) + 2 * reg * W\n",
        expect=frozenset({"W"}),
    ),
    Mutant(
        name="svm_loss_vectorized: label column misses the count of positive margins",
        source=SVM, spec="svm_loss_vectorized",
        old="    counts[np.arange(num_train), y] = -counts.sum(axis=1)\n",
        new="    counts[np.arange(num_train), y] = -1\n",
        expect=frozenset({"W"}),
    ),
    Mutant(
        name="softmax_loss_naive: gradient without the -1 at the label",
        source=SOFTMAX, spec="softmax_loss_naive",
        old="            dW[:, j] += (probs[j] - (j == y[i])) * X[i]\n",
        new="            dW[:, j] += probs[j] * X[i]\n",
        expect=frozenset({"W"}),
    ),
    Mutant(
        name="softmax_loss_vectorized: loss not averaged over N",
        source=SOFTMAX, spec="softmax_loss_vectorized",
        old="    loss = -np.log(probs[np.arange(num_train), y]).sum() / num_train\n",
        new="    loss = -np.log(probs[np.arange(num_train), y]).sum()\n",
        expect=frozenset({"forward", "W"}),
    ),
    Mutant(
        name="softmax_loss_vectorized: regularisation left out of the loss and dW",
        source=SOFTMAX, spec="softmax_loss_vectorized",
        old="    loss += reg * np.sum(W * W)\n    dscores",
        new="    dscores",
        expect=frozenset({"forward", "W"}),
    ),
]

MUTANTS += [
    Mutant(
        name="softmax_loss_naive: a loss of shape (1, 1), not averaged over N",
        source=SOFTMAX, spec="softmax_loss_naive",
        old="        loss -= np.log(probs[y[i]])\n", new=_LOSS_11,
        also=(("    loss = loss / num_train + reg", "    loss = loss + reg"),),
        expect=frozenset({"forward", "W"}),
    ),
]

WARNED: list[Warned] = [
    Warned(
        name="softmax_loss_naive: the loss returned as an array of shape (1, 1)",
        source=SOFTMAX, spec="softmax_loss_naive",
        old="        loss -= np.log(probs[y[i]])\n", new=_LOSS_11,
        expect=frozenset({ViolationKind.LOSS_SHAPE}), diagnosis="shape (1, 1)",
    ),
    Warned(  # the course corpus: three 2022 folders, VS Code's auto-import of a typed `true`
        name="softmax_loss_vectorized: an editor's auto-import of a package not installed, never used",
        source=SOFTMAX, spec="softmax_loss_vectorized",
        old="import numpy as np\n", new="import numpy as np\nfrom sqlalchemy import true\n",
        expect=frozenset({ViolationKind.STRAY_IMPORT}), diagnosis="from sqlalchemy import true",
    ),
]

VARIANTS: list[Variant] = [
    Variant(
        name="svm_loss_naive: 0.5 * reg * sum(W**2) with gradient reg * W (the 2016 starter code)",
        source=SVM, spec="svm_loss_naive",
        old="    loss += reg * np.sum(W * W)\n    dW += 2 * reg * W\n",
        new="    loss += 0.5 * reg * np.sum(W * W)\n    dW += reg * W\n",
    ),
    Variant(
        name="softmax_loss_vectorized: shifted by the row maximum before exp, log-sum-exp form",
        source=SOFTMAX, spec="softmax_loss_vectorized",
        old="    probs = np.exp(scores)\n    probs /= probs.sum(axis=1, keepdims=True)\n",
        new="    probs = np.exp(scores - np.log(np.exp(scores).sum(axis=1, keepdims=True)))\n",
    ),
    Variant(
        name="svm_loss_vectorized: dW from a 0/1 mask with np.where, in float64 buffers",
        source=SVM, spec="svm_loss_vectorized",
        old="    counts = (margins > 0).astype(float)\n",
        new="    counts = np.where(margins > 0, 1.0, 0.0)\n",
    ),
]
