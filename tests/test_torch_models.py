"""Models in torch tensors (EECS 498/598's TwoLayerNet ... DeepConvNet): discovery, verdicts,
device hazards; tensors on a device written into the code."""

import json
import os
import shutil

import pytest

from gradcheck.cli import main
from gradcheck.discover import discover, load_target
from gradcheck.options import CheckOptions

torch = pytest.importorskip("torch")

from gradcheck.torch_layers import check_torch_match  # noqa: E402
from gradcheck.torch_models import check_torch_model  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
MODELS = os.path.join(EXAMPLES, "torch_models_correct.py")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
OPTIONS = CheckOptions.within(120, mode="directional", device="cpu")


@pytest.fixture(scope="module")
def correct():
    return load_target(MODELS)


def _edited(tmp_path, old, new, name="torch_models_correct.py"):
    """A copy of the examples' model file (and the files it imports) with one edit."""
    for helper in ("a3_helper.py", "torch_layers_correct.py", "torch_models_correct.py"):
        shutil.copy(os.path.join(EXAMPLES, helper), tmp_path / helper)
    path = tmp_path / name
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return load_target(str(path))


def _check(module, label):
    match = next(m for m in discover(module).matches if m.spec == label)
    return check_torch_model(module, match.forward, match.config, OPTIONS)


def test_models_are_found_in_each_configuration(correct):
    found = {(m.spec, m.forward, m.kind, m.config) for m in discover(correct).matches}
    assert found == {
        ("TwoLayerNet", "TwoLayerNet", "torch_model", ""),
        ("FullyConnectedNet(plain)", "FullyConnectedNet", "torch_model", "plain"),
        ("FullyConnectedNet(dropout)", "FullyConnectedNet", "torch_model", "dropout"),
        ("ThreeLayerConvNet", "ThreeLayerConvNet", "torch_model", ""),
        ("DeepConvNet(plain)", "DeepConvNet", "torch_model", "plain"),
        ("DeepConvNet(batchnorm)", "DeepConvNet", "torch_model", "batchnorm"),
    }  # the imported layer classes are the other file's, not this one's


@pytest.mark.parametrize("label", ["TwoLayerNet", "FullyConnectedNet(plain)", "FullyConnectedNet(dropout)",
                                   "ThreeLayerConvNet", "DeepConvNet(plain)", "DeepConvNet(batchnorm)"])
def test_correct_models_pass(correct, label):
    outcome = _check(correct, label)
    assert outcome.verdict == "passed", outcome.report_text or outcome.forward_message
    assert outcome.kind == "model" and outcome.spec == label
    assert set(outcome.gradients) >= {"W1", "b1", "W2", "b2"}


def test_cli_checks_the_models_in_the_worker(capsys):
    assert main(["check", MODELS, "--device", "cpu", "--json", "-", "--quiet", "--layer", "DeepConvNet"]) == 0
    entries = {e["layer"]: e for e in json.loads(capsys.readouterr().out)["layers"]}
    assert set(entries) == {"DeepConvNet(plain)", "DeepConvNet(batchnorm)"}
    deep = entries["DeepConvNet(batchnorm)"]
    assert (deep["kind"], deep["verdict"], deep["forward"]) == ("model", "passed", "ok")
    assert deep["gradients"]["dgamma3"] == "ok"


def test_missing_regularisation_gradient_is_named(tmp_path):
    module = _edited(tmp_path, "        grads[key] = grads[key] + 2 * factor * model.reg * w\n",
                     "        grads[key] = grads[key] + 2 * factor * model.reg * w * (key != 'W2')\n")
    outcome = _check(module, "TwoLayerNet")
    assert outcome.verdict == "FAILED" and outcome.forward == "ok"
    assert {k for k, v in outcome.gradients.items() if v != "ok"} == {"W2"}


def test_half_reg_in_two_layer_net_is_a_wrong_loss_named(tmp_path):
    module = _edited(tmp_path, "        return _regularise(self, loss, grads)\n\n\nclass FullyConnectedNet:",
                     "        return _regularise(self, loss, grads, factor=0.5)\n\n\nclass FullyConnectedNet:")
    outcome = _check(module, "TwoLayerNet")
    assert outcome.verdict == "FAILED" and set(outcome.gradients.values()) == {"ok"}
    assert "Yours is the loss with 0.5 * reg * sum(W**2), which this course's TwoLayerNet does not use" \
        in outcome.forward_message


def test_full_reg_in_fully_connected_net_passes(tmp_path):
    module = _edited(tmp_path, "return _regularise(self, loss, grads, factor=0.5)",
                     "return _regularise(self, loss, grads, factor=1.0)")
    assert _check(module, "FullyConnectedNet(plain)").verdict == "passed"


def test_swapped_batchnorm_gradients_are_named(tmp_path):
    module = _edited(tmp_path, 'dh, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"], grads[f"beta{i}"] = ',
                     'dh, grads[f"W{i}"], grads[f"b{i}"], grads[f"beta{i}"], grads[f"gamma{i}"] = ')
    outcome = _check(module, "DeepConvNet(batchnorm)")
    assert outcome.verdict == "FAILED" and outcome.forward == "ok"
    assert {k for k, v in outcome.gradients.items() if v != "ok"} == {
        "gamma1", "beta1", "gamma2", "beta2", "gamma3", "beta3"}


def test_parameters_made_without_device_are_a_device_warning(tmp_path):
    module = _edited(tmp_path, '            "b1": torch.zeros(hidden_dim, dtype=dtype, device=device),\n',
                     '            "b1": torch.zeros(hidden_dim, dtype=dtype),\n')
    outcome = _check(module, "TwoLayerNet")
    assert outcome.verdict == "warning"
    (warning,) = outcome.warnings
    assert warning["kind"] == "device"
    assert "torch.zeros at line 61 of torch_models_correct.py (TwoLayerNet.__init__), kept in " \
           "model.params['b1']" in warning["message"]


def test_parameters_made_in_float32_despite_dtype_are_a_param_dtype_warning(tmp_path):
    """The constructor ignores dtype= for one parameter: the check converts it to float64 and
    the gradients agree, but the course's notebook checks in float64 and fails there."""
    module = _edited(tmp_path, '            "b1": torch.zeros(hidden_dim, dtype=dtype, device=device),\n',
                     '            "b1": torch.zeros(hidden_dim, device=device),\n')
    outcome = _check(module, "TwoLayerNet")
    assert outcome.verdict == "warning"
    (warning,) = outcome.warnings
    assert warning["kind"] == "param_dtype"
    assert "keeps model.params['b1'] (float32)" in warning["message"]


@NO_CUDA
def test_model_made_on_cuda_says_so(tmp_path):
    module = _edited(tmp_path, '            "b1": torch.zeros(hidden_dim, dtype=dtype, device=device),\n',
                     '            "b1": torch.zeros(hidden_dim, dtype=dtype, device="cuda"),\n')
    outcome = _check(module, "TwoLayerNet")
    assert outcome.verdict == "FAILED" and outcome.contract == ["fixed_device"]
    assert outcome.forward_message.startswith(
        "creates a tensor on cuda (torch.zeros at line 61 of torch_models_correct.py (TwoLayerNet.__init__)) "
        "while the inputs are on cpu: this machine has no CUDA device, so it cannot run here.")
    assert "Traceback" not in outcome.forward_message and "File " not in outcome.forward_message


@NO_CUDA
@pytest.mark.parametrize("where, label", [("forward", "Linear"), ("backward", "Linear")])
def test_layer_on_a_fixed_cuda_device_says_so(tmp_path, where, label):
    lines = {"forward": "        out = x.reshape(x.shape[0], -1).mm(w) + b\n",
             "backward": "        db = dout.sum(dim=0)\n"}
    made = {"forward": "        out = x.reshape(x.shape[0], -1).mm(w) + torch.zeros(b.shape, device='cuda')\n",
            "backward": "        db = dout.sum(dim=0).cuda()\n"}
    module = _edited(tmp_path, lines[where], made[where], name="torch_layers_correct.py")
    match = next(m for m in discover(module).matches if m.spec == label)
    outcome = check_torch_match(module, match.config, match.spec, match.forward, match.backward, OPTIONS)
    assert outcome.verdict == "FAILED" and "fixed_device" in outcome.contract
    text = outcome.forward_message if where == "forward" else outcome.notes[0]
    function = "torch.zeros" if where == "forward" else ".cuda()"
    assert text.startswith(f"creates a tensor on cuda ({function} at line ")
    assert "this machine has no CUDA device" in text and "device=x.device" in text


def test_numpy_models_are_unchanged():
    module = load_target(os.path.join(HERE, "fixtures", "assignment", "cs231n", "classifiers", "fc_net.py"))
    kinds = {m.kind for m in discover(module).matches}
    assert kinds == {"model"}
