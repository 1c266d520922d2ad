"""Layer specs: signature, generated cases and reference pair for every known layer.

Each family module registers its specs on import; this package imports them all.
"""

# Importing a family module registers its specs.
from gradcheck.specs import basic, classifiers, conv, normalization, recurrent, sandwiches  # noqa: F401
from gradcheck.specs._registry import Case, Convention, Spec, all_specs, get_spec, register

__all__ = ["Case", "Convention", "Spec", "all_specs", "get_spec", "register"]
