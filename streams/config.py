"""vigil's configuration: one YAML file plus ``VIGIL_*`` environment variables (SPEC §8).

Environment wins over the file. Any key can be set as ``VIGIL_<SECTION>__<KEY>``
(double underscore between levels, value parsed as YAML), e.g.
``VIGIL_WORKER__METRICS_PORT=9200``. Common ones have short aliases:

=================================  =============================
``KAFKA_BOOTSTRAP_SERVERS``        ``kafka.bootstrap``
``VIGIL_KAFKA_BOOTSTRAP``          ``kafka.bootstrap``
``VIGIL_KAFKA_SECURITY_PROTOCOL``  ``kafka.security_protocol``
``VIGIL_KAFKA_SASL_MECHANISM``     ``kafka.sasl_mechanism``
``VIGIL_KAFKA_SASL_USERNAME``      ``kafka.sasl_username``
``VIGIL_KAFKA_SASL_PASSWORD``      ``kafka.sasl_password``
``VIGIL_KAFKA_SSL_CAFILE``         ``kafka.ssl_cafile``
``VIGIL_METRICS_PORT``             ``worker.metrics_port``
=================================  =============================

Per-model sections under ``models`` are deep-merged over ``defaults``; models
not named use ``defaults`` with feature types inferred from their first events.
Secrets are held in :class:`Secret`, whose ``repr`` never shows the value.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml

from detectors.drift_monitor import default_step
from streams.errors import ConfigError

__all__ = ["Secret", "Settings", "load_settings", "settings_from_dict"]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap"),
    "VIGIL_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "VIGIL_KAFKA_SECURITY_PROTOCOL": ("kafka", "security_protocol"),
    "VIGIL_KAFKA_SASL_MECHANISM": ("kafka", "sasl_mechanism"),
    "VIGIL_KAFKA_SASL_USERNAME": ("kafka", "sasl_username"),
    "VIGIL_KAFKA_SASL_PASSWORD": ("kafka", "sasl_password"),
    "VIGIL_KAFKA_SSL_CAFILE": ("kafka", "ssl_cafile"),
    "VIGIL_METRICS_PORT": ("worker", "metrics_port"),
}
# Values that are always kept as strings, whatever YAML would make of them.
STRING_ENV_KEYS: set[tuple[str, ...]] = {
    ("kafka", "sasl_password"),
    ("kafka", "sasl_username"),
    ("kafka", "bootstrap"),
}


class Secret:
    """A string that never shows itself in logs, reprs or tracebacks.

    >>> s = Secret("hunter2"); s, str(s), s.get()
    (Secret('**********'), '**********', 'hunter2')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = "localhost:9092"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: str | None = None

    def confluent_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings for confluent-kafka clients (contains the secret)."""
        conf: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = self.sasl_password.get() if self.sasl_password else ""
        if self.ssl_cafile and self.security_protocol in ("SSL", "SASL_SSL"):
            conf["ssl.ca.location"] = self.ssl_cafile
        return conf


@dataclass(frozen=True)
class TopicSettings:
    inference: str = "vigil.inference"
    labels: str = "vigil.labels"
    escalations: str = "vigil.escalations"
    alerts: str = "vigil.alerts"
    deadletter: str = "vigil.deadletter"
    # Empty: "<app_id>.checkpoints", so two apps (consumer groups) never share state.
    checkpoints: str = ""
    partitions: int = 4
    replication_factor: int = 1
    retention_ms: int = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class WorkerSettings:
    metrics_port: int = 9108
    metrics_host: str = "0.0.0.0"  # noqa: S104 - Prometheus scrapes the pod from outside
    max_event_bytes: int = 64 * 1024
    max_models: int = 500
    max_tracked_models: int = 2000
    max_features_per_model: int = 64
    allow_unknown_models: bool = True
    batch_size: int = 500
    batch_within_s: float = 0.05
    checkpoint_interval_s: float = 5.0
    ingest: Literal["batch", "faust"] = "batch"


@dataclass(frozen=True)
class FeatureSpec:
    type: Literal["numeric", "categorical"]
    min: float | None = None
    max: float | None = None
    redact: bool = False

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type}
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        return d


@dataclass(frozen=True)
class DriftSettings:
    sensitivity: float = 1_000_000.0
    window: int = 250
    # Events between windowed tests (window must be a multiple of it); default: half the
    # window. 50 finds a shift ~25-35 events sooner for ~1.5x the drift cost per event.
    step: int = 125
    reference_size: int = 1000
    top_k: int = 20


@dataclass(frozen=True)
class CalibrationSettings:
    bins: int = 10
    window: int = 5000
    max_ece: float = 0.1
    max_accuracy_drop: float = 0.1


@dataclass(frozen=True)
class EscalationSettings:
    policy: Literal["threshold", "conformal"] = "threshold"
    target_error: float = 0.05
    min_confidence: float = 0.6
    min_margin: float | None = None
    max_entropy: float | None = None
    max_interval_width: float | None = None
    budget_per_minute: float | None = None
    drift_boost: float = 0.1
    data_reasons: bool = True
    name: str = "vigil-default"
    version: str = "1"


@dataclass(frozen=True)
class LabelSettings:
    horizon_seconds: float = 7 * 24 * 3600.0
    # ~60 bytes per pending prediction in a checkpoint: 10k keeps a model's state well
    # under 1 MB; raise it for models whose labels come slowly and in volume.
    max_pending: int = 10_000


@dataclass(frozen=True)
class ModelSettings:
    features: dict[str, FeatureSpec] = field(default_factory=dict)
    redact: frozenset[str] = frozenset()
    drift: DriftSettings = DriftSettings()
    calibration: CalibrationSettings = CalibrationSettings()
    escalation: EscalationSettings = EscalationSettings()
    labels: LabelSettings = LabelSettings()
    reference: str | None = None

    @cached_property
    def redacted(self) -> frozenset[str]:
        """Features whose values never leave vigil (``redact`` list plus per-feature flags);
        computed once per settings object (it is read per escalation)."""
        return self.redact | {n for n, f in self.features.items() if f.redact}


@dataclass(frozen=True)
class Settings:
    app_id: str = "vigil"
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    worker: WorkerSettings = WorkerSettings()
    defaults: ModelSettings = ModelSettings()
    models: dict[str, ModelSettings] = field(default_factory=dict)
    log_level: str = "INFO"

    @property
    def checkpoint_topic(self) -> str:
        """The compacted topic of this app's model checkpoints."""
        return self.topics.checkpoints or f"{self.app_id}.checkpoints"

    def for_model(self, model_id: str) -> ModelSettings:
        return self.models.get(model_id, self.defaults)


# ---------------------------------------------------------------- loading


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (optional) and apply environment overrides; raise ConfigError."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        raw = loaded or {}
    raw = apply_env(raw, os.environ if env is None else env)
    return settings_from_dict(raw)


def apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``raw`` with environment overrides applied (aliases first, then paths)."""
    out = copy.deepcopy(raw)
    for var, path in ENV_ALIASES.items():
        if var in env:
            _set_path(out, path, env[var] if path in STRING_ENV_KEYS else _env_value(env[var]))
    for var, value in env.items():
        if var.startswith("VIGIL_") and "__" in var:
            key = tuple(p.lower() for p in var[len("VIGIL_") :].split("__"))
            _set_path(out, key, value if key in STRING_ENV_KEYS else _env_value(value))
    return out


def _env_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_path(d: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        nxt = d.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            d[key] = nxt
        d = nxt
    d[path[-1]] = value


def settings_from_dict(raw: Mapping[str, Any]) -> Settings:
    """Validate a plain mapping into :class:`Settings`; every error names its key path."""
    r = _Reader(raw, "")
    app_id = r.string("app_id", "vigil")
    log_level = r.choice("log_level", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")
    kafka = _kafka(r.section("kafka"))
    topics = _topics(r.section("topics"))
    worker = _worker(r.section("worker"))
    defaults_raw = r.mapping("defaults")
    defaults = _model(_Reader(defaults_raw, "defaults"))
    models: dict[str, ModelSettings] = {}
    for name, section in r.mapping("models").items():
        if not isinstance(section, dict):
            raise ConfigError(f"models.{name} must be a mapping")
        merged = _deep_merge(defaults_raw, section)
        ms = _model(_Reader(merged, f"models.{name}"))
        # Redaction only accumulates: a model's own ``redact`` list adds to the defaults'
        # (a deep merge would replace the list and silently un-redact those features).
        models[str(name)] = dataclasses.replace(ms, redact=ms.redact | defaults.redact)
    r.done()
    return Settings(app_id, kafka, topics, worker, defaults, models, log_level)


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class _Reader:
    """Reads typed keys from one mapping and reports unknown keys with their path."""

    def __init__(self, raw: Mapping[str, Any] | None, path: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path or 'config'} must be a mapping; got {type(raw).__name__}")
        self.raw = raw
        self.path = path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str) -> Any:
        self.used.add(name)
        return self.raw.get(name)

    def section(self, name: str) -> _Reader:
        return _Reader(self.get(name), self.key(name))

    def mapping(self, name: str) -> dict[str, Any]:
        v = self.get(name)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ConfigError(f"{self.key(name)} must be a mapping; got {type(v).__name__}")
        return v

    def string(self, name: str, default: str | None) -> Any:
        v = self.get(name)
        if v is None:
            return default
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{self.key(name)} must be a non-empty string; got {v!r}")
        return v

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> Any:
        v = self.get(name)
        if v is None:
            return default
        if v not in choices:
            raise ConfigError(f"{self.key(name)} must be one of {', '.join(choices)}; got {v!r}")
        return v

    def integer(self, name: str, default: int, lo: int = 1, hi: int = 2**31) -> int:
        v = self.get(name)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ConfigError(f"{self.key(name)} must be an integer in [{lo}, {hi}]; got {v!r}")
        return v

    def number(self, name: str, default: Any, lo: float = -math.inf, hi: float = math.inf) -> Any:
        v = self.get(name)
        if v is None:
            return default
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or not math.isfinite(v)
            or not lo <= v <= hi
        ):
            raise ConfigError(f"{self.key(name)} must be a number in [{lo}, {hi}]; got {v!r}")
        return float(v)

    def boolean(self, name: str, default: bool) -> bool:
        v = self.get(name)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise ConfigError(f"{self.key(name)} must be true or false; got {v!r}")
        return v

    def done(self) -> None:
        unknown = sorted(set(map(str, self.raw)) - self.used)
        if unknown:
            raise ConfigError(f"{self.path or 'config'}: unknown key(s) {', '.join(unknown)}")


def _kafka(r: _Reader) -> KafkaSettings:
    password = r.get("sasl_password")
    if password is not None and not isinstance(password, str):
        raise ConfigError(f"{r.key('sasl_password')} must be a string")
    out = KafkaSettings(
        bootstrap=r.string("bootstrap", "localhost:9092"),
        security_protocol=r.choice(
            "security_protocol", ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"), "PLAINTEXT"
        ),
        sasl_mechanism=r.choice(
            "sasl_mechanism", ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), "SCRAM-SHA-512"
        ),
        sasl_username=r.string("sasl_username", None),
        sasl_password=Secret(password) if password else None,
        ssl_cafile=r.string("ssl_cafile", None),
    )
    r.done()
    if out.security_protocol.startswith("SASL") and not (out.sasl_username and out.sasl_password):
        raise ConfigError(
            f"kafka.security_protocol {out.security_protocol} needs kafka.sasl_username and "
            "kafka.sasl_password (or VIGIL_KAFKA_SASL_USERNAME / VIGIL_KAFKA_SASL_PASSWORD)"
        )
    return out


def _topics(r: _Reader) -> TopicSettings:
    d = TopicSettings()
    out = TopicSettings(
        inference=r.string("inference", d.inference),
        labels=r.string("labels", d.labels),
        escalations=r.string("escalations", d.escalations),
        alerts=r.string("alerts", d.alerts),
        deadletter=r.string("deadletter", d.deadletter),
        checkpoints=r.string("checkpoints", None) or d.checkpoints,
        partitions=r.integer("partitions", d.partitions, 1, 10_000),
        replication_factor=r.integer("replication_factor", d.replication_factor, 1, 16),
        retention_ms=r.integer("retention_ms", d.retention_ms, 60_000, 2**62),
    )
    r.done()
    return out


def _worker(r: _Reader) -> WorkerSettings:
    d = WorkerSettings()
    out = WorkerSettings(
        metrics_port=r.integer("metrics_port", d.metrics_port, 0, 65535),
        metrics_host=r.string("metrics_host", d.metrics_host),
        max_event_bytes=r.integer("max_event_bytes", d.max_event_bytes, 256, 16 * 2**20),
        max_models=r.integer("max_models", d.max_models, 1, 100_000),
        max_tracked_models=r.integer("max_tracked_models", d.max_tracked_models, 1, 1_000_000),
        max_features_per_model=r.integer(
            "max_features_per_model", d.max_features_per_model, 1, 512
        ),
        allow_unknown_models=r.boolean("allow_unknown_models", d.allow_unknown_models),
        batch_size=r.integer("batch_size", d.batch_size, 1, 100_000),
        batch_within_s=r.number("batch_within_s", d.batch_within_s, 0.0, 10.0),
        checkpoint_interval_s=r.number(
            "checkpoint_interval_s", d.checkpoint_interval_s, 0.1, 3600.0
        ),
        ingest=r.choice("ingest", ("batch", "faust"), d.ingest),
    )
    r.done()
    return out


def _model(r: _Reader) -> ModelSettings:
    features: dict[str, FeatureSpec] = {}
    for name, spec in r.mapping("features").items():
        fr = _Reader(spec, f"{r.key('features')}.{name}")
        features[str(name)] = FeatureSpec(
            type=fr.choice("type", ("numeric", "categorical"), "numeric"),
            min=fr.number("min", None),
            max=fr.number("max", None),
            redact=fr.boolean("redact", False),
        )
        fr.done()
        f = features[str(name)]
        if f.min is not None and f.max is not None and f.min > f.max:
            raise ConfigError(f"{fr.path}: min must be ≤ max; got {f.min} > {f.max}")
    redact = r.get("redact") or []
    if not isinstance(redact, list) or not all(isinstance(x, str) for x in redact):
        raise ConfigError(f"{r.key('redact')} must be a list of feature names")

    dr = r.section("drift")
    dd = DriftSettings()
    window = dr.integer("window", dd.window, 10, 1_000_000)
    drift = DriftSettings(
        sensitivity=dr.number("sensitivity", dd.sensitivity, 100.0, 1e12),
        window=window,
        step=dr.integer("step", default_step(window), 10, 100_000),
        reference_size=dr.integer("reference_size", dd.reference_size, 50, 1_000_000),
        top_k=dr.integer("top_k", dd.top_k, 2, 1000),
    )
    dr.done()
    if drift.window % drift.step:
        raise ConfigError(
            f"{dr.key('window')} must be a multiple of {dr.key('step')} ({drift.step}); "
            f"got {drift.window}"
        )

    cr = r.section("calibration")
    cd = CalibrationSettings()
    calibration = CalibrationSettings(
        bins=cr.integer("bins", cd.bins, 2, 100),
        window=cr.integer("window", cd.window, 10, 10_000_000),
        max_ece=cr.number("max_ece", cd.max_ece, 0.0, 1.0),
        max_accuracy_drop=cr.number("max_accuracy_drop", cd.max_accuracy_drop, 0.0, 1.0),
    )
    cr.done()

    er = r.section("escalation")
    ed = EscalationSettings()
    budget = er.get("budget_per_minute")
    er.used.discard("budget_per_minute")
    escalation = EscalationSettings(
        policy=er.choice("policy", ("threshold", "conformal"), ed.policy),
        target_error=er.number("target_error", ed.target_error, 0.0001, 0.5),
        min_confidence=er.number("min_confidence", ed.min_confidence, 0.0, 1.0),
        min_margin=er.number("min_margin", None, 0.0, 1.0),
        max_entropy=er.number("max_entropy", None, 0.0, 1.0),
        max_interval_width=er.number("max_interval_width", None, 1e-12, math.inf),
        budget_per_minute=None if budget is None else er.number("budget_per_minute", None, 0.1),
        drift_boost=er.number("drift_boost", ed.drift_boost, 0.0, 1.0),
        data_reasons=er.boolean("data_reasons", ed.data_reasons),
        name=er.string("name", ed.name),
        version=str(er.get("version") or ed.version),
    )
    er.done()

    lr = r.section("labels")
    ld = LabelSettings()
    labels = LabelSettings(
        horizon_seconds=lr.number("horizon_seconds", ld.horizon_seconds, 1.0, 365 * 86400.0),
        max_pending=lr.integer("max_pending", ld.max_pending, 1, 100_000_000),
    )
    lr.done()

    reference = r.string("reference", None)
    r.done()
    return ModelSettings(
        features, frozenset(redact), drift, calibration, escalation, labels, reference
    )
