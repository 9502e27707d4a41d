"""``vigil config check FILE``: validate a file and explain what is wrong.

``vigil config check --print-defaults`` prints the full annotated default configuration.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.cli.options import Subparsers
from streams.config.loading import read_config_file, validate
from streams.errors import ConfigError

__all__ = ["check_config_file", "register"]


def check_config_file(path: str | Path) -> tuple[bool, list[str]]:
    """(ok, lines to print): every error in the file, one line each with its key path.

    Also builds every model's monitors, so detector settings are checked by the same
    code the worker runs. The environment is not applied: this checks the file.
    """
    try:
        raw = read_config_file(path)
    except ConfigError as exc:
        return False, [f"{path}: invalid", f"  - {exc}"]
    settings, problems = validate(raw)
    if settings is None:
        return False, [f"{path}: invalid", *(f"  - {p}" for p in problems)]
    from detectors.errors import DetectorError
    from streams.processing.fleet import build_monitor

    errors = []
    for name, ms in [("defaults", settings.defaults), *settings.models.items()]:
        try:
            build_monitor(name, ms, settings.worker.max_features_per_model)
        except (DetectorError, ConfigError) as exc:
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


def run_check(args: argparse.Namespace) -> int:
    if args.print_defaults:
        from streams.config.template import default_yaml

        print(default_yaml(), end="")
        return 0
    if args.file is None:
        raise ConfigError("config check needs a FILE (or --print-defaults)")
    # A file that cannot be read or parsed is one line and exit 2 (ConfigError in main).
    read_config_file(args.file)
    ok, lines = check_config_file(args.file)
    for line in lines:
        print(line)
    return 0 if ok else 1


def register(sub: Subparsers) -> None:
    c = sub.add_parser("config", help="configuration")
    c_sub = c.add_subparsers(dest="config_command", required=True)
    cc = c_sub.add_parser("check", help="validate a config file and explain each error")
    cc.add_argument("file", nargs="?", help="the YAML file to check")
    cc.add_argument(
        "--print-defaults",
        action="store_true",
        help="print the full default configuration, annotated, as YAML",
    )
    cc.set_defaults(func=run_check)
