"""vigil's configuration: one YAML file plus ``VIGIL_*`` environment variables (SPEC §8).

Every setting is declared once, in :mod:`streams.config.settings`, with its type,
default, bounds and help; ``vigil config check --print-defaults`` prints them all.

Environment wins over the file. Any key can be set as ``VIGIL_<SECTION>__<KEY>``
(double underscore between levels, value parsed as YAML unless the setting is text),
e.g. ``VIGIL_WORKER__METRICS_PORT=9200``. Common ones have short aliases, declared on
the settings:

=================================  =============================
``KAFKA_BOOTSTRAP_SERVERS``        ``kafka.bootstrap``
``VIGIL_KAFKA_BOOTSTRAP``          ``kafka.bootstrap``
``VIGIL_KAFKA_SECURITY_PROTOCOL``  ``kafka.security_protocol``
``VIGIL_KAFKA_SASL_MECHANISM``     ``kafka.sasl_mechanism``
``VIGIL_KAFKA_SASL_USERNAME``      ``kafka.sasl_username``
``VIGIL_KAFKA_SASL_PASSWORD``      ``kafka.sasl_password``
``VIGIL_KAFKA_SSL_CAFILE``         ``kafka.ssl_cafile``
``VIGIL_METRICS_PORT``             ``worker.metrics_port``
``VIGIL_INSTANCE_ID``              ``worker.instance_id``
=================================  =============================

Per-model sections under ``models`` are deep-merged over ``defaults``; models
not named use ``defaults`` with feature types inferred from their first events.
The SASL password is a pydantic ``SecretStr``: its ``repr`` and ``str`` never show it.

Modules: ``settings`` (the declarations), ``loading`` (file, environment, validation),
``problems`` (error messages with key paths), ``template`` (the annotated defaults).
"""

from __future__ import annotations

from streams.config.loading import apply_env, load_settings, read_config_file, settings_from_dict
from streams.config.settings import (
    CalibrationSettings,
    DriftSettings,
    EscalationSettings,
    FeatureSpec,
    KafkaSettings,
    LabelSettings,
    ModelSettings,
    ReviewSettings,
    SegmentSettings,
    Settings,
    TopicSettings,
    WorkerSettings,
)

__all__ = [
    "CalibrationSettings",
    "DriftSettings",
    "EscalationSettings",
    "FeatureSpec",
    "KafkaSettings",
    "LabelSettings",
    "ModelSettings",
    "ReviewSettings",
    "SegmentSettings",
    "Settings",
    "TopicSettings",
    "WorkerSettings",
    "apply_env",
    "load_settings",
    "read_config_file",
    "settings_from_dict",
]
