"""Checking a config against schemas/config.schema.yaml, with messages a person can read.

The schema stays the single source of truth (keys, types, allowed values, defaults); this
module only words its verdicts: each problem is one line with the key path, what is wrong
and what is allowed (the closest valid name where there is one), instead of the
validator's dump of the schema. Defaults are filled in as Snakemake's ``validate`` fills
them, so the rules see the same config either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from rank_distillm.config.hints import did_you_mean

#: At most this many problems are listed; the rest are counted.
MAX_PROBLEMS = 5
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


class ConfigSchemaError(ValueError):
    """The config breaks the schema; the message lists each problem on its own line."""


def _with_defaults(validator_class: Any) -> Any:
    """A validator that fills in the schema's defaults as it goes (Snakemake's recipe)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator: Any, values: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, subschema in values.items():
                if "default" in subschema:
                    instance.setdefault(name, subschema["default"])
        yield from check_properties(validator, values, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


def validate_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the schema and fill in its defaults (in place).

    Raises :class:`ConfigSchemaError` naming every problem (at most
    :data:`MAX_PROBLEMS`), one short line each.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(Draft202012Validator)(schema)
    errors = sorted(
        validator.iter_errors(config), key=lambda e: (list(map(str, e.path)), e.message)
    )
    if not errors:
        return
    lines = [line for error in errors for line in describe(error)]
    lines = list(dict.fromkeys(lines))  # one line per problem, however it was reached
    shown = lines[:MAX_PROBLEMS]
    if len(lines) > MAX_PROBLEMS:
        shown.append(f"... and {len(lines) - MAX_PROBLEMS} more")
    raise ConfigSchemaError("\n".join(shown))


def key_path(parts: Sequence[Any]) -> str:
    """``models.tiny.loss`` or ``tirex.tasks[2].id``; ``(top level)`` for the root."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe(error: ValidationError) -> list[str]:
    """One line per problem that ``error`` reports."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        deepest = max(error.context, key=lambda e: len(e.path))
        return describe(deepest)
    where = key_path(list(error.absolute_path))
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties" and isinstance(value, Mapping):
        allowed = list(error.schema.get("properties", {}))
        unknown = [key for key in value if key not in allowed]
        return [
            f"{key_path([*error.absolute_path, key])}: unknown key"
            + did_you_mean(key, allowed, "allowed")
            for key in unknown
        ]
    if kind == "required" and isinstance(value, Mapping):
        return [f"{where}: missing the key {key!r}" for key in expected if key not in value]
    return [f"{where}: {_what(kind, expected, value, error)}"]


def _what(kind: str, expected: Any, value: Any, error: ValidationError) -> str:
    if kind == "enum":
        choices = [str(choice) for choice in expected]
        return f"{value!r} is not allowed{did_you_mean(str(value), choices, 'allowed')}"
    if kind == "type":
        wanted = [expected] if isinstance(expected, str) else list(expected)
        names = " or ".join(_TYPE_NAMES.get(name, name) for name in wanted)
        return f"expected {names}, got {value!r}"
    if kind == "minProperties":
        about = _summary(error.schema.get("description"))
        return f"must name at least {expected} entr{'y' if expected == 1 else 'ies'}{about}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        relation = {
            "minimum": "at least",
            "exclusiveMinimum": "above",
            "maximum": "at most",
            "exclusiveMaximum": "below",
        }[kind]
        return f"{value!r} is out of range: it must be {relation} {expected}"
    if kind in ("minItems", "maxItems"):
        return f"expected {'at least' if kind == 'minItems' else 'at most'} {expected} items"
    if kind == "pattern":
        return f"{value!r} must match {expected!r} (letters, digits and . _ + -)"
    return error.message.splitlines()[0][:200]


def _summary(description: str | None) -> str:
    """`` (<the key's description, first line>)`` where the schema has one."""
    if not description:
        return ""
    first = " ".join(description.split())
    return f" ({first[:117] + '...' if len(first) > 120 else first})"
