"""The full default configuration as annotated YAML (``vigil config check --print-defaults``).

Generated from the declarations in :mod:`streams.config.settings`: every key with its
default, and a comment giving its rule, help and environment aliases. Loading the output
back gives the default :class:`Settings`.
"""

from __future__ import annotations

import json
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from streams.config.problems import describe, unoptional
from streams.config.settings import FeatureSpec, Settings, field_extra

__all__ = ["default_yaml"]

INDENT = "  "


def default_yaml() -> str:
    """The annotated default configuration, one key per line."""
    lines = [
        "# vigil configuration: every key with its default (SPEC §8).",
        "# Any key can also be set as VIGIL_<SECTION>__<KEY>, e.g. VIGIL_WORKER__BATCH_SIZE=1000;",
        "# the environment wins over this file.",
    ]
    _section(Settings, Settings.model_validate({}), 0, lines)
    return "\n".join(lines) + "\n"


def _section(model: type[BaseModel], value: BaseModel, depth: int, lines: list[str]) -> None:
    pad = INDENT * depth
    for name, field in model.model_fields.items():
        current = getattr(value, name)
        tp = unoptional(field.annotation)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            lines.append(f"{pad}{name}:{_comment(field, None)}")
            _section(tp, current, depth + 1, lines)
        else:
            # A default derived from another key prints as null, so that it keeps following it.
            shown = "null" if field_extra(field, "when_null") else _scalar(current)
            lines.append(f"{pad}{name}: {shown}{_comment(field, field.annotation)}")
            if get_origin(tp) is dict and get_args(tp)[1] is FeatureSpec:
                _example_feature(depth + 1, lines)


def _example_feature(depth: int, lines: list[str]) -> None:
    """The keys of one feature, commented out (features have no defaults to print)."""
    pad = INDENT * depth
    lines.append(f"{pad}# <feature name>:")
    for name, field in FeatureSpec.model_fields.items():
        value = _scalar(field.get_default(call_default_factory=True))
        lines.append(f"{pad}#   {name}: {value}{_comment(field, field.annotation)}")


def _comment(field: FieldInfo, tp: Any) -> str:
    parts = [describe(tp, field)] if tp is not None else []
    if field.description:
        parts.append(field.description)
    if when_null := field_extra(field, "when_null"):
        parts.append(f"null: {when_null}")
    if env := field_extra(field, "env"):
        parts.append("env: " + ", ".join(env))
    return f"  # {'; '.join(parts)}" if parts else ""


def _scalar(value: Any) -> str:
    """``value`` as YAML that PyYAML reads back as the same value."""
    if isinstance(value, SecretStr):
        return "null"  # a secret never has a default
    if isinstance(value, frozenset | set):
        return json.dumps(sorted(value))
    if isinstance(value, float) and "e" in repr(value):
        # PyYAML (YAML 1.1) reads 1e-12 as text; 1.0e-12 is a float.
        mantissa, exponent = f"{value:e}".split("e")
        return f"{float(mantissa)}e{exponent}"
    return json.dumps(value)
