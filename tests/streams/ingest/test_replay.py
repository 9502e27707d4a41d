"""``vigil replay`` and ``vigil reference build``: the worker's code path over files."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from detectors.reference import ReferenceProfile
from streams.cli import main
from streams.cli.reference import build_reference_file
from streams.config import settings_from_dict
from streams.dev.traffic import DriftSchedule, SyntheticModel, invalid_event
from streams.errors import VigilError
from streams.ingest.replay import run_replay

START = datetime(2026, 1, 1, tzinfo=UTC)


def write_stream(
    tmp_path: Path, n: int = 6000, drift_at: int | None = 3000, seed: int = 3
) -> tuple[Path, Path]:
    drift = [DriftSchedule("x1", drift_at, None, 2.0)] if drift_at is not None else []
    model = SyntheticModel("churn", n_numeric=4, seed=seed, start=START, drift=drift)
    rng = random.Random(seed)
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    with events.open("wb") as ev, labels.open("wb") as lab:
        for i in range(n):
            event, truth = model.event()
            ev.write(orjson.dumps(event) + b"\n")
            if rng.random() < 0.5:
                ts = datetime.fromisoformat(event["ts"]) + timedelta(seconds=3)
                lab.write(
                    orjson.dumps(
                        {
                            "event_id": event["event_id"],
                            "model_id": "churn",
                            "ts": ts.isoformat(),
                            "label": truth,
                            "source": "outcome",
                        }
                    )
                    + b"\n"
                )
            if i % 1000 == 0:
                ev.write(invalid_event("bad_timestamp", "churn", i)[0] + b"\n")
    return events, labels


def test_replay_finds_the_drift_and_accounts_for_every_line(tmp_path: Path) -> None:
    events, labels = write_stream(tmp_path)
    settings = settings_from_dict({"defaults": {"escalation": {"min_confidence": 0.7}}})
    summary = run_replay(
        settings, str(events), labels=str(labels), out_dir=str(tmp_path / "out"), progress=False
    )
    assert summary.events == 6006
    assert summary.processed == 6000
    assert dict(summary.dead_letters) == {"bad_value": 6}
    alerts = [json.loads(line) for line in (tmp_path / "out" / "alerts.jsonl").open()]
    drift_x1 = [a for a in alerts if a["signal"] == "feature:x1" and a["state"] == "drift"]
    assert len(drift_x1) == 1
    # Found after the shift at event 3000, within a few windows of it.
    assert 3000 < drift_x1[0]["events_seen"] < 3000 + 1500
    assert not [a for a in alerts if a["signal"] in ("feature:x0", "feature:x2", "feature:x3")]
    escalations = (tmp_path / "out" / "escalations.jsonl").read_bytes().splitlines()
    assert len(escalations) == summary.escalations > 0
    assert summary.labels > 2500
    # Outcome labels of escalated events end their review: one reviewed record each.
    reviewed = [json.loads(line) for line in (tmp_path / "out" / "reviewed.jsonl").open()]
    escalated = {json.loads(e)["event_id"] for e in escalations}
    assert len(reviewed) == summary.reviewed > 0
    assert {r["event_id"] for r in reviewed} <= escalated
    assert {r["final"]["method"] for r in reviewed} == {"outcome"}


def test_replay_is_deterministic(tmp_path: Path) -> None:
    events, labels = write_stream(tmp_path, n=3000, drift_at=1500)
    settings = settings_from_dict({})
    outs = []
    for k in range(2):
        run_replay(
            settings,
            str(events),
            labels=str(labels),
            out_dir=str(tmp_path / f"o{k}"),
            progress=False,
        )
        outs.append(
            [
                (tmp_path / f"o{k}" / name).read_bytes()
                for name in (
                    "escalations.jsonl",
                    "alerts.jsonl",
                    "deadletters.jsonl",
                    "reviewed.jsonl",
                )
            ]
        )
    assert outs[0] == outs[1]
    assert outs[0][0] and outs[0][3]  # something was escalated, and reviewed


def test_reference_build_then_replay_uses_it(tmp_path: Path) -> None:
    history, _ = write_stream(tmp_path, n=4000, drift_at=None, seed=5)
    settings = settings_from_dict({})
    ref_path = build_reference_file(
        settings,
        str(history),
        model_id="churn",
        version="1.0.0",
        out=str(tmp_path / "ref.json"),
        created_at=START,
    )
    profile = ReferenceProfile.load(ref_path)
    d = profile.to_dict()
    assert d["format"] == "vigil.reference/1"
    assert d["model_id"] == "churn" and d["model_version"] == "1.0.0"
    assert d["events"] == 4000
    assert set(d["features"]) >= {"x0", "x1", "x2", "x3", "c0"}
    assert datetime.fromisoformat(d["created_at"]).tzinfo is not None

    # With the reference, drift after event 500 of a new stream is found: no first-N
    # events are needed to learn what normal looks like.
    live = tmp_path / "live"
    live.mkdir()
    events, _ = write_stream(live, n=2000, drift_at=500, seed=6)
    with_ref = settings_from_dict({"models": {"churn": {"reference": str(ref_path)}}})
    summary = run_replay(with_ref, str(events), out_dir=str(tmp_path / "o"), progress=False)
    alerts = [json.loads(x) for x in (tmp_path / "o" / "alerts.jsonl").open()]
    hits = [a for a in alerts if a["signal"] == "feature:x1" and a["state"] == "drift"]
    assert hits and 500 < hits[0]["events_seen"] < 1500
    assert summary.processed == 2000


def test_reference_build_refuses_a_file_without_the_model(tmp_path: Path) -> None:
    history, _ = write_stream(tmp_path, n=50, drift_at=None)
    with pytest.raises(VigilError, match="no valid events"):
        build_reference_file(settings_from_dict({}), str(history), model_id="other", version="1")


def test_cli_replay_and_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, labels = write_stream(tmp_path, n=1200, drift_at=None)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(yaml.safe_dump({"defaults": {"escalation": {"min_confidence": 0.8}}}))
    assert main(["config", "check", str(cfg)]) == 0
    code = main(
        [
            "replay",
            str(events),
            "--labels",
            str(labels),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
            "-c",
            str(cfg),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "replayed 1202 events" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("worker: {max_models: -1}\n")
    assert main(["config", "check", str(bad)]) == 1
    assert "worker.max_models" in capsys.readouterr().out
