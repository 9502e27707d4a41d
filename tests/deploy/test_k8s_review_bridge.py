"""deploy/k8s/review-bridge: one review bridge next to the workers of deploy/k8s; the
pieces fit together.

The Service keeps the job name the rules watch (``up{job="vigil-review"}``), the ports are
the bridge's defaults, the webhook URL Label Studio is told to call reaches this Service's
webhook port, credentials come from Secrets, and the bridge's view of the shared
ConfigMap plus its environment is a valid config with webhooks on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from streams.config import apply_env, settings_from_dict
from streams.config.settings import LabelStudioSettings
from tests.deploy.conftest import REPO, load_yaml, run_tool
from tests.deploy.test_k8s import K8S, kustomize, matches

OVERLAY = K8S / "review-bridge"


def overlay_resources() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> resource, from the overlay's own files."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for name in load_yaml(OVERLAY / "kustomization.yaml")["resources"]:
        for doc in yaml.safe_load_all((OVERLAY / name).read_text(encoding="utf-8")):
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


@pytest.fixture(scope="module")
def res() -> dict[tuple[str, str], dict[str, Any]]:
    return overlay_resources()


@pytest.fixture(scope="module")
def pod(res: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    template: dict[str, Any] = res[("Deployment", "vigil-review-bridge")]["spec"]["template"]
    return template


@pytest.fixture(scope="module")
def bridge(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["spec"]["containers"]
    return container


def test_one_bridge_replaced_not_rolled(res: dict[tuple[str, str], dict[str, Any]]) -> None:
    deployment = res[("Deployment", "vigil-review-bridge")]["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"]["type"] == "Recreate"
    assert matches(
        deployment["selector"]["matchLabels"], deployment["template"]["metadata"]["labels"]
    )


def test_service_is_the_job_the_rules_watch_on_the_bridges_ports(
    res: dict[tuple[str, str], dict[str, Any]], pod: dict[str, Any], bridge: dict[str, Any]
) -> None:
    service = res[("Service", "vigil-review")]
    rules = (REPO / "deploy" / "prometheus" / "rules" / "vigil-alerts.yml").read_text()
    assert f'up{{job="{service["metadata"]["name"]}"}}' in rules
    assert matches(service["spec"]["selector"], pod["metadata"]["labels"])
    container_ports = {p["name"]: p["containerPort"] for p in bridge["ports"]}
    defaults = LabelStudioSettings()
    assert container_ports == {"metrics": defaults.metrics_port, "webhook": defaults.webhook_port}
    for port in service["spec"]["ports"]:
        assert container_ports[port["targetPort"]] == port["port"]
    monitor = res[("ServiceMonitor", "vigil-review")]
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"


def test_probes_hit_what_the_bridge_serves(bridge: dict[str, Any]) -> None:
    served = {"metrics": {"/metrics"}, "webhook": {"/healthz"}}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = bridge[probe]["httpGet"]
        assert get["path"] in served[get["port"]], probe


def test_credentials_come_from_secrets(
    res: dict[tuple[str, str], dict[str, Any]], bridge: dict[str, Any]
) -> None:
    env = {e["name"]: e for e in bridge["env"]}
    secret = res[("Secret", "vigil-label-studio")]
    for name in ("VIGIL_LABEL_STUDIO_TOKEN", "VIGIL_LABEL_STUDIO_WEBHOOK_SECRET"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    assert set(secret["stringData"].values()) == {"CHANGE_ME"}
    for e in bridge["env"]:
        if any(word in e["name"] for word in ("TOKEN", "SECRET", "PASSWORD")):
            assert "value" not in e, f"{e['name']} must come from a Secret"


def test_the_bridge_sees_a_valid_config_with_webhooks_to_its_own_service(
    res: dict[tuple[str, str], dict[str, Any]], pod: dict[str, Any], bridge: dict[str, Any]
) -> None:
    base_config_map = yaml.safe_load((K8S / "configmap.yaml").read_text(encoding="utf-8"))
    (volume,) = [v for v in pod["spec"]["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == base_config_map["metadata"]["name"]
    args = bridge["args"]
    assert args[:2] == ["review", "label-studio"]
    config_path = Path(args[args.index("--config") + 1])
    (mount,) = [m for m in bridge["volumeMounts"] if m["name"] == volume["name"]]
    assert Path(mount["mountPath"]) == config_path.parent
    raw = yaml.safe_load(base_config_map["data"][config_path.name])
    env = {e["name"]: e.get("value", "from-secret") for e in bridge["env"]}
    ls = settings_from_dict(apply_env(raw, env)).review.label_studio
    assert ls.webhook_secret is not None and ls.token is not None
    assert ls.webhook_url is not None
    url = urlsplit(ls.webhook_url)
    service = res[("Service", "vigil-review")]
    assert url.hostname == f"{service['metadata']['name']}.vigil.svc"
    webhook_port = {p["name"]: p["port"] for p in service["spec"]["ports"]}["webhook"]
    assert url.port == webhook_port and url.path == "/webhook"


def test_kustomize_builds_the_bridge_in_the_workers_namespace(
    res: dict[tuple[str, str], dict[str, Any]],
) -> None:
    result = run_tool([*kustomize(), OVERLAY], cwd=REPO)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == set(res)
    base = load_yaml(K8S / "kustomization.yaml")
    assert load_yaml(OVERLAY / "kustomization.yaml")["namespace"] == base["namespace"]
    # What the bridge borrows from deploy/k8s exists there under those names.
    base_names = {
        (doc["kind"], doc["metadata"]["name"])
        for name in base["resources"]
        for doc in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8"))
    }
    assert {("ConfigMap", "vigil-config"), ("Secret", "vigil-kafka")} <= base_names
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "vigil", doc["kind"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vigil"
