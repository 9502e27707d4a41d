"""Kubernetes manifests in deploy/k8s: the pieces fit together.

Selectors match labels, probes and the ServiceMonitor hit the metrics port,
secrets are referenced not inlined, the ConfigMap is a valid vigil config, and
the PrometheusRule holds exactly the groups of deploy/prometheus/rules.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, REPO, load_yaml, require_tool, run_tool

K8S = DEPLOY / "k8s"
SASL_ENV = {"VIGIL_KAFKA_SASL_USERNAME", "VIGIL_KAFKA_SASL_PASSWORD"}


def resources() -> dict[str, dict[str, Any]]:
    """kind -> resource, from the files kustomization.yaml lists."""
    out: dict[str, dict[str, Any]] = {}
    for name in load_yaml(K8S / "kustomization.yaml")["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")):
            assert doc["kind"] not in out, f"two {doc['kind']} resources"
            out[doc["kind"]] = doc
    return out


@pytest.fixture(scope="module")
def res() -> dict[str, dict[str, Any]]:
    return resources()


@pytest.fixture(scope="module")
def pod(res: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return res["StatefulSet"]["spec"]["template"]


@pytest.fixture(scope="module")
def worker(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["spec"]["containers"]
    return container


def render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render", K8S / "render_prometheusrule.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_all_listed_files_exist_and_every_kind_is_there(res: dict[str, dict[str, Any]]) -> None:
    assert set(res) == {
        "Namespace",
        "ConfigMap",
        "Secret",
        "StatefulSet",
        "Service",
        "ServiceMonitor",
        "PodDisruptionBudget",
        "PrometheusRule",
    }
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["namespace"] == res["Namespace"]["metadata"]["name"]


def test_statefulset_runs_two_workers_with_matching_selector(
    res: dict[str, dict[str, Any]], pod: dict[str, Any]
) -> None:
    workers = res["StatefulSet"]
    assert workers["spec"]["replicas"] == 2
    assert matches(workers["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    assert workers["spec"]["serviceName"] == res["Service"]["metadata"]["name"]
    assert workers["spec"]["updateStrategy"]["type"] == "RollingUpdate"


def test_each_worker_is_a_static_member_named_after_its_pod(worker: dict[str, Any]) -> None:
    """A StatefulSet pod keeps its name across restarts and is the only one with it: the
    instance id is unique per worker and the same for a restarted one."""
    env = {e["name"]: e for e in worker["env"]}
    assert env["VIGIL_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "value" not in env["VIGIL_INSTANCE_ID"]


def test_service_selects_the_workers_on_the_metrics_port(
    res: dict[str, dict[str, Any]], pod: dict[str, Any], worker: dict[str, Any]
) -> None:
    service = res["Service"]
    assert service["metadata"]["name"] == "vigil", "Prometheus Operator names the job after it"
    assert matches(service["spec"]["selector"], pod["metadata"]["labels"])
    (port,) = service["spec"]["ports"]
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert port["targetPort"] in ports
    assert ports[port["targetPort"]] == port["port"] == 9108


def test_service_monitor_scrapes_the_service(res: dict[str, dict[str, Any]]) -> None:
    monitor, service = res["ServiceMonitor"], res["Service"]
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_pdb_covers_the_workers(res: dict[str, dict[str, Any]], pod: dict[str, Any]) -> None:
    pdb = res["PodDisruptionBudget"]["spec"]
    assert matches(pdb["selector"]["matchLabels"], pod["metadata"]["labels"])
    assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable") == 1


def test_probes_hit_the_worker_http_server(worker: dict[str, Any]) -> None:
    """Liveness asks /healthz (the ingest loop goes round); start-up and readiness
    /metrics (the worker is up)."""
    port_names = {p["name"] for p in worker["ports"]}
    paths = {"livenessProbe": "/healthz", "readinessProbe": "/metrics", "startupProbe": "/metrics"}
    for probe, path in paths.items():
        get = worker[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in port_names | {9108}, probe


def test_resources_have_requests_and_limits(worker: dict[str, Any]) -> None:
    for kind in ("requests", "limits"):
        assert set(worker["resources"][kind]) >= {"cpu", "memory"}, kind


def test_runs_as_non_root_on_a_read_only_root(pod: dict[str, Any], worker: dict[str, Any]) -> None:
    pod_sc, sc = pod["spec"]["securityContext"], worker["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    # A read-only root needs somewhere to write: /tmp and the working directory.
    mounts = {m["mountPath"] for m in worker["volumeMounts"]}
    assert {"/tmp", worker["workingDir"]} <= mounts  # noqa: S108 - a mount path, not a file


def test_credentials_come_from_the_secret(
    res: dict[str, dict[str, Any]], worker: dict[str, Any]
) -> None:
    secret = res["Secret"]
    env = {e["name"]: e for e in worker["env"]}
    assert set(env) >= SASL_ENV
    for name in SASL_ENV:
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
    for e in worker["env"]:
        if "PASSWORD" in e["name"] or "SECRET" in e["name"]:
            assert "value" not in e, f"{e['name']} must come from a Secret"
    text = (K8S / "secret.yaml").read_text(encoding="utf-8")
    assert "secret manager" in text
    assert set(secret["stringData"].values()) == {"CHANGE_ME"}


def test_config_map_is_mounted_where_the_worker_reads_it(
    res: dict[str, dict[str, Any]], pod: dict[str, Any], worker: dict[str, Any]
) -> None:
    config_map = res["ConfigMap"]
    args = worker["args"]
    assert args[0] == "worker"
    config_path = Path(args[args.index("--config") + 1])
    (volume,) = [v for v in pod["spec"]["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (mount,) = [m for m in worker["volumeMounts"] if m["name"] == volume["name"]]
    assert Path(mount["mountPath"]) == config_path.parent
    assert config_path.name in config_map["data"]


def test_config_map_holds_a_valid_vigil_config(
    res: dict[str, dict[str, Any]], worker: dict[str, Any]
) -> None:
    from streams import config

    raw = yaml.safe_load(res["ConfigMap"]["data"]["vigil.yaml"])
    # As the worker sees it: the file plus the pod's environment, Secret values stubbed.
    env = {e["name"]: e.get("value", "from-secret") for e in worker["env"]}
    settings = config.settings_from_dict(config.apply_env(raw, env))
    assert settings.worker.metrics_port == 9108
    assert {p["containerPort"] for p in worker["ports"]} == {settings.worker.metrics_port}
    assert "sasl_password" not in raw.get("kafka", {}), "credentials belong in the Secret"


def test_prometheus_rule_holds_the_shared_rule_groups(res: dict[str, dict[str, Any]]) -> None:
    render = render_module()
    assert res["PrometheusRule"]["spec"]["groups"] == render.rule_groups()
    current = (K8S / "prometheusrule.yaml").read_text(encoding="utf-8")
    assert current == render.render(), "stale: run python deploy/k8s/render_prometheusrule.py"


def test_prometheus_rule_check_notices_a_changed_rule(tmp_path: Path) -> None:
    render = render_module()
    rules = shutil.copytree(DEPLOY / "prometheus" / "rules", tmp_path / "rules")
    alerts = rules / "vigil-alerts.yml"
    alerts.write_text(alerts.read_text().replace("for: 2m", "for: 3m"))
    assert render.rule_groups(rules) != render.rule_groups()


def kustomize() -> list[str]:
    """``kubectl kustomize``, else the standalone ``kustomize build`` (.ci/run builds it
    with ``go install`` where kubectl is missing: Debian's kubectl 1.20 is too old for
    this kustomization's ``labels``)."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    how = "or kubectl; go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1"
    return [require_tool("kustomize", "kustomize", install=how), "build"]


def test_kustomize_builds() -> None:
    result = run_tool([*kustomize(), K8S], cwd=REPO)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(docs) == len(resources())
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "vigil", doc["kind"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vigil"
    (workers,) = [d for d in docs if d["kind"] == "StatefulSet"]
    assert workers["spec"]["template"]["spec"]["containers"][0]["image"] == "vigil:0.1.0"
