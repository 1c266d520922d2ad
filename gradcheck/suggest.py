"""A student's own function names: which look like layers, and the nearest known layer.

``fc_fwd``/``fc_bwd`` is no CS231n name, but it is plainly a forward/backward pair and
most likely an affine layer. :func:`layer_like` finds such pairs (and losses) among a
file's functions and names the nearest known layer, so that the command line can say
``--layer affine=fc_fwd,fc_bwd`` instead of only "no layers found".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gradcheck.specs import all_specs, get_spec

__all__ = [
    "Candidate",
    "closest",
    "describe",
    "layer_like",
    "nearest_layer",
    "no_layers_message",
    "parse_mapping",
]

_PARTNERS = (("forward", "backward"), ("Forward", "Backward"), ("fwd", "bwd"), ("Fwd", "Bwd"))
# Other names students give these layers, as words of a snake_case name.
_ALIASES = {
    "fc": "affine", "linear": "affine", "dense": "affine", "fully_connected": "affine",
    "bn": "batchnorm", "batch_norm": "batchnorm", "layer_norm": "layernorm", "ln": "layernorm",
    "maxpool": "max_pool", "avgpool": "avg_pool", "convolution": "conv", "conv2d": "conv",
    "embedding": "word_embedding", "cross_entropy": "softmax_loss", "hinge": "svm",
    "fwd": "forward", "bwd": "backward",
}
_CUTOFF = 0.6  # how near a name must be to count as a typo of another
_TYPO = 0.75  # the same, for a layer's name without forward/backward (shorter, so stricter)


@dataclass(frozen=True)
class Candidate:
    """Functions of the student's file that look like one layer (or a loss).

    ``backward`` is ``None`` for a loss, and for a forward with no backward beside it
    (``lone``); ``layer`` is the nearest known layer, or ``None`` when none is near.
    """

    forward: str
    backward: str | None
    layer: str | None
    lone: bool = False

    @property
    def label(self) -> str:
        return self.forward if self.backward is None else f"{self.forward}/{self.backward}"

    @property
    def option(self) -> str | None:
        """``--layer affine=fc_fwd,fc_bwd``: how to check these functions as that layer."""
        if self.layer is None or self.lone:
            return None
        functions = self.forward if self.backward is None else f"{self.forward},{self.backward}"
        return f"--layer {self.layer}={functions}"


def _stem(name: str) -> str:
    """snake_case, the words students use for a layer replaced by the course's, without
    ``forward`` or ``loss``: what tells one layer from another (``fc_fwd_v2`` -> ``affine_v2``)."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    for alias, word in sorted(_ALIASES.items(), key=lambda item: -len(item[0])):
        snake = re.sub(rf"(?<![a-z0-9]){alias}(?![a-z0-9])", word, snake)
    return re.sub(r"_+", "_", re.sub(r"forward|backward|loss", "", snake)).strip("_")


def nearest_layer(function: str, kind: str) -> str | None:
    """The known layer (``kind="layer"``) or loss whose names are nearest to ``function``:
    the longest whose name is part of it (``my_affine_v2`` is affine), else one a typo away."""
    stem = f"_{_stem(function)}_"
    contained: list[tuple[int, str]] = []
    best, score = None, _TYPO
    for spec in all_specs():
        if spec.kind != kind or any(function == forward for forward, _ in spec.names):
            continue  # its own name, yet not matched (another signature): some other layer
        for forward, _ in spec.names:
            known = _stem(forward)
            if f"_{known}_" in stem:
                contained.append((len(known), spec.name))
            ratio = difflib.SequenceMatcher(None, stem.strip("_"), known).ratio()
            if ratio > score:
                best, score = spec.name, ratio
    if contained:  # the longest; of equals, the first registered (batchnorm, not batchnorm_alt)
        return max(contained, key=lambda item: item[0])[1]
    return best


def _partner(name: str, functions: set[str]) -> str | None:
    for word, partner in _PARTNERS:
        if word in name and name.replace(word, partner) in functions:
            return name.replace(word, partner)
    return None


def _is_forward(name: str) -> bool:
    return any(word in name for word, _ in _PARTNERS)


def _is_backward(name: str) -> bool:
    return any(partner in name for _, partner in _PARTNERS)


def layer_like(functions: Iterable[str], exclude: Iterable[str] = ()) -> list[Candidate]:
    """The functions that look like forward/backward pairs or losses, each with its nearest
    known layer; names in ``exclude`` (already matched) are left out."""
    names = set(functions) - set(exclude)
    found: list[Candidate] = []
    paired: set[str] = set()
    for name in sorted(names):
        if _is_forward(name) and not _is_backward(name):
            backward = _partner(name, names)
            found.append(Candidate(name, backward, nearest_layer(name, "layer"), lone=backward is None))
            paired |= {name, backward or name}
    for name in sorted(names - paired):
        if "loss" in name.lower():
            found.append(Candidate(name, None, nearest_layer(name, "loss")))
        elif _is_backward(name):
            found.append(Candidate(name, None, None, lone=True))
    return found


def closest(name: str, names: Iterable[str]) -> str | None:
    """The name in ``names`` nearest to ``name`` (a typo), if any is near."""
    match = difflib.get_close_matches(name, list(names), n=1, cutoff=_CUTOFF)
    return match[0] if match else None


def parse_mapping(value: str) -> tuple[str, str, str | None]:
    """``"affine=fc_fwd,fc_bwd"`` -> ``("affine", "fc_fwd", "fc_bwd")``; ``ValueError`` with a
    message that quotes the value when it is not one."""
    layer, _, functions = value.partition("=")
    names = [part.strip() for part in functions.split(",")]
    known = [spec.name for spec in all_specs()]
    if layer not in known:
        near = closest(layer, known)
        hint = f"did you mean {near}? " if near else ""
        raise ValueError(f"--layer {value}: no layer named {layer!r} ({hint}see `gradcheck list`)")
    kind = get_spec(layer).kind
    if any(not n.isidentifier() for n in names) or len(names) != (2 if kind == "layer" else 1):
        shape = "FORWARD,BACKWARD" if kind == "layer" else "LOSS_FUNCTION"
        raise ValueError(f"--layer {value}: {layer} is a {kind}: name its functions as "
                         f"--layer {layer}={shape}")
    return layer, names[0], names[1] if kind == "layer" else None


def _known_partner(name: str) -> str | None:
    """The CS231n partner of a CS231n name (``affine_backward`` for ``affine_forward``)."""
    for spec in all_specs():
        for forward, backward in spec.names:
            if backward and name in (forward, backward):
                return backward if name == forward else forward
    return None


def describe(candidate: Candidate) -> str:
    """Why these functions were not checked, and how to check them."""
    name = candidate.label
    partner = _known_partner(candidate.forward) if candidate.lone else None
    if partner is not None:
        return f"{name}: no {partner} next to it"
    if candidate.lone and candidate.layer is not None:
        return f"{name}: looks like the forward of {candidate.layer}, but no backward is next to it"
    if candidate.option is not None:
        return (f"{name}: not a CS231n name; nearest known layer: {candidate.layer} (add "
                f"{candidate.option} to check it as one)")
    return f"{name}: not a layer gradcheck knows (see `gradcheck list`)"


def no_layers_message(paths: list[str], candidates: list[Candidate], wanted: Iterable[str] = ()) -> str:
    """The usage error for files without CS231n names (or none of the ``wanted`` ones): what
    looks like a layer in them, the nearest known layers, and the command that checks them
    under their own names."""
    where = ", ".join(paths)
    what = f" matching --layer {', '.join(sorted(wanted))}" if wanted else ""
    lines = [f"no layers{what} found in {where}; gradcheck recognises CS231n names such as "
             "affine_forward/affine_backward or softmax_loss (see `gradcheck list`)"]
    if not candidates:
        lines.append(f"{where} defines no function that looks like a layer (a name with "
                     "forward, backward or loss in it)")
        return "\n".join(lines)
    lines.append(f"functions in {where} that look like layers:")
    lines += [f"  - {describe(c)}" for c in candidates]
    options = [c.option for c in candidates if c.option is not None]
    if options:
        lines.append("check them under their own names with --layer LAYER=FORWARD,BACKWARD:")
        lines.append(f"  gradcheck check {' '.join(paths)} {' '.join(options)}")
    return "\n".join(lines)
