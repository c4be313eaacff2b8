"""The error of an impossible config (its own module, so that the modules the experiment
model uses can raise it without importing the experiment)."""

from __future__ import annotations


class ConfigError(ValueError):
    """An impossible or inconsistent configuration; the message names the config key."""
