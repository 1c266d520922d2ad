"""The layer classes of Michigan's EECS 498/598 (torch tensors), mapped to the specs.

Students write ``Linear.forward(x, w, b) -> (out, cache)`` and ``Linear.backward(dout,
cache) -> (dx, dw, db)`` as static methods; each class is checked against the spec of the
same layer (its cases, its reference), under the course's conventions: dropout's ``p`` is
the probability of *dropping* a unit in every year of this course.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

from gradcheck.specs._registry import Convention, Spec

__all__ = ["CLASS_LAYERS", "COURSE_CODE", "MODEL_REG_FACTORS", "course_spec"]

# class name -> (spec, forward method, backward method) for each pair it holds
CLASS_LAYERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "Linear": (("affine", "forward", "backward"),),
    "ReLU": (("relu", "forward", "backward"),),
    "Linear_ReLU": (("affine_relu", "forward", "backward"),),
    "Dropout": (("dropout", "forward", "backward"),),
    "Conv": (("conv", "forward", "backward"),),
    "MaxPool": (("max_pool", "forward", "backward"),),
    "Conv_ReLU": (("conv_relu", "forward", "backward"),),
    "Conv_ReLU_Pool": (("conv_relu_pool", "forward", "backward"),),
    "BatchNorm": (("batchnorm", "forward", "backward"), ("batchnorm_alt", "forward", "backward_alt")),
    "SpatialBatchNorm": (("spatial_batchnorm", "forward", "backward"),),
    "Linear_BatchNorm_ReLU": (("affine_bn_relu", "forward", "backward"),),
    "Conv_BatchNorm_ReLU": (("conv_bn_relu", "forward", "backward"),),
    "Conv_BatchNorm_ReLU_Pool": (("conv_bn_relu_pool", "forward", "backward"),),
}

# The course's own classes (torch's autograd inside): not the student's work.
COURSE_CODE = frozenset({"FastConv", "FastConvWB", "FastMaxPool"})

# The course's models, and the factors of reg * sum(W**2) their loss may have: the
# notebook asserts TwoLayerNet's loss with reg * sum(W**2), and the templates of
# ThreeLayerConvNet and DeepConvNet ask for no factor 0.5 ("to pass the automated tests");
# FullyConnectedNet's template asks for 0.5, and its notebook only checks gradients, so
# reg * sum(W**2) (which only rescales reg) passes too, as in CS231n.
MODEL_REG_FACTORS: dict[str, tuple[float, ...]] = {
    "TwoLayerNet": (1.0,),
    "FullyConnectedNet": (0.5, 1.0),
    "ThreeLayerConvNet": (1.0,),
    "DeepConvNet": (1.0,),
}


TORCH_MASK_RTOL = 1e-6  # a bool mask / (1 - p) is float32 in torch's default dtype


def course_spec(spec: Spec) -> Spec:
    """``spec`` under this course's conventions (the first convention is the current one)."""
    if spec.name == "dropout" and len(spec.conventions) == 2:
        keep, drop = spec.conventions
        drop = dataclasses.replace(drop, name="p is the probability of DROPPING a unit (EECS 498/598)",
                                   adapt=_float32_mask(drop))
        keep = dataclasses.replace(keep, name="p is the probability of KEEPING a unit (CS231n since 2018)",
                                   adapt=_float32_mask(keep))
        return dataclasses.replace(spec, conventions=(drop, keep))
    return spec


def _float32_mask(convention: Convention) -> Callable[[Spec], Spec]:
    """The convention's adaptation, with a dropout scale rounded to float32 admitted."""
    def adapt(spec: Spec) -> Spec:
        adapted = convention.apply(spec)
        if adapted.forward_check is None:
            return adapted
        check: Any = adapted.forward_check
        return dataclasses.replace(adapted, forward_check=partial(check,
                                                                  scale_rtol=TORCH_MASK_RTOL))
    return adapt
