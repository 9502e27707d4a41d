"""``vigil demo --review``: Label Studio and the review bridge beside the demo's worker.

The end-to-end test points the demo at the session's Label Studio (``VIGIL_LABEL_STUDIO_URL``
and ``_TOKEN``) and broker, so it costs no server start of its own; the demo's own Label
Studio (a prepared data directory copied per run) is not started here: a minute in CI the
first time; it was checked by hand (start, Ctrl-C, nothing left).
That a demo without ``--review`` starts neither is asserted by
``test_process_hygiene.test_demo_children_do_not_outlive_it`` (its children by role).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from streams.cli.main import main
from streams.config import Settings, settings_from_dict
from streams.dev import label_studio
from streams.dev.demo import LocalPrometheus, synthetic_reviewed, worker_config
from streams.dev.demo_review import (
    DEMO_PROJECT_TITLE,
    HUMAN_REVIEWED_MODEL,
    bridge_config,
    bridge_environment,
)
from streams.dev.label_studio import LocalLabelStudio
from streams.dev.scrape import scrape, total
from streams.review.label_studio_api import LabelStudioClient
from tests.streams.dev.processes import (
    children_by_role,
    kill_quietly,
    needs_proc,
    start_in_background,
    wait_for_line,
    wait_gone,
)
from tests.support import wait_until

VIGIL = str(Path(sys.executable).with_name("vigil"))
MODELS = ["fraud-detector", "churn", "support-router"]


def test_the_person_reviews_one_model_and_the_team_the_others() -> None:
    assert HUMAN_REVIEWED_MODEL in MODELS
    assert synthetic_reviewed(MODELS, review=False) == set(MODELS)
    assert synthetic_reviewed(MODELS, review=True) == set(MODELS) - {HUMAN_REVIEWED_MODEL}


def test_bridge_config_keeps_the_workers_kafka_and_no_secret() -> None:
    user = settings_from_dict(
        {
            "topics": {"escalations": "my.escalations"},
            "review": {
                "label_studio": {
                    "token": "user-token-123",
                    "webhook_secret": "user-secret",
                    "metrics_port": 9999,
                    "projects": {"churn": 7},
                }
            },
        }
    )
    config = bridge_config(
        worker_config(user, MODELS), url="http://127.0.0.1:8", webhook_port=41, metrics_port=42
    )
    text = yaml.safe_dump(config)
    assert "user-token" not in text and "user-secret" not in text and "*****" not in text
    settings = settings_from_dict(config)
    ls = settings.review.label_studio
    assert settings.topics.escalations == "my.escalations"
    # The demo's addresses win (it chose the ports free); the user's project mapping stays.
    assert (ls.url, ls.metrics_host, ls.metrics_port) == ("http://127.0.0.1:8", "127.0.0.1", 42)
    assert (ls.webhook_host, ls.webhook_port) == ("127.0.0.1", 41)
    assert ls.webhook_url == "http://127.0.0.1:41/webhook"
    assert (ls.reconcile_every_s, ls.backlog_every_s) == (5, 5)
    assert ls.projects == {"churn": 7}
    assert ls.project_title == DEMO_PROJECT_TITLE
    with pytest.raises(ValueError, match="metrics_port"):
        bridge_config({}, url="http://x", webhook_port=1, metrics_port=0)


def test_bridge_environment_replaces_an_inherited_server() -> None:
    env = bridge_environment(
        {"VIGIL_LABEL_STUDIO_URL": "http://elsewhere", "PATH": "/bin"},
        url="http://127.0.0.1:8",
        token="t0ken1",
        secret="s",
    )
    assert env["VIGIL_LABEL_STUDIO_URL"] == "http://127.0.0.1:8"
    assert (env["VIGIL_LABEL_STUDIO_TOKEN"], env["VIGIL_LABEL_STUDIO_WEBHOOK_SECRET"]) == (
        "t0ken1",
        "s",
    )
    assert env["PATH"] == "/bin"


def test_prometheus_scrapes_the_bridge_only_when_there_is_one() -> None:
    def targets(prometheus: LocalPrometheus) -> dict[str, list[str]]:
        config = yaml.safe_load(prometheus.render_config())
        return {
            job["job_name"]: [t for group in job["static_configs"] for t in group["targets"]]
            for job in config["scrape_configs"]
        }

    assert targets(LocalPrometheus(1234)).get("vigil-review", []) == []
    jobs = targets(LocalPrometheus(1234, review_metrics_port=5678))
    assert jobs["vigil"] == ["127.0.0.1:1234"]
    assert jobs["vigil-review"] == ["127.0.0.1:5678"]


def test_missing_label_studio_says_make_label_studio(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("VIGIL_LABEL_STUDIO", "VIGIL_LABEL_STUDIO_TOKEN", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(label_studio, "_VENV_EXECUTABLE", tmp_path / "no-label-studio")
    monkeypatch.setattr(label_studio.shutil, "which", lambda name: None)
    # Fails before anything starts: no broker is looked for (none is running here).
    assert main(["demo", "--review", "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert "make label-studio" in err and "Traceback" not in err, err


@needs_proc
@pytest.mark.kafka
@pytest.mark.label_studio
def test_demo_review_makes_tasks_in_label_studio_and_stops_everything(
    tmp_path: Path, kafka_bootstrap: str, label_studio: LocalLabelStudio
) -> None:
    tag = f"demo-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "vigil.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "app_id": tag,
                "topics": {
                    name: f"{tag}.{name}"
                    for name in ("inference", "labels", "escalations", "alerts", "deadletter")
                },
                # Its own consumer group too: others in this session may use the default.
                "review": {
                    "label_studio": {
                        "project_title": f"{tag} {{model_id}}",
                        "group_id": f"bridge-{tag}",
                    }
                },
            }
        )
    )
    env = {
        **os.environ,
        "TMPDIR": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "VIGIL_LABEL_STUDIO_URL": label_studio.url,
        "VIGIL_LABEL_STUDIO_TOKEN": label_studio.token,
    }
    out = tmp_path / "demo.out"
    pid = start_in_background(f'"{VIGIL}" demo --review --rate 60 -c "{config}"', out, env)
    spawned: list[int] = []
    try:
        text = wait_for_line(out, "Ctrl-C stops everything.", pid, 120.0)
        roles = children_by_role(pid)
        spawned.extend(roles.values())
        # The session's server is used: the demo starts the bridge, no Label Studio.
        assert {"worker", "bridge"} <= set(roles) and "label-studio" not in roles, roles
        project = f"{tag} {HUMAN_REVIEWED_MODEL}"
        assert f"Label Studio {label_studio.url}" in text and repr(project) in text, text
        bridge_metrics = re.search(r"^bridge: +(\S+)", text, re.MULTILINE)
        assert bridge_metrics, text
        if "prometheus" in roles:
            (prometheus_yml,) = tmp_path.glob("vigil-prometheus-*/prometheus.yml")
            assert bridge_metrics[1].split("/")[2] in prometheus_yml.read_text()

        client = LabelStudioClient(label_studio.url, label_studio.token)
        deadline = time.monotonic() + 90.0
        tasks: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(tasks) < 5:
            found = client.find_project(project)
            tasks = list(client.tasks(found.id)) if found is not None else []
            time.sleep(1.0)
        assert len(tasks) >= 5, out.read_text()
        bridge = scrape(bridge_metrics[1])
        assert total(bridge, "vigil_review_bridge_tasks_created_total") >= len(tasks)
        # Only the person's model goes to Label Studio; the others are passed over.
        assert total(bridge, "vigil_review_bridge_escalations_not_routed_total") > 0
        assert client.find_project(f"{tag} churn") is None

        # The synthetic reviewers label churn a few seconds after its escalations (longer
        # on a loaded machine): wait for its weighted accuracy before stopping.
        def churn_labelled() -> bool:
            tables = out.read_text().rsplit("auto-accept error\n", 1)
            return len(tables) == 2 and bool(
                re.search(r"^churn +\d\.\d{3} +\d\.\d{3} ", tables[1], re.MULTILINE)
            )

        assert wait_until(churn_labelled, timeout=120, interval=1.0), out.read_text()[-3000:]
        os.kill(pid, signal.SIGINT)  # Ctrl-C
        assert wait_gone([pid, *roles.values()]) == [], out.read_text()
        text = out.read_text()
        assert "stopped cleanly." in text
        # The synthetic team left the person's model alone: no labels, no weighted estimate.
        last = text.rsplit("auto-accept error\n", 1)[1]
        assert re.search(rf"^{HUMAN_REVIEWED_MODEL} +\d\.\d{{3}} +- ", last, re.MULTILINE), last
        assert re.search(r"^churn +\d\.\d{3} +\d\.\d{3} ", last, re.MULTILINE), last
    finally:
        kill_quietly([pid, *spawned])


def test_review_needs_the_worker() -> None:
    from streams.dev.demo import run_demo
    from streams.errors import VigilError

    with pytest.raises(VigilError, match="--traffic-only"):
        run_demo(Settings(), review=True, traffic_only=True)
