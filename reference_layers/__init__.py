"""Reference layers in plain numpy, CS231n signatures, complex-step safe.

These are the oracle a student's layers are compared with. Nothing here imports gradcheck.
Each family lives in its own module; this package re-exports every public name.
"""

from reference_layers import (
    activations,
    affine,
    attention,
    classifiers,
    conv,
    dropout,
    embedding,
    losses,
    models,
    normalization,
    pooling,
    recurrent,
    sandwiches,
    temporal,
)
from reference_layers.activations import *  # noqa: F403
from reference_layers.affine import *  # noqa: F403
from reference_layers.attention import *  # noqa: F403
from reference_layers.classifiers import *  # noqa: F403
from reference_layers.conv import *  # noqa: F403
from reference_layers.dropout import *  # noqa: F403
from reference_layers.embedding import *  # noqa: F403
from reference_layers.losses import *  # noqa: F403
from reference_layers.models import *  # noqa: F403
from reference_layers.normalization import *  # noqa: F403
from reference_layers.pooling import *  # noqa: F403
from reference_layers.recurrent import *  # noqa: F403
from reference_layers.sandwiches import *  # noqa: F403
from reference_layers.temporal import *  # noqa: F403

_MODULES = (activations, affine, attention, classifiers, conv, dropout, embedding, losses, models,
            normalization, pooling, recurrent, sandwiches, temporal)
__all__ = sorted(name for module in _MODULES for name in module.__all__)  # pyright: ignore
