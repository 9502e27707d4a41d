"""The model dashboard's segment selector and panels (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/vigil-model.json"


def test_segment_variable_and_panels_follow_the_selection() -> None:
    d = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    (var,) = [v for v in d["templating"]["list"] if v["name"] == "segment"]
    assert (
        var["query"]["query"] == 'label_values(vigil_segment_events_total{model="$model"}, segment)'
    )
    assert var["multi"] and var["includeAll"] and var["allValue"] == ".*"
    titles = [p["title"] for p in d["panels"]]
    start = titles.index("Segments")
    rest = d["panels"][start + 1 :]
    rows = [i for i, p in enumerate(rest) if p["type"] == "row"]
    segment_panels = rest[: rows[0]] if rows else rest  # up to the next row
    assert len(segment_panels) >= 4
    for p in segment_panels:
        for t in p["targets"]:
            expr = t["expr"]
            assert 'model="$model"' in expr
            assert 'segment=~"$segment"' in expr or 'signal=~"segment:($segment):.*"' in expr, expr
