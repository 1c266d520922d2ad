"""Patterns the field corpus of real students' files taught, as our own rewrites.

Each entry is a habit seen in real CS231n solutions (``benchmarks/field``), rewritten here
in our own words so that CI guards it without the corpus: the course skeleton's test-mode
batch norm without a cache, in-place writes that change no result, the dropout convention
of the course before 2018, running statistics kept wrongly.
"""

from __future__ import annotations

from benchmarks.mutants import Mutant, Variant, Warned
from gradcheck.kinds import ViolationKind

SKELETON = "examples/layers_skeleton.py"
RECURRENT = "reference_layers/recurrent.py"

_DROP_DOC = "      - p: Dropout parameter. We drop each neuron output with probability p.\n"
_DROP_MASK = "        mask = (np.random.rand(*x.shape) >= p) / (1 - p)\n"
_RUNNING = (
    "        running_mean = momentum * running_mean + (1 - momentum) * sample_mean\n"
    "        running_var = momentum * running_var + (1 - momentum) * sample_var\n"
)
_TEST_MODE = (
    "        x_hat = (x - running_mean) / np.sqrt(running_var + eps)\n"
    "        out = gamma * x_hat + beta\n"
)

MUTANTS: list[Mutant] = [
    Mutant(
        name="batchnorm: running averages weight the batch statistic by momentum (swapped)",
        source=SKELETON, spec="batchnorm", old=_RUNNING,
        new=("        running_mean = (1 - momentum) * running_mean + momentum * sample_mean\n"
             "        running_var = (1 - momentum) * running_var + momentum * sample_var\n"),
        expect=frozenset({"forward"}), diagnosis="running = momentum * running", geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: running variance from the unbiased sample variance",
        source=SKELETON, spec="batchnorm", old=_RUNNING,
        new=("        running_mean = momentum * running_mean + (1 - momentum) * sample_mean\n"
             "        running_var = momentum * running_var + (1 - momentum) * np.var(x, axis=0, ddof=1)\n"),
        expect=frozenset({"forward"}), diagnosis="running_var", geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: running statistics never stored in bn_param",
        source=SKELETON, spec="batchnorm",
        old='    bn_param["running_mean"] = running_mean\n    bn_param["running_var"] = running_var\n',
        new="",
        expect=frozenset({"forward"}), diagnosis="must store the updated running statistics",
        geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: test mode normalises with the batch statistics",
        source=SKELETON, spec="batchnorm", old=_TEST_MODE,
        new=("        x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)\n"
             "        out = gamma * x_hat + beta\n"),
        expect=frozenset({"forward"}), geometry="mode=test",
    ),
    Mutant(
        name="dropout: drop convention stated, but kept units not rescaled",
        source=SKELETON, spec="dropout", old=_DROP_MASK,
        new="        mask = np.random.rand(*x.shape) >= p\n",
        expect=frozenset({"forward"}), geometry="mode=train",
    ),
]

VARIANTS: list[Variant] = [
    Variant(
        name="batchnorm: test mode caches an empty dict (backward refuses it)",
        source=SKELETON, spec="batchnorm",
        old="    out, cache = None, None\n", new="    out, cache = None, {}\n",
    ),
    Variant(
        name="dropout: docstring says p drops, code keeps with probability p (as the 2017 notebook)",
        source=SKELETON, spec="dropout", old=_DROP_MASK,
        new="        mask = (np.random.rand(*x.shape) < p) / p\n",
    ),
    Variant(
        name="dropout: drop convention stated in the docstring and followed",
        source=SKELETON, spec="dropout", old="    return dout\n", new="    return dout.copy()\n",
    ),
]

WARNED = [
    Warned(
        name="dropout: p used as the DROP probability with no docstring saying so",
        source=SKELETON, spec="dropout", old=_DROP_DOC, new="",
        expect=frozenset({ViolationKind.CONVENTION}), diagnosis="probability of DROPPING",
    ),
    Warned(
        name="batchnorm: test mode caches the train-mode quantities; backward wrong there",
        source=SKELETON, spec="batchnorm", old=_TEST_MODE,
        new=(_TEST_MODE + '        cache = {"x_hat": x_hat, "gamma": gamma, '
             '"std": np.sqrt(running_var + eps)}\n'),
        expect=frozenset({ViolationKind.TEST_MODE_BACKWARD}), diagnosis="judged by its forward here",
    ),
    Warned(
        name="relu: backward masks dout in place, skeleton style (dout[x <= 0] = 0; dx = dout)",
        source=SKELETON, spec="relu", old="    return out, cache\n\n\ndef relu_backward",
        new="    return out, cache\n\n\ndef relu_backward",
        expect=frozenset({ViolationKind.DOUT_MUTATED}), diagnosis="wrote into the upstream gradient",
    ),
    Warned(
        name="lstm_step: dnext_c accumulated in place (dnext_c += ...)",
        source=RECURRENT, spec="lstm_step",
        old="    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)\n",
        new="    dnext_c += dnext_h * o * (1 - tanh_c * tanh_c)\n    dc = dnext_c\n",
        expect=frozenset({ViolationKind.DOUT_MUTATED}), diagnosis="dout2",
    ),
]
