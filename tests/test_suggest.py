"""A student's own names: layer-like functions, the nearest known layer, --layer mappings."""

from __future__ import annotations

import pytest

from gradcheck.suggest import Candidate, describe, layer_like, nearest_layer, no_layers_message, parse_mapping


@pytest.mark.parametrize(("name", "kind", "layer"), [
    ("fc_fwd", "layer", "affine"),
    ("my_affine_forward", "layer", "affine"),
    ("linear_forward", "layer", "affine"),
    ("afine_forward", "layer", "affine"),  # a typo
    ("conv_fwd_naive", "layer", "conv"),
    ("batchNormForward", "layer", "batchnorm"),  # not batchnorm_alt, which shares the forward
    ("relu_forward_v2", "layer", "relu"),
    ("softmax_loss_vec", "loss", "softmax_loss"),
    ("my_svm_loss", "loss", "svm_loss"),
    ("softmax_loss_vectorized", "loss", "softmax_loss"),  # a classifier's name, another signature
    ("temporal_softmax_loss_v2", "loss", "temporal_softmax_loss"),
    ("helper_forward", "layer", None),  # "_forward" alone makes no layer near
    ("my_loss", "loss", None),
    ("fc_fwd", "loss", None),
])
def test_nearest_layer(name, kind, layer):
    assert nearest_layer(name, kind) == layer


def test_layer_like_pairs_forwards_with_backwards_and_leaves_the_rest():
    functions = ["fc_fwd", "fc_bwd", "relu_forward", "relu_backward", "helper", "my_loss",
                 "pool_forward", "dropout_backward", "camelForward", "camelBackward"]
    found = layer_like(functions, exclude={"relu_forward", "relu_backward"})
    assert found == [
        Candidate("camelForward", "camelBackward", None),
        Candidate("fc_fwd", "fc_bwd", "affine"),
        Candidate("pool_forward", None, None, lone=True),
        Candidate("dropout_backward", None, None, lone=True),
        Candidate("my_loss", None, None),
    ]
    assert found[1].option == "--layer affine=fc_fwd,fc_bwd"
    assert found[0].option is None and found[2].option is None


def test_descriptions_say_why_and_how():
    assert describe(Candidate("fc_fwd", "fc_bwd", "affine")) == (
        "fc_fwd/fc_bwd: not a CS231n name; nearest known layer: affine (add --layer "
        "affine=fc_fwd,fc_bwd to check it as one)")
    assert describe(Candidate("affine_forward", None, "affine", lone=True)) == (
        "affine_forward: no affine_backward next to it")
    assert describe(Candidate("fc_fwd", None, "affine", lone=True)) == (
        "fc_fwd: looks like the forward of affine, but no backward is next to it")
    assert describe(Candidate("helper_forward", None, None, lone=True)) == (
        "helper_forward: not a layer gradcheck knows (see `gradcheck list`)")


def test_no_layers_message_with_and_without_candidates():
    text = no_layers_message(["a.py"], [Candidate("fc_fwd", "fc_bwd", "affine")])
    assert text.splitlines()[1:] == [
        "functions in a.py that look like layers:",
        "  - fc_fwd/fc_bwd: not a CS231n name; nearest known layer: affine (add --layer "
        "affine=fc_fwd,fc_bwd to check it as one)",
        "check them under their own names with --layer LAYER=FORWARD,BACKWARD:",
        "  gradcheck check a.py --layer affine=fc_fwd,fc_bwd",
    ]
    assert no_layers_message(["a.py"], []).splitlines()[1] == (
        "a.py defines no function that looks like a layer (a name with forward, backward or loss in it)")


def test_parse_mapping():
    assert parse_mapping("affine=fc_fwd,fc_bwd") == ("affine", "fc_fwd", "fc_bwd")
    assert parse_mapping("softmax_loss=my_softmax") == ("softmax_loss", "my_softmax", None)


@pytest.mark.parametrize(("value", "message"), [
    ("afine=f,b", "--layer afine=f,b: no layer named 'afine' (did you mean affine? see `gradcheck list`)"),
    ("affine=f", "--layer affine=f: affine is a layer: name its functions as --layer affine=FORWARD,BACKWARD"),
    ("affine=f,", "--layer affine=f,: affine is a layer: name its functions as --layer affine=FORWARD,BACKWARD"),
    ("softmax_loss=f,b", "--layer softmax_loss=f,b: softmax_loss is a loss: name its functions as "
                         "--layer softmax_loss=LOSS_FUNCTION"),
])
def test_parse_mapping_errors_quote_the_value(value, message):
    with pytest.raises(ValueError) as info:
        parse_mapping(value)
    assert str(info.value) == message
