"""Developer tooling: the local jar broker, a local Label Studio, the demo and its summary,
synthetic traffic, a metrics scraper, and the spawning of child processes that die with
their parent.

Nothing here runs in production. The names are imported on first use, so that
``python -m streams.dev.local_broker`` runs its module only once.
"""

from __future__ import annotations

import importlib
import typing

# `typing` by module: its names bound here would read as this package's API.
if typing.TYPE_CHECKING:
    from streams.dev.demo import LocalPrometheus, run_demo
    from streams.dev.label_studio import LocalLabelStudio
    from streams.dev.local_broker import LocalBroker
    from streams.dev.scrape import scrape, total
    from streams.dev.traffic import DriftSchedule, SyntheticModel

__all__ = [
    "DriftSchedule",
    "LocalBroker",
    "LocalLabelStudio",
    "LocalPrometheus",
    "SyntheticModel",
    "run_demo",
    "scrape",
    "total",
]

_HOME = {
    "DriftSchedule": "traffic",
    "LocalBroker": "local_broker",
    "LocalLabelStudio": "label_studio",
    "LocalPrometheus": "demo",
    "SyntheticModel": "traffic",
    "run_demo": "demo",
    "scrape": "scrape",
    "total": "scrape",
}


def __getattr__(name: str) -> typing.Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
