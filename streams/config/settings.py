"""Every setting, declared once: its type, default, bounds and help (SPEC §8).

Each section is a frozen pydantic model with ``extra="forbid"`` (an unknown key is an
error) and strict types (``"four"`` is not an integer, ``true`` is not a number, NaN is not
a number). A key set to ``null`` in the file means "the default". The environment layer
(:mod:`streams.config.loading`), the error messages (:mod:`streams.config.problems`) and
``vigil config check --print-defaults`` (:mod:`streams.config.template`) are all derived
from these declarations; a field's ``json_schema_extra={"env": ...}`` names its short
environment aliases.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo

from detectors.drift_monitor import default_step

__all__ = [
    "CalibrationSettings",
    "DatasetSettings",
    "DriftSettings",
    "EscalationSettings",
    "FeatureSpec",
    "KafkaSettings",
    "LabelSettings",
    "LabelStudioSettings",
    "ModelSettings",
    "RegressionSettings",
    "ReviewSettings",
    "ReviewToolSettings",
    "SegmentSettings",
    "Settings",
    "TopicSettings",
    "VersionSettings",
    "WorkerSettings",
    "field_extra",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _env(*names: str) -> dict[str, Any]:
    """``json_schema_extra`` naming a setting's short environment aliases."""
    return {"env": list(names)}


def field_extra(field: FieldInfo, key: str) -> Any:
    """What a setting declares under ``key`` in its ``json_schema_extra`` (or None)."""
    extra = field.json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None


class Section(BaseModel):
    """A frozen, strict settings section whose unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # ``kafka:`` with nothing under it, or ``min_margin: null``, keeps the default.
        if data is None:
            return {}
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None}
        return data


class KafkaSettings(Section):
    bootstrap: str = Field(
        default="localhost:9092",
        min_length=1,
        description="Kafka bootstrap servers, host:port[,host:port...]",
        json_schema_extra=_env("KAFKA_BOOTSTRAP_SERVERS", "VIGIL_KAFKA_BOOTSTRAP"),
    )
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="SASL_* needs sasl_username and sasl_password",
        json_schema_extra=_env("VIGIL_KAFKA_SECURITY_PROTOCOL"),
    )
    sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512", json_schema_extra=_env("VIGIL_KAFKA_SASL_MECHANISM")
    )
    sasl_username: str | None = Field(
        default=None, min_length=1, json_schema_extra=_env("VIGIL_KAFKA_SASL_USERNAME")
    )
    sasl_password: SecretStr | None = Field(
        default=None,
        description="never shown in logs or reprs; set it from the environment",
        json_schema_extra=_env("VIGIL_KAFKA_SASL_PASSWORD"),
    )
    ssl_cafile: str | None = Field(
        default=None,
        min_length=1,
        description="CA bundle for SSL and SASL_SSL",
        json_schema_extra=_env("VIGIL_KAFKA_SSL_CAFILE"),
    )

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSettings:
        password = self.sasl_password.get_secret_value() if self.sasl_password else ""
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and password):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs kafka.sasl_username and "
                "kafka.sasl_password (or VIGIL_KAFKA_SASL_USERNAME / VIGIL_KAFKA_SASL_PASSWORD)"
            )
        return self

    def confluent_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings for confluent-kafka clients (contains the secret)."""
        conf: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else ""
            )
        if self.ssl_cafile and self.security_protocol in ("SSL", "SASL_SSL"):
            conf["ssl.ca.location"] = self.ssl_cafile
        return conf


class TopicSettings(Section):
    inference: str = Field(
        default="vigil.inference", min_length=1, description="prediction events in"
    )
    labels: str = Field(default="vigil.labels", min_length=1, description="ground-truth labels in")
    escalations: str = Field(
        default="vigil.escalations", min_length=1, description="items for review out"
    )
    alerts: str = Field(
        default="vigil.alerts", min_length=1, description="drift and calibration alerts out"
    )
    deadletter: str = Field(
        default="vigil.deadletter", min_length=1, description="rejected messages out"
    )
    reviewed: str = Field(
        default="vigil.reviewed",
        min_length=1,
        description="adjudicated reviews out (SPEC §12), the dataset sink's input",
    )
    checkpoints: str = Field(
        default="",
        # Per app: two apps (consumer groups) never share state.
        description='compacted state topic; empty: "<app_id>.checkpoints"',
    )
    partitions: int = Field(default=4, ge=1, le=10_000, description="for `vigil topics create`")
    replication_factor: int = Field(default=1, ge=1, le=16, description="for `vigil topics create`")
    retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000, ge=60_000, le=2**62, description="for `vigil topics create`"
    )


class WorkerSettings(Section):
    metrics_port: int = Field(
        default=9108,
        ge=0,
        le=65535,
        description="/metrics port",
        json_schema_extra=_env("VIGIL_METRICS_PORT"),
    )
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - Prometheus scrapes the pod from outside
        min_length=1,
        description="/metrics address",
    )
    liveness_timeout_s: float = Field(
        default=120.0,
        ge=5.0,
        le=3600.0,
        description="/healthz answers 503 once the ingest loop has not gone round for this "
        "long (a stuck worker, for a liveness probe to restart)",
    )
    max_event_bytes: int = Field(
        default=64 * 1024, ge=256, le=16 * 2**20, description="larger messages are dead letters"
    )
    max_models: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="distinct `model` label values on /metrics (then _other)",
    )
    max_tracked_models: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="models whose state is kept in memory (LRU beyond)",
    )
    max_features_per_model: int = Field(
        default=64, ge=1, le=512, description="features monitored per model (first seen first)"
    )
    allow_unknown_models: bool = Field(
        default=True, description="false: events of models not under `models` are dead letters"
    )
    batch_size: int = Field(
        default=500, ge=1, le=100_000, description="messages per consumed batch"
    )
    batch_within_s: float = Field(
        default=0.05,
        ge=0.0,
        le=10.0,
        description="longest wait for a message when there is none to read (the batch "
        "driver never waits to fill a batch; the faust driver waits up to this to fill one)",
    )
    checkpoint_interval_s: float = Field(
        default=5.0, ge=0.1, le=3600.0, description="seconds between checkpoint rounds"
    )
    ingest: Literal["batch", "faust"] = Field(default="batch", description="the Kafka driver")
    instance_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="static consumer-group membership (Kafka group.instance.id): a worker "
        "restarted with the same id within session_timeout_s gets its partitions back "
        "without a rebalance; unique per worker (a duplicate fences the other one)",
        json_schema_extra={**_env("VIGIL_INSTANCE_ID"), "when_null": "dynamic membership"},
    )
    session_timeout_s: float = Field(
        default=10.0,
        ge=6.0,
        le=1800.0,
        description="consumer-group session timeout: a worker silent this long loses its "
        "partitions (and, with instance_id, a restarted one must be back within it)",
    )


class FeatureSpec(Section):
    type: Literal["numeric", "categorical"] = Field(
        default="numeric", description="the feature's kind"
    )
    min: float | None = Field(default=None, description="smaller values escalate as out_of_range")
    max: float | None = Field(default=None, description="larger values escalate as out_of_range")
    redact: bool = Field(default=False, description='true: "[redacted]" in escalations and alerts')
    importance: float | None = Field(
        default=None,
        ge=0.0,
        le=1e12,
        description="weight of this feature's drift in the drift impact ranking "
        "(impact = importance x statistic / threshold)",
        json_schema_extra={"when_null": "1"},
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> FeatureSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must be ≤ max; got {self.min} > {self.max}")
        return self

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type}
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        if self.importance is not None:
            d["importance"] = self.importance
        return d


class DriftSettings(Section):
    sensitivity: float = Field(
        default=1_000_000.0, ge=100.0, le=1e12, description="expected events between false alarms"
    )
    window: int = Field(default=250, ge=10, le=1_000_000, description="events per windowed test")
    # 125 = detectors.sensitivity.default_step(250): half the window, as every detector.
    step: int = Field(
        default=125,
        ge=10,
        le=100_000,
        description="events between windowed tests; window must be a multiple of it",
        json_schema_extra={"when_null": "half the window"},
    )
    reference_size: int = Field(
        default=1000, ge=50, le=1_000_000, description="first events kept as reference (no profile)"
    )
    top_k: int = Field(default=20, ge=2, le=1000, description="categories tracked per feature")
    multivariate: bool = Field(
        default=True,
        description="the multivariate signal: PCA reconstruction error of the numeric "
        "features (2 or more) against the reference, one more signal in the budget",
    )

    @model_validator(mode="before")
    @classmethod
    def _step_follows_window(cls, data: Any) -> Any:
        # A file that sets only ``window`` gets the step that suits it, not 125.
        if isinstance(data, Mapping) and data.get("step") is None:
            window = data.get("window")
            if isinstance(window, int) and not isinstance(window, bool) and window > 0:
                return {**data, "step": default_step(window)}
        return data

    @model_validator(mode="after")
    def _window_multiple_of_step(self) -> DriftSettings:
        if self.window % self.step:
            raise ValueError(f"window must be a multiple of step ({self.step}); got {self.window}")
        return self


class CalibrationSettings(Section):
    bins: int = Field(default=10, ge=2, le=100, description="reliability bins")
    window: int = Field(
        default=5000, ge=10, le=10_000_000, description="labelled events per estimate"
    )
    max_ece: float = Field(
        default=0.1, ge=0.0, le=1.0, description="alert above this calibration error"
    )
    max_accuracy_drop: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="alert when accuracy falls this far below reference",
    )
    classwise: bool = Field(
        default=True,
        description="classwise ECE and multiclass Brier from predictions that carry scores "
        "(pending predictions then keep their scores until labelled)",
    )
    classwise_window: int = Field(
        default=1000,
        ge=10,
        le=1_000_000,
        description="labelled predictions with scores per classwise estimate",
    )
    max_classes: int = Field(
        default=20,
        ge=2,
        le=1000,
        description="classes tracked by name for classwise ECE (first seen; the rest pooled "
        "as _other)",
    )


class RegressionSettings(Section):
    """Quality of regression models from their labels (``regression`` section)."""

    window: int = Field(
        default=1000,
        ge=10,
        le=10_000_000,
        description="labelled predictions per MAE / RMSE / bias / coverage estimate",
    )
    interval_level: float = Field(
        default=0.9,
        gt=0.0,
        lt=1.0,
        description="nominal coverage of the models' prediction intervals (0.9: 90% intervals)",
    )
    coverage_tolerance: float = Field(
        default=0.05,
        ge=0.0,
        lt=1.0,
        description="alert coverage when it is shown below interval_level minus this",
    )
    coverage_confidence: float = Field(
        default=0.99,
        ge=0.5,
        lt=1.0,
        description="level of the upper bound on coverage that must fall below the floor",
    )
    min_labelled: int = Field(
        default=200,
        ge=1,
        le=10_000_000,
        description="labelled predictions with an interval before coverage can alert",
    )

    @model_validator(mode="after")
    def _tolerance_below_level(self) -> RegressionSettings:
        if self.coverage_tolerance >= self.interval_level:
            raise ValueError(
                f"coverage_tolerance must be below interval_level ({self.interval_level}); "
                f"got {self.coverage_tolerance}"
            )
        return self


class EscalationSettings(Section):
    policy: Literal["threshold", "conformal"] = Field(
        default="threshold", description="how to escalate"
    )
    target_error: float = Field(
        default=0.05, ge=0.0001, le=0.5, description="conformal: error rate of auto-accepted items"
    )
    learning_rate: float = Field(
        default=0.005,
        gt=0.0,
        le=1.0,
        description="conformal: threshold step per labelled auto-accepted item; with "
        "audits as the only labels of accepted items (50x rarer at 2%), 0.02 adapts faster",
    )
    min_confidence: float = Field(
        default=0.6, ge=0.0, le=1.0, description="threshold: escalate below"
    )
    min_margin: float | None = Field(
        default=None, ge=0.0, le=1.0, description="threshold: escalate when top-2 margin is below"
    )
    max_entropy: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="threshold: escalate when normalised entropy is above",
    )
    max_interval_width: float | None = Field(
        default=None, ge=1e-12, description="regressions: escalate wider prediction intervals"
    )
    budget_per_minute: float | None = Field(
        default=None, ge=0.1, description="escalations per minute; the rest are suppressed"
    )
    max_autoaccept_error: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="alert autoaccept_error when the 95% upper bound of the error among "
        "auto-accepted items exceeds this (default: target_error)",
    )
    drift_boost: float = Field(
        default=0.1, ge=0.0, le=1.0, description="confidence bar raise while the model is in drift"
    )
    data_reasons: bool = Field(
        default=True, description="escalate out_of_range, unseen_category, missing_features"
    )
    outlier_quantile: float = Field(
        default=0.99999,
        ge=0.0,
        lt=1.0,
        description="escalate (reason outlier) events whose outlier score is beyond this "
        "quantile of the reference's, so 1 - q of clean events; 0: no outlier reason. "
        "Needs drift.multivariate",
    )
    name: str = Field(
        default="vigil-default", min_length=1, description="policy name in escalations"
    )
    version: str = Field(default="1", description="policy version in escalations")

    @field_validator("outlier_quantile")
    @classmethod
    def _outlier_quantile_off_or_extreme(cls, v: float) -> float:
        if 0.0 < v < 0.5:
            raise ValueError(f"must be 0 (off) or in [0.5, 1); got {v}")
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, v: Any) -> Any:
        # ``version: 2`` in YAML is a number; a version is text.
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


class LabelSettings(Section):
    horizon_seconds: float = Field(
        default=7 * 24 * 3600.0, ge=1.0, le=365 * 86400.0, description="how long a label may join"
    )
    # ~60 bytes per pending prediction in a checkpoint: 10k keeps a model's state well
    # under 1 MB; raise it for models whose labels come slowly and in volume.
    max_pending: int = Field(
        default=10_000,
        ge=1,
        le=100_000_000,
        description="predictions waiting for a label, per model",
    )
    outcome_rate: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="share of events an outcome source labels; weighs labels of events "
        "vigil did not send for review (1: the source reports every event)",
    )


class SegmentSettings(Section):
    """Segment keys monitored per value (issue 16; :mod:`detectors.segments`).

    ``segments: [region, tenant]`` is short for ``segments: {keys: [region, tenant]}``.
    """

    keys: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=8,
        description="keys of the events' segment object monitored per value (none: off)",
    )
    top_k: int = Field(
        default=10, ge=1, le=50, description="values per key with their own monitors; rest _other"
    )
    features: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=64, description="features whose drift is watched per value"
    )

    @model_validator(mode="before")
    @classmethod
    def _list_is_keys(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            return {"keys": list(data)}
        return data

    @model_validator(mode="after")
    def _distinct(self) -> SegmentSettings:
        for key in self.keys:
            if any(c in key for c in ":=%"):
                raise ValueError(
                    f"keys must not contain ':', '=' or '%' (signals use them); got {key!r}"
                )
        for name in ("keys", "features"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct; got {values}")
        return self


class ReviewSettings(Section):
    audit_rate: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="probability that an auto-accepted event is escalated for review "
        "(reason audit); 0 turns the audit off",
    )
    audit_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="expected audits per minute at most; the audit probability is lowered "
        "to meet it (and recorded), never items dropped",
    )
    audit_seed: int = Field(
        default=0, description="seed of the audit draw (deterministic per model and event)"
    )
    gold: str | None = Field(
        default=None,
        min_length=1,
        description="JSONL file of gold items: InferenceEvents of this model, each with its "
        "known label (or value); their labels score reviewers, never the model",
    )
    gold_rate: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="expected gold items per escalation sent (with review.gold set)",
    )
    gold_key: SecretStr | None = Field(
        default=None,
        description="key of the gold ids (HMAC); default: derived from app_id, so anyone "
        "who knows app_id could tell gold ids apart: set one to keep them from reviewers",
    )
    gold_tolerance: float = Field(
        default=0.0,
        ge=0.0,
        description="a regression answer to a gold item is right within this distance",
    )
    overlap_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="share of escalations that ask for overlap_reviews independent reviews "
        "(reviews_wanted); drawn per event, deterministically, independent of the audit draw",
    )
    overlap_reviews: int = Field(
        default=2, ge=2, le=10, description="reviews_wanted of an escalation in the overlap sample"
    )
    adjudication_timeout_s: float = Field(
        default=3600.0,
        gt=0.0,
        allow_inf_nan=False,
        description="seconds after an event's first label at which it is adjudicated with the "
        "labels it has, short of its reviews_wanted",
    )
    max_open: int = Field(
        default=10_000,
        ge=1,
        description="escalations remembered per model for the reviewed record, and events "
        "waiting for more reviews; beyond it the oldest is forgotten (counted) or decided",
    )
    min_gold_accuracy: float = Field(
        default=0.8,
        gt=0.0,
        le=1.0,
        description="a reviewer is flagged when the 95% upper bound of their accuracy falls "
        "below this (after flag_min_items items of evidence)",
    )
    flag_on: Literal["gold", "all"] = Field(
        default="all",
        description="evidence a reviewer is flagged on: 'gold' answers alone, or 'all': gold "
        "and their adjudicated labels on overlapped events (2% gold cannot show a careless "
        "reviewer within a few hundred labels; see benchmarks/review_quality.py)",
    )
    flag_min_items: int = Field(
        default=30,
        ge=1,
        description="items of evidence (gold answers, and adjudicated overlapped labels with "
        "flag_on: all) a reviewer has before they can be flagged",
    )
    min_agreement: float = Field(
        default=0.6,
        ge=-1.0,
        le=1.0,
        description="model agreement alert: Krippendorff's alpha over overlapped items below this",
    )
    agreement_window: int = Field(
        default=500,
        ge=10,
        description="overlapped items the model's Krippendorff's alpha covers",
    )


class LabelStudioSettings(Section):
    """``vigil review label-studio``: the bridge between the escalations and labels topics and
    a Label Studio server (SPEC §13)."""

    url: str = Field(
        default="http://localhost:8080",
        pattern=r"^https?://[^/\s]+(/.*)?$",
        description="Label Studio's base URL",
        json_schema_extra=_env("VIGIL_LABEL_STUDIO_URL"),
    )
    token: SecretStr | None = Field(
        default=None,
        description="API token of the bridge's Label Studio user (Authorization: Token); "
        "never shown in logs or reprs; set it from the environment",
        json_schema_extra=_env("VIGIL_LABEL_STUDIO_TOKEN"),
    )
    projects: dict[str, int] = Field(
        default_factory=dict,
        description="model id -> id of an existing Label Studio project; a model not named "
        "gets a project titled by project_title, made on first use",
    )
    models: list[str] | None = Field(
        default=None,
        description="the models whose escalations go to Label Studio (default: every "
        "model); the escalations of other models are passed over (counted), for another "
        "review tool",
    )
    project_title: str = Field(
        default="vigil {model_id}",
        pattern=r"\{model_id\}",
        max_length=50,
        description="title of the project made for a model ({model_id} is replaced)",
    )
    label_config: str | None = Field(
        default=None,
        min_length=1,
        description="labeling config (XML) for projects the bridge makes; default: one "
        "built from the model's classes",
    )
    group_id: str = Field(
        default="vigil-review-label-studio",
        min_length=1,
        description="the bridge's own consumer group on the escalations topic",
    )
    batch_size: int = Field(default=200, ge=1, le=10_000, description="escalations per bulk import")
    batch_within_s: float = Field(
        default=1.0, ge=0.0, le=60.0, description="longest wait to fill a batch"
    )
    request_timeout_s: float = Field(
        default=30.0, gt=0.0, le=600.0, description="per request to Label Studio"
    )
    retry_initial_s: float = Field(
        default=1.0, gt=0.0, le=60.0, description="first wait when Label Studio is down"
    )
    retry_max_s: float = Field(
        default=60.0, gt=0.0, le=3600.0, description="longest wait between retries"
    )
    metrics_port: int = Field(
        default=9112, ge=0, le=65535, description="the bridge's /metrics port"
    )
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - Prometheus scrapes the bridge from outside
        min_length=1,
        description="the bridge's /metrics address",
    )
    webhook_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - Label Studio calls the bridge from outside
        min_length=1,
        description="listen address of the bridge's webhook endpoint (annotations in)",
    )
    webhook_port: int = Field(default=9111, ge=0, le=65535, description="webhook endpoint port")
    webhook_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/\s]+(/.*)?$",
        description="the URL Label Studio calls to reach the webhook endpoint (routable from "
        "the Label Studio server); when set, the bridge registers it as a webhook on every "
        "project it uses; when not, annotations arrive by reconciliation alone",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="shared secret Label Studio sends with each webhook (header "
        "X-Vigil-Webhook-Secret); requests without it are refused with 401",
        json_schema_extra=_env("VIGIL_LABEL_STUDIO_WEBHOOK_SECRET"),
    )
    reconcile_every_s: float = Field(
        default=30.0,
        gt=0.0,
        le=3600.0,
        description="how often annotations are read back from Label Studio to publish any "
        "that a webhook missed",
    )
    backlog_every_s: float = Field(
        default=30.0,
        gt=0.0,
        le=3600.0,
        description="how often open tasks per model are counted (vigil_review_backlog)",
    )

    @model_validator(mode="after")
    def _backoff_grows(self) -> LabelStudioSettings:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError(
                f"review.label_studio.retry_max_s ({self.retry_max_s}) must be >= "
                f"retry_initial_s ({self.retry_initial_s})"
            )
        return self


class DatasetSettings(Section):
    """``vigil dataset``: the versioned dataset of reviewed records (SPEC §14)."""

    table: str = Field(
        default="vigil-dataset",
        min_length=1,
        description="the Delta table: a local path, or a delta-rs URI (s3://, gs://, az://, "
        "abfss://) whose credentials come from the object store's own environment variables",
        json_schema_extra=_env("VIGIL_DATASET_TABLE"),
    )
    group_id: str = Field(
        default="vigil-dataset",
        min_length=1,
        description="the sink's consumer group on the reviewed topic; also names the table's "
        "application transactions, one per group and partition",
    )
    batch_size: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        description="reviewed records per Delta commit at most (one commit per batch)",
    )
    batch_within_s: float = Field(
        default=2.0, ge=0.0, le=600.0, description="longest wait to fill a batch"
    )
    max_commit_attempts: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="attempts at one batch's commit when another writer commits first "
        "(each attempt reloads the table and drops what is already in it)",
    )
    metrics_port: int = Field(default=9113, ge=0, le=65535, description="the sink's /metrics port")
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - Prometheus scrapes the sink from outside
        min_length=1,
        description="the sink's /metrics address",
    )


class ReviewToolSettings(Section):
    """The review tools vigil connects to (one process each); per-model review sampling is
    ``defaults.review`` / ``models.<id>.review``."""

    label_studio: LabelStudioSettings = LabelStudioSettings()


class VersionSettings(Section):
    """A model's versions (``model_version`` of its events): their lifecycle and canary."""

    idle_seconds: float = Field(
        default=3600.0,
        gt=0.0,
        le=365 * 86400.0,
        allow_inf_nan=False,
        description="a version with no event for this long (worker clock) is retired: its "
        "state and series dropped",
    )
    max_live: int = Field(
        default=3,
        ge=1,
        le=20,
        description="versions per model with state and series of their own; events of "
        "further versions count under version _other until one retires",
    )
    output_drift: bool = Field(
        default=False,
        description="drift of every version's confidence (regression: value) against its "
        "own reference, its first drift.reference_size events (signal version:<v>:confidence "
        "or version:<v>:value); a version named in reference_by_version always gets it, "
        "against its profile. Off by default: ~6 us per event per version that has it",
    )
    canary: bool = Field(
        default=True,
        description="compare a new version's predictions with the old version's "
        "(signal version:<new>:prediction)",
    )
    canary_window: int = Field(
        default=300,
        ge=20,
        le=100_000,
        description="new-version predictions per canary test window",
    )
    # 300 / 50: the quickest of the windows tried on benchmarks/detector_quality.py's
    # rollout (one class 10% -> 20%): median 300, p90 ~700 new-version predictions.
    canary_step: int = Field(
        default=50,
        ge=10,
        le=100_000,
        description="new-version predictions between canary tests; canary_window must be "
        "a multiple of it",
    )

    canary_max_window: int = Field(
        default=1200,
        ge=20,
        le=1_000_000,
        description="new-version predictions the canary's test window grows to before it "
        "slides (since the rollout: p90 delay 510 instead of 700 at 300 in "
        "benchmarks/detector_quality.py); a multiple of canary_step, at least canary_window",
    )

    @model_validator(mode="after")
    def _window_multiple_of_step(self) -> VersionSettings:
        for name in ("canary_window", "canary_max_window"):
            if getattr(self, name) % self.canary_step:
                raise ValueError(
                    f"{name} must be a multiple of canary_step ({self.canary_step}); "
                    f"got {getattr(self, name)}"
                )
        if self.canary_max_window < self.canary_window:
            raise ValueError(
                f"canary_max_window must be at least canary_window ({self.canary_window}); "
                f"got {self.canary_max_window}"
            )
        return self


class ModelSettings(Section):
    features: dict[str, FeatureSpec] = Field(
        default_factory=dict,
        description="feature name -> {type, min, max, redact}; "
        "features not named are inferred from the first events",
    )
    # Not strict: YAML gives a list, the model holds a frozenset.
    redact: Annotated[frozenset[str], Field(strict=False)] = Field(
        default=frozenset(),
        description='feature names whose values never leave vigil ("[redacted]")',
    )
    drift: DriftSettings = DriftSettings()
    calibration: CalibrationSettings = CalibrationSettings()
    regression: RegressionSettings = RegressionSettings()
    escalation: EscalationSettings = EscalationSettings()
    labels: LabelSettings = LabelSettings()
    review: ReviewSettings = ReviewSettings()
    segments: SegmentSettings = SegmentSettings()
    versions: VersionSettings = VersionSettings()
    reference: str | None = Field(
        default=None, min_length=1, description="reference profile from `vigil reference build`"
    )
    reference_by_version: dict[str, str] = Field(
        default_factory=dict,
        description="model_version -> reference profile of that version: its output drift "
        "(version:<v>:confidence or :value) compares with it, whatever versions.output_drift",
    )

    @field_validator("features", mode="before")
    @classmethod
    def _feature_names_as_text(cls, v: Any) -> Any:
        # YAML reads a feature named ``1`` or ``true`` as a number or a boolean.
        return {str(k): spec for k, spec in v.items()} if isinstance(v, Mapping) else v

    @cached_property
    def redacted(self) -> frozenset[str]:
        """Features whose values never leave vigil (``redact`` list plus per-feature flags);
        computed once per settings object (it is read per escalation)."""
        return self.redact | {n for n, f in self.features.items() if f.redact}


class Settings(Section):
    """The whole configuration. Built by :func:`streams.config.load_settings` (file plus
    environment) or :func:`streams.config.settings_from_dict` (a mapping only)."""

    app_id: str = Field(
        default="vigil", min_length=1, description="consumer group; names the checkpoint topic"
    )
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    worker: WorkerSettings = WorkerSettings()
    defaults: ModelSettings = Field(
        default=ModelSettings(), description="every model, unless overridden under models"
    )
    models: dict[str, ModelSettings] = Field(
        default_factory=dict,
        description="model id -> the keys of defaults, merged over them",
    )
    review: ReviewToolSettings = ReviewToolSettings()
    dataset: DatasetSettings = DatasetSettings()
    log_level: LogLevel = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _models_over_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        defaults = data.get("defaults") or {}
        models = data.get("models")
        if isinstance(defaults, Mapping) and isinstance(models, Mapping):
            data["models"] = {str(name): merge_model(defaults, own) for name, own in models.items()}
        return data

    @property
    def checkpoint_topic(self) -> str:
        """The compacted topic of this app's model checkpoints."""
        return self.topics.checkpoints or f"{self.app_id}.checkpoints"

    def for_model(self, model_id: str) -> ModelSettings:
        return self.models.get(model_id, self.defaults)


def merge_model(defaults: Mapping[str, Any], own: Any) -> Any:
    """A model's section deep-merged over ``defaults`` (the raw mappings).

    Redaction only accumulates: a model's own ``redact`` list adds to the defaults' (a
    deep merge would replace the list and silently un-redact those features).
    """
    if own is None:
        own = {}
    if not isinstance(own, Mapping):
        return own  # validation reports it as not a mapping
    merged = deep_merge(defaults, own)
    names = list | tuple | set | frozenset
    if isinstance(defaults.get("redact"), names) and isinstance(own.get("redact"), names):
        merged["redact"] = [*defaults["redact"], *own["redact"]]
    return merged


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``, mapping by mapping."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
