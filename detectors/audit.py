"""Audit sampling: a random share of auto-accepted traffic goes to review too.

When labels come only from reviewers, they cover the escalated items, which
are the uncertain ones: nothing is known about what was auto-accepted. The
audit sample fixes that. Each event the policy would auto-accept is escalated
with probability ``p`` (reason ``audit``), and ``p`` travels with the
escalation as its *inclusion probability*, so every estimator can weigh the
item's label by ``1 / p`` (Horvitz-Thompson) and estimate the quality of all
traffic, auto-accepted included, without bias.

**The draw** is a deterministic function of ``(model_id, event_id, seed)``:
``u`` in [0, 1) from a CRC-32 of the event id seeded by the model id and the
seed, scrambled by a multiplicative hash; the event is audited when
``u < p``. A replay or a redelivery of the same event with the same ``p``
makes the same draw, so a restart neither audits an event twice nor loses one.
Unbiasedness assumes ``u`` is independent of whether the model is right,
which holds unless event ids are chosen knowing the seed (the hash is fast,
not cryptographic).

**The cap** ``per_minute`` bounds the reviewers' audit load without biasing the
sample: ``p`` is lowered to ``per_minute / expected offered events per minute``
(forecast by :class:`~detectors.minute_rate.MinuteRate`) *before* the draw and
the lowered ``p`` is what is recorded. Items are never dropped after the draw
(dropping the ones that come late in a busy minute would under-sample busy
periods without saying so). So the *expected* number of audits per minute
stays at or under the cap; a burst beyond the forecast can exceed it within
its minute.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from detectors.base import Detector, check_in_range, check_positive
from detectors.budget import check_aware
from detectors.errors import InvalidObservationError, SettingsError
from detectors.minute_rate import MinuteRate

__all__ = ["AuditSampler", "audit_draw", "reviews_wanted"]

_SCRAMBLE = 0x9E3779B1  # odd: a bijection of 32-bit values that moves low bits to high ones
_MASK = 0xFFFFFFFF
_SCALE = 4294967296.0  # 2**32
_crc32 = zlib.crc32


def _prefix(model_id: str, seed: int) -> int:
    return zlib.crc32(f"{model_id}\0{seed}\0".encode())


def audit_draw(model_id: str, event_id: str, seed: int = 0) -> float:
    """The audit draw ``u`` in [0, 1) of one event: audited when ``u < p``.

    >>> audit_draw("fraud", "e-1") == audit_draw("fraud", "e-1")
    True
    >>> round(audit_draw("fraud", "e-1"), 4), round(audit_draw("fraud", "e-1", seed=7), 4)
    (0.4084, 0.3027)
    """
    h = _crc32(event_id.encode(), _prefix(model_id, seed))
    return ((h * _SCRAMBLE) & _MASK) / _SCALE


def reviews_wanted(
    model_id: str, event_id: str, *, overlap_rate: float, overlap_reviews: int, seed: int = 0
) -> int:
    """How many independent reviews an escalated event asks for: ``overlap_reviews`` for
    the overlap sample (a deterministic draw below ``overlap_rate``), else 1.

    The overlap draw is :func:`audit_draw` of a salted event id, so it is as
    deterministic as the audit draw and does not select the same events.

    >>> [reviews_wanted("m", f"e{i}", overlap_rate=0.5, overlap_reviews=3) for i in range(6)]
    [3, 1, 1, 1, 3, 1]
    >>> reviews_wanted("m", "e0", overlap_rate=0.0, overlap_reviews=3)
    1
    """
    if not 0.0 <= overlap_rate <= 1.0:
        raise SettingsError(f"overlap_rate must be in [0, 1]; got {overlap_rate!r}")
    if overlap_reviews < 2:
        raise SettingsError(f"overlap_reviews must be >= 2; got {overlap_reviews!r}")
    if overlap_rate == 0.0:
        return 1
    drawn = audit_draw(model_id, "\0overlap\0" + event_id, seed)
    return overlap_reviews if drawn < overlap_rate else 1


class AuditSampler(Detector):
    """Send a deterministic random share of auto-accepted events to review.

    Parameters
    ----------
    rate
        Probability that an auto-accepted event is audited (``review.audit_rate``).
    per_minute
        Audits expected per minute at most (``review.audit_per_minute``);
        ``None``: no cap. The probability is lowered to meet it and recorded.
    seed
        Varies which events are drawn; the same seed makes the same draws.
    smoothing
        Weight of the last minute in the forecast of offered events per minute.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> sampler = AuditSampler(rate=0.02)
    >>> probs = [sampler.update("fraud", f"e-{i}", t0) for i in range(10_000)]
    >>> sum(p > 0 for p in probs), max(probs)
    (203, 0.02)

    Capped at 30 a minute while 100 events a second are offered, the recorded
    probability drops to about 30 / 6000 = 0.005 and the audits follow it:

    >>> capped = AuditSampler(rate=0.02, per_minute=30)
    >>> times = [t0 + timedelta(seconds=i / 100) for i in range(60_000)]  # ten minutes
    >>> probs = [capped.update("fraud", f"e-{i}", t) for i, t in enumerate(times)]
    >>> round(capped.probability, 4), round(sum(p > 0 for p in probs[6000:]) / 9, 1)
    (0.005, 29.0)
    """

    _settings = ("rate", "per_minute", "seed", "smoothing")

    def __init__(
        self,
        rate: float = 0.02,
        per_minute: int | None = None,
        seed: int = 0,
        smoothing: float = 0.3,
    ) -> None:
        self.rate = rate
        self.per_minute = per_minute
        self.seed = seed
        self.smoothing = smoothing
        check_in_range("rate", rate, 0.0, 1.0)
        if per_minute is not None:
            check_positive("per_minute", per_minute, integer=True)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SettingsError(f"'seed' must be an integer; got {seed!r}")
        check_in_range("smoothing", smoothing, 0.0, 1.0)
        check_positive("smoothing", smoothing)
        self._model: str | None = None  # the model id _model_prefix belongs to (a cache)
        self._model_prefix = 0
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"rate": 0.1}
        yield {"rate": 0.5, "per_minute": 20, "seed": 3, "smoothing": 1.0}

    def _reset(self) -> None:
        self._pace = MinuteRate(self.smoothing)
        self._p = float(self.rate)
        # Audited when the scrambled hash (32 bits) is under the cut: u < p exactly.
        self._cut = math.ceil(self._p * _SCALE)
        self._audited = 0

    def _state(self) -> dict[str, Any]:
        return {"pace": self._pace.state(), "p": self._p, "audited": self._audited}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._pace.load(state["pace"])
        self._p = float(state["p"])
        self._cut = math.ceil(self._p * _SCALE)
        self._audited = int(state["audited"])

    def update(self, model_id: str, event_id: str, now: datetime) -> float:
        """Offer one auto-accepted event: its inclusion probability if audited, else 0.0."""
        if type(event_id) is not str or type(model_id) is not str:
            raise InvalidObservationError(
                f"model_id and event_id must be strings; got {model_id!r}, {event_id!r}"
            )
        if type(now) is not datetime or now.tzinfo is not UTC:  # else certainly aware
            check_aware("now", now)
        return self._draw(model_id, event_id, now)

    def _draw(self, model_id: str, event_id: str, now: datetime) -> float:
        """:meth:`update` for inputs already checked (ModelMonitor checks its own, per event).

        The draw is compared in integers against a cut fixed when the probability changes.
        """
        cap = self.per_minute
        if cap is not None:
            pace = self._pace
            pace.advance(now.timestamp() / 60.0)
            pace.count += 1
            expected = pace.per_minute()
            p = self.rate
            if expected is not None and expected * p > cap:
                p = cap / expected
            if p != self._p:
                self._p = p
                self._cut = math.ceil(p * _SCALE)
        if model_id != self._model:
            self._model = model_id
            self._model_prefix = _prefix(model_id, self.seed)
        if (_crc32(event_id.encode(), self._model_prefix) * _SCRAMBLE) & _MASK < self._cut:
            self._audited += 1
            return self._p
        return 0.0

    @property
    def probability(self) -> float:
        """The audit probability in force (``rate``, or lower under the cap)."""
        return self._p

    @property
    def audited(self) -> int:
        """Events audited since the start."""
        return self._audited
