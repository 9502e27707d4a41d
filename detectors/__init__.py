"""Pure online statistics for monitoring ML models.

Nothing here imports Kafka, Faust or Prometheus: every class can be used in a
notebook, fed one observation at a time, snapshotted to plain picklable state
and restored. Values may be Python numbers or numpy scalars (``np.float32``,
``np.int64``, ``np.bool_``); NaN, infinities and other types are refused with an
:class:`InvalidObservationError` that names the input.

>>> import detectors
>>> est = detectors.PerformanceEstimator(window=100)
>>> est.update(0.9)
[]

The public classes are imported on first use (PEP 562), so ``import detectors``
(or ``import detectors.base``) does not import numpy, scipy or River for a class
that does not need them.
"""

from __future__ import annotations

import importlib
import typing

# `typing` by module: its names bound here would read as this package's API.
if typing.TYPE_CHECKING:
    from detectors.adjudication import Adjudicator
    from detectors.agreement import AgreementMonitor
    from detectors.audit import AuditSampler
    from detectors.autoaccept import AutoAcceptMonitor
    from detectors.base import BivariateDetector, Detector, UnivariateDetector
    from detectors.budget import EscalationBudget
    from detectors.calibration import CalibrationMonitor
    from detectors.canary import VersionCanary
    from detectors.categorical_drift import CategoricalDrift
    from detectors.classwise_calibration import ClasswiseCalibrationMonitor
    from detectors.conformal import ConformalEscalation
    from detectors.data_quality import DataQualityDrift
    from detectors.drift_monitor import DriftMonitor
    from detectors.errors import (
        DetectorError,
        InvalidObservationError,
        SettingsError,
        SnapshotError,
    )
    from detectors.escalation import ThresholdEscalation
    from detectors.escalation_policy import EscalationPolicy
    from detectors.heavy_hitters import HeavyHitters
    from detectors.model_monitor import ModelMonitor, Verdict
    from detectors.numeric_drift import NumericDrift
    from detectors.performance import PerformanceEstimator
    from detectors.prediction import ClassPrediction, Prediction, RegressionPrediction
    from detectors.reconstruction import ReconstructionDrift
    from detectors.reference import ReferenceBuilder, ReferenceProfile
    from detectors.regression_quality import RegressionQualityMonitor
    from detectors.reviewer_reliability import ReviewerReliability
    from detectors.segments import SegmentMonitor
    from detectors.sensitivity import SensitivityBudget, default_step
    from detectors.signals import SignalChange, SignalState

__all__ = [
    "Adjudicator",
    "AgreementMonitor",
    "AuditSampler",
    "AutoAcceptMonitor",
    "BivariateDetector",
    "CalibrationMonitor",
    "CategoricalDrift",
    "ClassPrediction",
    "ClasswiseCalibrationMonitor",
    "ConformalEscalation",
    "DataQualityDrift",
    "Detector",
    "DetectorError",
    "DriftMonitor",
    "EscalationBudget",
    "EscalationPolicy",
    "HeavyHitters",
    "InvalidObservationError",
    "ModelMonitor",
    "NumericDrift",
    "PerformanceEstimator",
    "Prediction",
    "ReconstructionDrift",
    "ReferenceBuilder",
    "ReferenceProfile",
    "RegressionPrediction",
    "RegressionQualityMonitor",
    "ReviewerReliability",
    "SegmentMonitor",
    "SensitivityBudget",
    "SettingsError",
    "SignalChange",
    "SignalState",
    "SnapshotError",
    "ThresholdEscalation",
    "UnivariateDetector",
    "Verdict",
    "VersionCanary",
    "default_step",
]

# Each exported name's module (under ``detectors.``).
_HOME = {
    "Adjudicator": "adjudication",
    "AgreementMonitor": "agreement",
    "AuditSampler": "audit",
    "AutoAcceptMonitor": "autoaccept",
    "BivariateDetector": "base",
    "CalibrationMonitor": "calibration",
    "CategoricalDrift": "categorical_drift",
    "ClassPrediction": "prediction",
    "ClasswiseCalibrationMonitor": "classwise_calibration",
    "ConformalEscalation": "conformal",
    "DataQualityDrift": "data_quality",
    "Detector": "base",
    "DetectorError": "errors",
    "DriftMonitor": "drift_monitor",
    "EscalationBudget": "budget",
    "EscalationPolicy": "escalation_policy",
    "HeavyHitters": "heavy_hitters",
    "InvalidObservationError": "errors",
    "ModelMonitor": "model_monitor",
    "NumericDrift": "numeric_drift",
    "PerformanceEstimator": "performance",
    "Prediction": "prediction",
    "ReconstructionDrift": "reconstruction",
    "ReferenceBuilder": "reference",
    "ReferenceProfile": "reference",
    "RegressionPrediction": "prediction",
    "RegressionQualityMonitor": "regression_quality",
    "ReviewerReliability": "reviewer_reliability",
    "SegmentMonitor": "segments",
    "SensitivityBudget": "sensitivity",
    "default_step": "sensitivity",
    "SettingsError": "errors",
    "SignalChange": "signals",
    "SignalState": "signals",
    "SnapshotError": "errors",
    "ThresholdEscalation": "escalation",
    "UnivariateDetector": "base",
    "Verdict": "model_monitor",
    "VersionCanary": "canary",
}


def __getattr__(name: str) -> typing.Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
