"""Placeholder: specs registered by the reference-layer catalogue work (issue 3)."""

from __future__ import annotations
