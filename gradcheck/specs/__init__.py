"""Layer specs: signature, generated cases and reference pair for every known layer.

Each family module registers its specs on import; this package imports them all.
"""

from gradcheck.specs import basic  # noqa: F401  (registers affine, relu and the losses)
from gradcheck.specs._registry import Case, Spec, all_specs, get_spec, register

__all__ = ["Case", "Spec", "all_specs", "get_spec", "register"]
