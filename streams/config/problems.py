"""What is wrong with a configuration, said as ``<key path> must be <rule>; got <value>``.

pydantic finds every error in one pass; this module words each one from the setting's
declaration (type, bounds, choices), suggests the closest allowed key for a misspelt one,
and never shows a secret's value.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any, Literal, TypeGuard, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from streams.config.settings import ModelSettings, Settings

__all__ = ["annotation_at", "describe", "is_text", "problems", "resolve", "unoptional"]


def problems(exc: ValidationError, raw: Mapping[str, Any]) -> list[str]:
    """One line per error in ``exc`` (raised validating ``raw``), in declaration order.

    A mistake under ``defaults`` shows once, not again under each model that inherits it.
    """
    out: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if _inherited(loc, raw):
            continue
        line = _message(err, loc)
        if line not in out:
            out.append(line)
    return out


def resolve(path: tuple[Any, ...]) -> tuple[Any, FieldInfo | None]:
    """The declared type at ``path`` in :class:`Settings` and the field declaring it
    (None for a mapping value or a list item); ``(None, None)`` if there is none."""
    tp: Any = Settings
    field: FieldInfo | None = None
    for key in path:
        tp = unoptional(tp)
        if _is_model(tp):
            field = tp.model_fields.get(str(key))
            if field is None:
                return None, None
            tp = field.annotation
        elif get_origin(tp) is dict:
            tp, field = get_args(tp)[1], None
        elif get_origin(tp) in (frozenset, list, set, tuple):
            tp, field = get_args(tp)[0], None
        else:
            return None, None
    return tp, field


def annotation_at(path: tuple[Any, ...]) -> Any:
    return resolve(path)[0]


def is_text(tp: Any) -> bool:
    """Whether a setting of type ``tp`` holds text (taken verbatim from the environment)."""
    return unoptional(tp) in (str, SecretStr)


def describe(tp: Any, field: FieldInfo | None) -> str:
    """The rule of a setting in words: ``an integer in [1, 100000]``, ``one of a, b``."""
    inner = unoptional(tp)
    if get_origin(inner) is Literal:
        text = "one of " + ", ".join(str(a) for a in get_args(inner))
    elif inner is bool:
        text = "true or false"
    elif inner is int:
        text = "an integer" + _bounds(field)
    elif inner is float:
        text = "a number" + _bounds(field)
    elif inner is str:
        min_len = any(isinstance(m, annotated_types.MinLen) for m in _metadata(field))
        text = "a non-empty string" if min_len else "a string"
    elif inner is SecretStr:
        text = "a string (secret)"
    elif _is_model(inner) or get_origin(inner) is dict:
        text = "a mapping"
    elif get_origin(inner) in (frozenset, list, set, tuple):
        text = "a list of strings"
    else:
        text = str(inner)
    return f"{text} or null" if inner is not tp and inner is not None else text


def _message(err: Any, loc: tuple[Any, ...]) -> str:
    path = ".".join(str(p) for p in loc) or "config"
    if err["type"] == "extra_forbidden":
        parent, _ = resolve(loc[:-1])
        allowed = list(parent.model_fields) if _is_model(parent) else []
        close = get_close_matches(str(loc[-1]), allowed, n=1)
        if len(loc) == 1 and loc[0] in ModelSettings.model_fields:
            close = [f"defaults.{loc[0]}"]  # a model's key at the top level
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(allowed)}"
        return f"{path}: unknown key; {hint}"
    if err["type"] == "value_error":  # a rule across keys, from a model validator
        return f"{path}: {err.get('ctx', {}).get('error', err['msg'])}"
    tp, field = resolve(loc)
    if tp is None:
        return f"{path}: {err['msg']}"
    value = err.get("input")
    shown = (
        f"a value of type {type(value).__name__}" if unoptional(tp) is SecretStr else repr(value)
    )
    return f"{path} must be {describe(tp, field)}; got {shown}"


def _inherited(loc: tuple[Any, ...], raw: Mapping[str, Any]) -> bool:
    """Whether an error under ``models.<name>`` lies in a key the model does not set
    itself, so it came from ``defaults`` (reported there)."""
    if len(loc) < 3 or loc[0] != "models":
        return False
    models = raw.get("models")
    own: Any = (
        {str(k): v for k, v in models.items()}.get(str(loc[1]))
        if isinstance(models, Mapping)
        else None
    )
    for key in loc[2:]:
        if not isinstance(key, str):
            return False
        if not isinstance(own, Mapping) or key not in own:
            return True
        own = own[key]
    return False


def _is_model(tp: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _bounds(field: FieldInfo | None) -> str:
    lo: Any = None
    hi: Any = None
    lo_open = hi_open = False
    for m in _metadata(field):
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi, hi_open = m.lt, True
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '≥'} {_num(lo)}"
    if hi is not None:
        return f" {'<' if hi_open else '≤'} {_num(hi)}"
    return ""


def _num(x: Any) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x)


def _metadata(field: FieldInfo | None) -> list[Any]:
    return list(field.metadata) if field is not None else []


def unoptional(tp: Any) -> Any:
    """``X`` for ``X | None``; anything else unchanged."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp
