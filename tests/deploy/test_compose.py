"""docker-compose.yml, Dockerfile and .dockerignore, checked structurally.

There is no Docker engine where these tests run, so nothing is started: the
checks are that services point at each other correctly (Kafka listeners,
scrape targets, depends_on) and that every file mounted into a container
exists in the repository.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import PurePosixPath
from typing import Any

import pytest

from streams.config.settings import LabelStudioSettings
from tests.deploy.conftest import DEPLOY, REPO, RULE_FILES, load_yaml, run_tool

VIGIL_SERVICES = ("topics", "worker-1", "worker-2", "demo-traffic", "review-bridge")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return load_yaml(REPO / "docker-compose.yml")["services"]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """host path -> container path for bind mounts (short syntax)."""
    out = {}
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if parts[-1] in {"ro", "rw"}:
            parts = parts[:-1]
        host, container = parts
        out[host] = container
    return out


def container_to_host(service: dict[str, Any], path: str) -> PurePosixPath | None:
    """The repository path a container path comes from, through the service's mounts."""
    for host, container in mounts(service).items():
        p, c = PurePosixPath(path), PurePosixPath(container)
        if p == c or c in p.parents:
            return PurePosixPath(host) / p.relative_to(c)
    return None


def flag(service: dict[str, Any], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in service["command"] if a.startswith(f"{name}=")]
    return value


def test_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {
        "kafka",
        *VIGIL_SERVICES,
        "label-studio",
        "prometheus",
        "alertmanager",
        "grafana",
    }


def test_kafka_is_a_single_kraft_node_reachable_inside_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.1"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = dict(
        re.fullmatch(r"(\w+)://(.*)", entry).groups()  # type: ignore[union-attr]
        for entry in env["KAFKA_LISTENERS"].split(",")
    )
    advertised = dict(
        re.fullmatch(r"(\w+)://(.*)", entry).groups()  # type: ignore[union-attr]
        for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    assert set(listeners) <= set(protocols)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    node, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert int(node) == int(env["KAFKA_NODE_ID"])
    controller_port = listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]].rsplit(":", 1)[1]
    assert voter == f"kafka:{controller_port}"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert int(env[key]) == 1, key
    assert env.get("CLUSTER_ID")
    # What vigil containers connect to is an advertised address, inside the network.
    for name in VIGIL_SERVICES:
        bootstrap = services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
        assert bootstrap in advertised.values(), name
        assert bootstrap.split(":")[0] == "kafka"
    assert "healthcheck" in kafka


def test_vigil_services_start_in_order(services: dict[str, dict[str, Any]]) -> None:
    assert services["topics"]["command"] == ["topics", "create"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["demo-traffic"]["command"] == ["demo", "--traffic-only"]
    for name in ("worker-1", "worker-2", "demo-traffic", "review-bridge"):
        condition = services[name]["depends_on"]["topics"]["condition"]
        assert condition == "service_completed_successfully", name
    for name in VIGIL_SERVICES:
        assert services[name]["build"] == ".", name


def test_each_worker_has_its_own_static_instance_id(services: dict[str, dict[str, Any]]) -> None:
    """A shared id would fence one worker; a restarted container keeps its service's id."""
    workers = [name for name in services if name.startswith("worker-")]
    assert len(workers) == 2
    ids = [services[name]["environment"]["VIGIL_INSTANCE_ID"] for name in workers]
    assert ids == workers
    for name in workers:  # the shared environment is still there
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_prometheus_scrapes_the_compose_workers(services: dict[str, dict[str, Any]]) -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vigil"]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    for name in ("worker-1", "worker-2"):
        assert services[name]["command"][0] == "worker"
        assert f"{name}:9108" in targets
        # 503 (urlopen raises) once the worker's ingest loop has stopped going round.
        assert services[name]["healthcheck"]["test"][-1].find(":9108/healthz") > 0


def test_the_review_bridge_reaches_label_studio_and_is_scraped(
    services: dict[str, dict[str, Any]],
) -> None:
    bridge, label_studio = services["review-bridge"], services["label-studio"]
    assert bridge["command"] == ["review", "label-studio"]
    # The Label Studio that tests and CI run (requirements-label-studio.lock).
    lock = (REPO / "requirements-label-studio.lock").read_text(encoding="utf-8")
    (version,) = re.findall(r"^label-studio==(\S+)", lock, re.MULTILINE)
    assert label_studio["image"] == f"heartexlabs/label-studio:{version}"
    ls_env, env = label_studio["environment"], bridge["environment"]
    assert env["VIGIL_LABEL_STUDIO_URL"] == "http://label-studio:8080"
    assert "8080:8080" in label_studio["ports"]
    # The bridge acts as the admin user that Label Studio makes from these variables.
    assert env["VIGIL_LABEL_STUDIO_TOKEN"] == ls_env["LABEL_STUDIO_USER_TOKEN"]
    assert ls_env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert bridge["depends_on"]["label-studio"]["condition"] == "service_healthy"
    assert "healthcheck" in label_studio
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vigil-review"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"{bridge['hostname']}:{LabelStudioSettings().metrics_port}"]
    # Webhooks: the URL reaches the bridge's endpoint on the compose network, with a secret,
    # and Label Studio may call a private address there.
    from streams.config import load_settings

    settings = load_settings(None, env={k: str(v) for k, v in env.items()}).review.label_studio
    assert settings.webhook_url == (
        f"http://{bridge['hostname']}:{LabelStudioSettings().webhook_port}/webhook"
    )
    assert settings.webhook_secret is not None and settings.webhook_secret.get_secret_value()
    assert ls_env["LABEL_STUDIO_SSRF_PROTECTION_ENABLED"] == "false"


def test_mounted_host_paths_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for host in mounts(service):
            assert (REPO / host).exists(), f"{name} mounts missing {host}"


def test_prometheus_container_finds_its_config_and_rule_files(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    config_path = container_to_host(prometheus, flag(prometheus, "--config.file"))
    assert config_path is not None
    config_file = REPO / config_path
    assert config_file.is_file()
    rule_files = {
        p
        for pattern in load_yaml(config_file)["rule_files"]
        for p in config_file.parent.glob(pattern)
    }
    assert rule_files == set(RULE_FILES)
    assert all(p.stat().st_size > 0 for p in rule_files)


def test_alertmanager_container_finds_its_config(services: dict[str, dict[str, Any]]) -> None:
    am = services["alertmanager"]
    config_path = container_to_host(am, flag(am, "--config.file"))
    assert config_path is not None and (REPO / config_path).is_file()
    config = load_yaml(REPO / config_path)
    names = {r["name"] for r in config["receivers"]}
    assert config["route"]["receiver"] in names
    for route in config["route"].get("routes", []):
        assert route["receiver"] in names


def test_grafana_gets_provisioning_and_dashboards(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert mounts(grafana)["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = container_to_host(grafana, env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home is not None and (REPO / home).is_file()


def test_published_host_ports_are_unique(services: dict[str, dict[str, Any]]) -> None:
    published = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published))


@pytest.mark.prometheus
def test_amtool_accepts_the_alertmanager_config(amtool: str) -> None:
    result = run_tool([amtool, "check-config", DEPLOY / "alertmanager" / "alertmanager.yml"])
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ image


def dockerfile() -> list[tuple[str, str]]:
    lines = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, one list per stage (each starts with its FROM)."""
    out: list[list[tuple[str, str]]] = []
    for instruction, rest in dockerfile():
        if instruction == "FROM":
            out.append([])
        out[-1].append((instruction, rest))
    return out


def test_dockerfile_builds_the_wheel_with_rust_in_a_stage_the_image_does_not_keep() -> None:
    build, image = stages()
    assert build[0] == ("FROM", "python:3.11-slim AS build")
    runs = [rest for instruction, rest in build if instruction == "RUN"]
    # Rust from rustup at a pinned toolchain (Debian's is too old for PyO3).
    assert any("sh.rustup.rs" in r and "--default-toolchain 1." in r for r in runs)
    assert any("pip wheel" in r and "--no-deps" in r for r in runs)
    # The image takes the wheel only: no compiler, no cargo, no sources to build from.
    assert ("COPY", "--from=build /wheels /wheels") in image
    image_runs = " ".join(rest for instruction, rest in image if instruction == "RUN")
    assert "rustup" not in image_runs and "gcc" not in image_runs
    # The crates come from the lock: the build asks cargo for --locked.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (native,) = pyproject["tool"]["setuptools-rust"]["ext-modules"]
    assert "--locked" in native["cargo-manifest-args"]
    assert (REPO / native["path"]).parent.joinpath("Cargo.lock").is_file()


def test_dockerfile() -> None:
    instructions = stages()[-1]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    values = {}
    for instruction, rest in instructions:
        values.setdefault(instruction, []).append(rest)
    user = values["USER"][-1]
    assert user not in {"root", "0"}
    workers = load_yaml(DEPLOY / "k8s" / "statefulset.yaml")
    assert int(user) == workers["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert values["ENTRYPOINT"] == ['["vigil"]']
    assert values["CMD"] == ['["worker"]']
    assert values["EXPOSE"] == ["9108"]
    # Dependencies from the runtime lock with their hashes, then the project alone.
    runs = values["RUN"]
    lock_step = next(i for i, r in enumerate(runs) if "requirements-runtime.lock" in r)
    assert "--require-hashes" in runs[lock_step]
    project_step = next(i for i, r in enumerate(runs) if "pip install --no-deps /wheels/" in r)
    assert lock_step < project_step
    assert "requirements-runtime.lock" in " ".join(values["COPY"])


def test_dockerignore_keeps_the_package_and_drops_the_rest() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= ignored
    copied = {"pyproject.toml", "requirements-runtime.lock", "streams", "detectors", "README.md"}
    assert not copied & ignored
    # What a local build left (cargo's output, the extension) is not copied over the
    # build stage's own.
    assert {"**/target", "**/*.so"} <= ignored
