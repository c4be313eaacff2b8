"""Config values as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plain(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists, for YAML and JSON (Snakemake's
    config types dump as Python objects otherwise)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
