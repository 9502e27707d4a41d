"""Read a worker's ``/metrics`` page into plain numbers (demo summary, tests, tools)."""

from __future__ import annotations

import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Samples", "scrape", "total"]

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str, timeout: float = 5.0) -> Samples:
    """Sample name → [(labels, value)] from a Prometheus text page."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - dev tool, caller's URL
        text = resp.read().decode("utf-8")
    out: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name].append((dict(sample.labels), float(sample.value)))
    return dict(out)


def total(samples: Samples, name: str, **match: str) -> float:
    """Sum of ``name`` over the samples whose labels include ``match``."""
    return sum(
        value
        for labels, value in samples.get(name, [])
        if all(labels.get(k) == v for k, v in match.items())
    )
