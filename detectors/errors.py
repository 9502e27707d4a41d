"""Exceptions raised by :mod:`detectors`.

::

    DetectorError                 root of everything raised on purpose here
    ├── SettingsError (ValueError)       a constructor argument breaks its rule
    ├── InvalidObservationError (ValueError)   an ``update`` input is not finite / wrong type
    └── SnapshotError (ValueError)       a snapshot cannot be restored
"""

from __future__ import annotations


class DetectorError(Exception):
    """Root of the exceptions raised on purpose by :mod:`detectors`."""


class SettingsError(DetectorError, ValueError):
    """A setting is outside its valid range; the message names it and the rule."""


class InvalidObservationError(DetectorError, ValueError):
    """An observation is not finite or has the wrong type."""


class SnapshotError(DetectorError, ValueError):
    """A snapshot is malformed or belongs to another class or version."""
