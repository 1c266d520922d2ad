"""Layer specs: signature, generated cases and reference pair for every known layer.

Each family module registers its specs on import; this package imports them all.
"""

from typing import Any

from hypothesis import strategies as st

# Importing a family module registers its specs, in the order `gradcheck list` shows them.
# isort: off
from gradcheck.specs import basic, classifiers, conv, normalization  # noqa: F401
from gradcheck.specs import dropout  # noqa: F401
from gradcheck.specs import recurrent, sandwiches  # noqa: F401
from gradcheck.specs import bn_sandwiches  # noqa: F401
# isort: on
from gradcheck.specs._registry import Case, Convention, Spec, all_specs, get_spec, register

__all__ = ["Case", "Convention", "Spec", "all_specs", "get_spec", "layer_cases", "register"]


def layer_cases(name: str, **options: Any) -> st.SearchStrategy[Case]:
    """Ready arguments for the registered spec ``name`` (a :class:`Case`).

    ``options`` are passed to the spec's case strategy (``dtype=np.float32``,
    ``general=False``, ...).
    """
    return get_spec(name).cases(**options)
