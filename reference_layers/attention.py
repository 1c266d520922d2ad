"""Placeholder: filled in by the reference-layer catalogue work (issue 3)."""

from __future__ import annotations

__all__: list[str] = []
