"""The data-only channel between the judge and the worker that runs the checked code.

A message is one frame: an 8-byte length, a 4-byte header length, a JSON header, then the
raw bytes of the arrays the header describes (dtype, shape, memory order, offset, size).
Nothing is ever unpickled. Every frame read is validated - sizes against limits, dtypes
against plain numeric kinds, byte counts against shapes, the value tree against a fixed
grammar - and anything else raises :class:`ChannelError`, which the judge turns into the
checked code's verdict, never its own crash.

Values are encoded as a tree of tagged JSON nodes: ``null``, booleans, numbers and strings
as themselves; ``{"a": i}`` an array (``{"s": i}`` a NumPy scalar), ``{"t": [...]}`` a
tuple, ``{"l": [...]}`` a list, ``{"d": [[key, value], ...]}`` a dict, ``{"c": [re, im]}``
a complex number, ``{"dt": "float64"}`` a NumPy scalar type, and ``{"h": id, ...}`` an
object that stays on the worker's side (a cache, a model), known to the judge by its id.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

__all__ = ["ChannelError", "Codec", "read_frame", "write_frame"]

MAX_FRAME = 1 << 31  # bytes in one message
MAX_HEADER = 16 << 20
MAX_ARRAYS = 100_000
MAX_NODES = 1_000_000
MAX_DEPTH = 64
_KINDS = "biufc"  # bool, signed, unsigned, float, complex: nothing else crosses


class ChannelError(Exception):
    """A frame that is not a valid message: truncated, oversized, or malformed."""


def write_frame(sock: socket.socket, header: dict[str, Any], arrays: list[np.ndarray]) -> None:
    """Send ``header`` (JSON) and ``arrays`` (raw bytes, described in the header)."""
    described, offset, buffers = [], 0, []
    for arr in arrays:
        order: Literal["C", "F"] = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
        data = arr.tobytes(order=order)
        described.append({"dtype": arr.dtype.str, "shape": list(arr.shape), "order": order,
                          "offset": offset, "nbytes": len(data)})
        offset += len(data)
        buffers.append(data)
    text = json.dumps({**header, "arrays": described}).encode("utf-8")
    head = struct.pack("<QI", 4 + len(text) + offset, len(text))
    sock.sendall(b"".join([head, text, *buffers]))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes, taken as they come (memory grows with what was sent, not with what
    a header promised)."""
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise EOFError("the channel closed in the middle of a message" if got else "the channel closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket, max_frame: int = MAX_FRAME) -> tuple[dict[str, Any], list[np.ndarray]]:
    """One message: its header and its arrays, validated. ``EOFError`` when the other
    side is gone; :class:`ChannelError` when what came is not a message."""
    total, header_size = struct.unpack("<QI", _read_exactly(sock, 12))
    if total > max_frame or header_size > MAX_HEADER or header_size + 4 > total:
        raise ChannelError(f"a message of {total} bytes (header {header_size}) is beyond the limits")
    body = _read_exactly(sock, total - 4)
    try:
        header = json.loads(body[:header_size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ChannelError(f"the message header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ChannelError("the message header is not a JSON object")
    arrays = _arrays(header.get("arrays"), memoryview(body)[header_size:])
    return header, arrays


def _arrays(described: Any, payload: memoryview) -> list[np.ndarray]:
    if not isinstance(described, list) or len(described) > MAX_ARRAYS:
        raise ChannelError("the message's array list is missing or too long")
    arrays = []
    for item in described:
        if not isinstance(item, dict):
            raise ChannelError("an array description is not an object")
        try:
            dtype = np.dtype(str(item["dtype"]))
            shape = tuple(int(s) for s in item["shape"])
            offset, nbytes, order = int(item["offset"]), int(item["nbytes"]), item["order"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelError(f"an array description is malformed: {exc}") from None
        if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise ChannelError(f"an array of dtype {dtype} crossed the channel (plain numbers only)")
        if any(s < 0 for s in shape) or order not in ("C", "F") or len(shape) > 32:
            raise ChannelError(f"an array of shape {shape} (order {order!r}) is malformed")
        if nbytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize or offset < 0 \
                or offset + nbytes > len(payload):
            raise ChannelError(f"an array's {nbytes} bytes do not match its shape {shape} and dtype {dtype}")
        flat = np.frombuffer(payload[offset:offset + nbytes], dtype=dtype)
        arrays.append(flat.reshape(shape, order=order).copy(order="K"))
    return arrays


class Codec:
    """Values to trees and back. ``keep`` stores an object on this side and returns its
    handle node; ``resolve`` turns a handle node received back into the object (on the
    worker) or a proxy (on the judge)."""

    def __init__(self, keep: Callable[[Any], dict[str, Any]],
                 resolve: Callable[[dict[str, Any]], Any]) -> None:
        self.keep, self.resolve = keep, resolve

    def encode(self, value: Any, arrays: list[np.ndarray], opaque: bool = False) -> Any:
        """The tree of ``value``; arrays go to ``arrays``. ``opaque`` keeps containers on
        this side (a forward's cache): only arrays, numbers and strings cross."""
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, np.generic):
            return value if isinstance(value, float) or abs(value) < 2**63 else float(value)
        if isinstance(value, complex):
            return {"c": [value.real, value.imag]}
        if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in _KINDS \
                and value.dtype.fields is None:
            arrays.append(np.asarray(value))
            return {"a" if isinstance(value, np.ndarray) else "s": len(arrays) - 1}
        if isinstance(value, type) and issubclass(value, np.generic) and np.dtype(value).kind in _KINDS:
            return {"dt": np.dtype(value).name}
        if not opaque and type(value) in (tuple, list):
            return {"t" if type(value) is tuple else "l": [self.encode(v, arrays) for v in value]}
        if not opaque and type(value) is dict and all(
                k is None or isinstance(k, (str, int, float, bool)) for k in value):
            return {"d": [[k, self.encode(v, arrays)] for k, v in value.items()]}
        return self.keep(value)

    def decode(self, tree: Any, arrays: list[np.ndarray]) -> Any:
        """The value of ``tree``; :class:`ChannelError` for anything outside the grammar."""
        budget = [MAX_NODES]
        return self._decode(tree, arrays, 0, budget)

    def _decode(self, tree: Any, arrays: list[np.ndarray], depth: int, budget: list[int]) -> Any:
        budget[0] -= 1
        if depth > MAX_DEPTH or budget[0] < 0:
            raise ChannelError("a value nested too deeply or too large crossed the channel")
        if tree is None or isinstance(tree, (bool, int, float, str)):
            return tree
        if not isinstance(tree, dict) or len(tree) < 1:
            raise ChannelError(f"a malformed value node: {str(tree)[:80]}")
        if "h" in tree:
            return self.resolve(tree)
        if len(tree) != 1:
            raise ChannelError(f"a malformed value node: {str(tree)[:80]}")
        (tag, body), = tree.items()
        if tag in ("a", "s"):
            if not isinstance(body, int) or isinstance(body, bool) or not 0 <= body < len(arrays):
                raise ChannelError(f"a reference to array {body!r} that the message does not hold")
            return arrays[body] if tag == "a" else arrays[body][()]
        if tag in ("t", "l") and isinstance(body, list):
            items = [self._decode(v, arrays, depth + 1, budget) for v in body]
            return tuple(items) if tag == "t" else items
        if tag == "d" and isinstance(body, list) and all(isinstance(p, list) and len(p) == 2 for p in body):
            keys = [p[0] for p in body]
            if not all(k is None or isinstance(k, (str, int, float, bool)) for k in keys):
                raise ChannelError("a dict with a key that is not a plain value")
            return {k: self._decode(v, arrays, depth + 1, budget) for k, (_, v) in zip(keys, body)}
        if tag == "c" and isinstance(body, list) and len(body) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in body):
            return complex(body[0], body[1])
        if tag == "dt" and isinstance(body, str):
            try:
                found = np.dtype(body)
            except TypeError:
                found = None
            if found is not None and found.kind in _KINDS:
                return found.type
        raise ChannelError(f"a malformed value node: {str(tree)[:80]}")
