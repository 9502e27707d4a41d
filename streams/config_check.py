"""``vigil config check FILE``: validate a file and explain what is wrong."""

from __future__ import annotations

from pathlib import Path

from streams.config import load_settings
from streams.errors import ConfigError

__all__ = ["check_config_file"]


def check_config_file(path: str | Path) -> tuple[bool, list[str]]:
    """(ok, lines to print). Also builds every model's monitors, so detector settings
    are checked by the same code the worker runs."""
    try:
        settings = load_settings(path, env={})
    except ConfigError as exc:
        return False, [f"{path}: invalid", f"  - {exc}"]
    from detectors.errors import DetectorError
    from streams.fleet import build_monitor

    errors = []
    for name, ms in [("defaults", settings.defaults), *settings.models.items()]:
        try:
            build_monitor(name, ms, settings.worker.max_features_per_model)
        except DetectorError as exc:
            errors.append(f"  - {'defaults' if name == 'defaults' else 'models.' + name}: {exc}")
    if errors:
        return False, [f"{path}: invalid", *errors]
    lines = [
        f"{path}: ok",
        f"  kafka: {settings.kafka.bootstrap} ({settings.kafka.security_protocol})",
        f"  topics: {settings.topics.inference} -> {settings.topics.escalations}, "
        f"{settings.topics.alerts}, {settings.topics.deadletter}",
        f"  models configured: {', '.join(sorted(settings.models)) or '(none; defaults apply)'}",
    ]
    return True, lines
