"""Reference layers in plain numpy, CS231n signatures, complex-step safe.

These are the oracle a student's layers are compared with. Nothing here imports gradcheck.
"""

from reference_layers.activations import relu_backward, relu_forward
from reference_layers.affine import affine_backward, affine_forward
from reference_layers.losses import softmax_loss, svm_loss

__all__ = [
    "affine_backward",
    "affine_forward",
    "relu_backward",
    "relu_forward",
    "softmax_loss",
    "svm_loss",
]
