"""Reading the configuration: the YAML file, the ``VIGIL_*`` environment over it, validation.

The environment layer is derived from the declarations: ``VIGIL_<SECTION>__<KEY>`` for
any key, and the short aliases each setting declares. A value is read as YAML (``[email]``
is a list, ``7`` an integer) unless the setting is text (a password ``0123`` stays
``"0123"``). It is not pydantic-settings' ``BaseSettings``: that reads ``os.environ``
whenever a model is validated, and here the environment is an argument, so that
``settings_from_dict``, the tests and ``vigil config check`` see exactly the mapping they
are given; and its nested values would be JSON, not the YAML that vigil documents.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from streams.config.problems import annotation_at, is_text, problems
from streams.config.settings import Settings, deep_merge, field_extra
from streams.errors import ConfigError

__all__ = [
    "apply_env",
    "env_aliases",
    "env_overrides",
    "load_settings",
    "read_config_file",
    "settings_from_dict",
    "validate",
]

ENV_PREFIX = "VIGIL_"
ENV_DELIMITER = "__"


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (optional) and apply environment overrides; raise ConfigError."""
    raw = read_config_file(path) if path is not None else {}
    return settings_from_dict(apply_env(raw, os.environ if env is None else env))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; ConfigError (one line) if unreadable or not YAML."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"cannot read config file {str(path)!r}: not UTF-8 ({exc.reason})"
        ) from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        what = getattr(exc, "problem", None) or "cannot be parsed"
        raise ConfigError(f"{path}: not valid YAML{at}: {what}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping; got {type(loaded).__name__}")
    return loaded


def settings_from_dict(raw: Mapping[str, Any]) -> Settings:
    """Validate a plain mapping into :class:`Settings`; every error names its key path.

    Raises ConfigError listing every problem found, one per line.
    """
    settings, found = validate(raw)
    if settings is None:
        if len(found) == 1:
            raise ConfigError(found[0])
        raise ConfigError(f"{len(found)} problems:\n" + "\n".join(f"  - {p}" for p in found))
    return settings


def validate(raw: Mapping[str, Any]) -> tuple[Settings | None, list[str]]:
    """(settings, []) for a valid mapping, else (None, every problem with its key path)."""
    try:
        return Settings.model_validate(raw), []
    except ValidationError as exc:
        return None, problems(exc, raw)


def apply_env(raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``raw`` with the environment's overrides merged in (the environment wins)."""
    return deep_merge(raw, env_overrides(env))


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings that ``env`` sets, as a nested mapping: each declared alias, then
    ``VIGIL_<SECTION>__<KEY>`` (``__`` between levels), so a full path wins over an alias."""
    out: dict[str, Any] = {}
    for var, path in env_aliases().items():
        if var in env:
            _set_path(out, path, _env_value(path, env[var]))
    for var, value in env.items():
        if var.startswith(ENV_PREFIX) and ENV_DELIMITER in var:
            path = tuple(p.lower() for p in var[len(ENV_PREFIX) :].split(ENV_DELIMITER))
            _set_path(out, path, _env_value(path, value))
    return out


def _env_value(path: tuple[str, ...], text: str) -> Any:
    if is_text(annotation_at(path)):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


@cache
def env_aliases() -> dict[str, tuple[str, ...]]:
    """Short environment variable -> key path, as declared on the settings."""
    return {
        var: path
        for path, field in _fields(Settings, ())
        for var in field_extra(field, "env") or ()
    }


def _fields(
    model: type[BaseModel], prefix: tuple[str, ...]
) -> Iterable[tuple[tuple[str, ...], FieldInfo]]:
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        yield path, field
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _fields(field.annotation, path)


def _set_path(d: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        nxt = d.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            d[key] = nxt
        d = nxt
    d[path[-1]] = value
