"""Layers in torch tensors (EECS 498/598 classes): discovery, verdicts, device and dtype hazards."""

import os
import subprocess
import sys

import numpy as np
import pytest

from gradcheck.cli import main
from gradcheck.discover import discover, load_target
from gradcheck.options import CheckOptions

torch = pytest.importorskip("torch")

from gradcheck.devices import TensorWatch  # noqa: E402
from gradcheck.torch_layers import check_torch_match  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
CORRECT = os.path.join(EXAMPLES, "torch_layers_correct.py")
BUGGY = os.path.join(EXAMPLES, "torch_layers_buggy.py")


@pytest.fixture(scope="module")
def correct():
    return load_target(CORRECT)


@pytest.fixture(scope="module")
def buggy():
    return load_target(BUGGY)


def _check(module, label, mode="directional"):
    match = next(m for m in discover(module).matches if m.spec == label)
    options = CheckOptions.within(120, examples=5, mode=mode, device="cpu")
    return check_torch_match(module, match.config, match.spec, match.forward, match.backward, options)


def test_discovery_reports_classes_under_their_names(correct):
    found = discover(correct)
    labels = {m.spec: (m.forward, m.backward, m.kind, m.config) for m in found.matches}
    assert labels["Linear"] == ("Linear.forward", "Linear.backward", "torch", "affine")
    assert labels["BatchNorm.backward_alt"] == ("BatchNorm.forward", "BatchNorm.backward_alt", "torch",
                                                "batchnorm_alt")
    assert labels["Conv_BatchNorm_ReLU_Pool"] == ("Conv_BatchNorm_ReLU_Pool.forward",
                                                  "Conv_BatchNorm_ReLU_Pool.backward", "torch",
                                                  "conv_bn_relu_pool")
    assert set(labels) == {"Linear", "ReLU", "Linear_ReLU", "Dropout", "Conv", "MaxPool", "BatchNorm",
                           "BatchNorm.backward_alt", "SpatialBatchNorm", "Linear_BatchNorm_ReLU",
                           "Conv_BatchNorm_ReLU", "Conv_BatchNorm_ReLU_Pool"}


def test_numpy_file_keeps_its_matches():
    module = load_target(os.path.join(EXAMPLES, "layers_correct.py"))
    kinds = {m.kind for m in discover(module).matches}
    assert "torch" not in kinds


@pytest.mark.parametrize("label", ["Linear", "ReLU", "Dropout", "BatchNorm", "SpatialBatchNorm",
                                   "Linear_BatchNorm_ReLU", "Conv_BatchNorm_ReLU_Pool"])
def test_correct_torch_layers_pass(correct, label):
    outcome = _check(correct, label)
    assert outcome.verdict == "passed", outcome.report_text or outcome.forward_message


def test_broadcast_bias_not_summed_is_named(buggy):
    outcome = _check(buggy, "Linear")
    assert outcome.gradients == {"x": "ok", "w": "ok", "b": "FAILED"}
    assert "db is 1/" in outcome.report_text and "central differences" in outcome.report_text
    assert outcome.to_dict()["layer"] == "Linear"


def test_pad_zero_slicing_is_a_shape_failure(buggy):
    outcome = _check(buggy, "Conv")
    assert outcome.gradients["x"] == "shape"
    assert "[p:-p]" in outcome.report_text


def test_dgamma_bug_fails(buggy):
    outcome = _check(buggy, "BatchNorm")
    assert outcome.gradients == {"x": "ok", "gamma": "FAILED", "beta": "ok"}


def test_write_into_dout_is_a_warning(buggy):
    outcome = _check(buggy, "ReLU")
    assert outcome.verdict == "warning"
    assert [w["kind"] for w in outcome.warnings] == ["dout_mutated"]
    assert "dout.clone()" in outcome.warnings[0]["message"]  # torch's words, not numpy's


def test_tensor_without_device_is_a_device_warning_on_cpu(buggy):
    outcome = _check(buggy, "Linear_ReLU")
    assert outcome.verdict == "warning"
    (warning,) = outcome.warnings
    assert warning["kind"] == "device"
    assert "torch.zeros at line 48 of torch_layers_buggy.py (Linear_ReLU.backward)" in warning["message"]
    assert "fails when the course runs on cuda" in warning["message"]


def test_float32_intermediate_fails_and_is_named(buggy):
    # A float32 round-off (1e-7) that only an entry-wise comparison resolves: in a joint
    # direction through x, gamma and beta it can hide, as real students' float32 ones()
    # factors of 1/N do, which the course's own tolerance accepts.
    outcome = _check(buggy, "SpatialBatchNorm", mode="sample")
    assert outcome.gradients["x"] == "FAILED"
    assert "float32_intermediate" in outcome.contract
    assert "torch.zeros at line 151 of torch_layers_buggy.py (SpatialBatchNorm.forward)" in outcome.notes[0]


HARMLESS_FLOAT32 = """
import torch


class ReLU:
    @staticmethod
    def forward(x):
        mask = torch.zeros(x.shape, device=x.device)  # float32, but only ever 0 or 1
        mask[x > 0] = 1
        return x * mask, mask

    @staticmethod
    def backward(dout, cache):
        return dout * cache
"""


def test_float32_tensor_that_loses_nothing_passes_entrywise(tmp_path):
    # A float32 mask of zeros and ones is exact: no float32_intermediate, even entry-wise.
    path = tmp_path / "relu_mask.py"
    path.write_text(HARMLESS_FLOAT32)
    outcome = _check(load_target(str(path)), "ReLU", mode="sample")
    assert outcome.passed and outcome.gradients == {"x": "ok"}
    assert "float32_intermediate" not in outcome.contract


def _hazards(code, dtype=torch.float64):
    x = torch.ones(3, 2, dtype=torch.float64)
    watch = TensorWatch(__file__, dtype)
    with watch:
        code(x)
    return [(h.kind, h.function) for h in watch.hazards]


def _zeros_then_write(x):
    z = torch.zeros(*x.shape, dtype=x.dtype)
    z[x > 0] = x[x > 0]


def _on_the_inputs_device(x):
    a = torch.zeros(*x.shape, dtype=x.dtype, device=x.device)
    a += x
    b = torch.zeros(x.shape, dtype=x.dtype).to(x.device)
    b += x
    c = torch.zeros_like(x)
    c += x
    x[torch.arange(3), 0]  # CPU index tensors are allowed on any device
    torch.tensor(2.0) * x  # so are CPU scalars


def test_watch_flags_a_cpu_tensor_meeting_the_inputs():
    assert _hazards(_zeros_then_write) == [("device", "torch.zeros")]


def test_watch_passes_tensors_made_on_the_inputs_device():
    assert _hazards(_on_the_inputs_device) == []


def _written_cpu(x):
    a = torch.zeros(x.shape, dtype=x.dtype, device='cpu')
    a += x
    b = torch.zeros(x.shape, dtype=x.dtype, device=torch.device("cpu"))
    b += x
    c = torch.zeros(x.shape, dtype=x.dtype, device=x.device)  # named like a literal: not one
    c += x


def test_watch_flags_a_device_written_into_the_code_as_a_cpu_tensor():
    """``device='cpu'`` works on the CPU and fails on cuda, as a tensor made without device=
    does: the same device warning, named so."""
    assert _hazards(_written_cpu) == [("device", "torch.zeros(device='cpu')")] * 2


def test_watch_records_default_dtype_tensors():
    assert _hazards(lambda x: torch.zeros(x.shape, device=x.device)) == [("dtype", "torch.zeros")]
    assert _hazards(lambda x: torch.zeros(x.shape, device=x.device), dtype=torch.float32) == []


def test_torch_adapter_refuses_complex_and_shares_memory_on_cpu():
    from gradcheck.torch_adapter import numpy_pair

    def forward(x):
        x += 1  # a write the contract checks must see
        return x * 2, None

    fwd, _ = numpy_pair(forward, lambda dout, cache: dout)
    x = np.zeros(3)
    out, _ = fwd(x)
    assert isinstance(out, np.ndarray) and x.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TypeError, match="complex step does not pass through torch"):
        fwd(np.zeros(3, dtype=complex))


def test_device_option_is_validated():
    with pytest.raises(ValueError, match="device='gpu' is not one of auto, cpu, cuda"):
        CheckOptions(device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_a_usage_error(capsys):
    assert main(["check", CORRECT, "--device", "cuda"]) == 2
    assert "--device cuda: torch finds no CUDA device here" in capsys.readouterr().err


def test_numpy_users_do_not_import_torch():
    code = ("import sys, gradcheck, gradcheck.cli, gradcheck.discover as d; "
            f"d.discover(d.load_target({os.path.join(EXAMPLES, 'layers_correct.py')!r})); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
