"""``vigil demo``: broker, worker and synthetic traffic on this machine, in one command.

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts the local jar broker;
runs one worker process and synthetic traffic for three models (one drifts
after a while, another's features change how they move together, some events are
malformed); prints the metrics URL, the path of the
log file and a live summary per model (:mod:`streams.dev.summary`). When the
``prometheus`` binary is on PATH it also starts a throwaway Prometheus that scrapes
the worker and evaluates vigil's rules (:class:`LocalPrometheus`).

Labels come back as in the deployment vigil is built for (:mod:`streams.dev.label_sources`):
a review team reads the escalations topic and labels only what vigil escalated (the
uncertain items and, for ``fraud-detector`` and ``support-router``, a random audit of the
auto-accepted ones); for ``churn`` an outcome system also reports on a random share of
all its events, in place of the audit. The reviewers err at known rates, one of them
carelessly; the worker asks for overlapping reviews of some escalations and mixes in
gold questions from files the demo writes next to its log (:func:`write_gold`), so the
"review quality" dashboard has reviewer scores, agreement and adjudications. The demo
knows every event's truth (:mod:`streams.dev.ground_truth`), so the summary shows the
true accuracy and auto-accept error next to vigil's weighted estimates of them. The
worker's configuration is the user's plus the demo's review settings
(:func:`worker_config`).

The worker's output and the Kafka clients' logs go to the log file, not the screen.
Ctrl-C, SIGINT, SIGTERM, SIGHUP (or ``--duration``) stop everything, leaving no process
behind; children also die with the demo when it is killed outright
(:mod:`streams.dev.children`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from streams.client import InferencePublisher
from streams.config import Settings
from streams.config.settings import deep_merge
from streams.dev import children
from streams.dev.demo_review import HUMAN_REVIEWED_MODEL, Review, start_review
from streams.dev.gold_questions import GoldAnswers, gold_items, write_gold_file
from streams.dev.ground_truth import GroundTruth, ModelTally
from streams.dev.label_sources import (
    REVIEWERS,
    LabelQueue,
    OutcomeSource,
    ReviewerTally,
    ReviewTeam,
    by_rule,
)
from streams.dev.local_broker import free_port
from streams.dev.scrape import Samples, scrape, total
from streams.dev.summary import LEGEND, SummaryScreen, model_rows, render_table, reviewer_rows
from streams.dev.traffic import (
    INVALID_KINDS,
    CorrelationSchedule,
    DriftSchedule,
    Rollout,
    SyntheticModel,
    invalid_event,
)
from streams.errors import LocalPrometheusError, VigilError

__all__ = ["LocalPrometheus", "LocalPrometheusError", "run_demo", "worker_config"]

INVALID_SHARE = 0.03
#: The model that has an outcome system besides the review team (and no audit).
OUTCOME_MODEL = "churn"
#: Share of OUTCOME_MODEL's events the outcome system labels (its ``labels.outcome_rate``).
OUTCOME_SHARE = 0.3
LABEL_DELAY_S = (2.0, 8.0)
#: ``review.audit_rate`` of the reviewed models: at the default rate (~75 auto-accepted
#: events/s per model) a few audits a second, so they show in the first minute.
AUDIT_RATE = 0.05
#: ``escalation.max_autoaccept_error``: the demo's threshold policy (escalate below 0.6
#: confidence) auto-accepts items its synthetic models get wrong 15-29 % of the time
#: (measured over 20,000 events each). Against the default bar (target_error, 5 %) the
#: autoaccept_error signal would be on for every model all along and hide churn's drift.
MAX_AUTOACCEPT_ERROR = 0.35
#: ``review.gold_rate``: gold items per escalation sent. Far above a production rate (a
#: few %) so that every reviewer has a gold accuracy on the dashboard within minutes.
GOLD_RATE = 0.1
#: ``review.overlap_rate`` and ``review.overlap_reviews``: a fifth of the escalations ask
#: for three reviews, enough overlap for agreement and adjudication within minutes.
OVERLAP_RATE = 0.2
OVERLAP_REVIEWS = 3
#: ``review.adjudication_timeout_s``: the synthetic reviewers answer within LABEL_DELAY_S,
#: so an event short of its reviews a minute after its first label will not get them (a
#: person in Label Studio labels an overlapped task once): decide it then, not in an hour.
ADJUDICATION_TIMEOUT_S = 60.0
#: Seed of the gold items' draws (each model's twin; not the traffic's).
GOLD_SEED = 1000
#: The bridge's count of annotations published as LabelEvents (shown once it exists).
ANNOTATIONS_METRIC = "vigil_review_bridge_annotations_published_total"
#: Seconds between two summaries.
REPORT_EVERY_S = 2.0

#: deploy/prometheus of the source tree (as in a git checkout installed with ``pip -e``).
PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def demo_models(rate: float) -> list[SyntheticModel]:
    """Three models; ``churn`` drifts on x1 after ~60 s of traffic and recovers ~60 s later;
    ``fraud-detector``'s x2 shifts in region ``eu`` only from ~90 s to ~150 s (a
    segment-only shift: ``segment:region=eu:feature:x2``);
    ``support-router`` rolls out version 2.0.0 to 30 % of its traffic after ~90 s, a
    version that predicts ``pos`` more often (its canary, ``version:2.0.0:prediction``,
    fires); ``fraud-detector``'s x0 and x1 (correlated +0.8) flip to -0.8 after ~180 s,
    once its segment shift is over, every feature's distribution unchanged: no
    ``feature:`` signal fires, ``multivariate`` does (and ``confidence``: the model's
    scores depend on both features)."""
    per_model = max(1, int(rate / 3))
    now = datetime.now(UTC)
    return [
        SyntheticModel(
            "fraud-detector",
            n_numeric=6,
            n_categorical=1,
            seed=1,
            start=now,
            drift=[
                DriftSchedule(
                    "x2",
                    start=90 * per_model,
                    end=150 * per_model,
                    shift=2.0,
                    segment=("region", "eu"),
                )
            ],
            correlation=CorrelationSchedule("x0", "x1", start=180 * per_model),
        ),
        SyntheticModel(
            "churn",
            n_numeric=4,
            n_categorical=1,
            seed=2,
            start=now,
            drift=[DriftSchedule("x1", start=60 * per_model, end=120 * per_model, shift=2.0)],
        ),
        SyntheticModel(
            "support-router",
            n_numeric=3,
            n_categorical=2,
            seed=3,
            start=now,
            rollout=Rollout("2.0.0", start=90 * per_model, share=0.3, bias=0.5),
        ),
    ]


def write_gold(models: Iterable[SyntheticModel], directory: Path) -> dict[str, Path]:
    """A gold file per model in ``directory`` (``gold-<model>.jsonl``, items with known
    truth from :func:`~streams.dev.gold_questions.gold_items`); model id -> its path."""
    return {
        model.model_id: write_gold_file(
            directory / f"gold-{model.model_id}.jsonl",
            gold_items(model, seed=GOLD_SEED + model.seed),
        )
        for model in models
    }


def worker_config(
    settings: Settings, models: Collection[str], gold: Mapping[str, Path] | None = None
) -> dict[str, Any]:
    """The worker's configuration: the demo's review and label settings for ``models``
    under what the user set (the user's keys win), without secrets.

    The reviewed models ask for overlapping reviews (``OVERLAP_RATE`` at
    ``OVERLAP_REVIEWS``) and, those in ``gold`` (model id -> its gold file), mix in gold
    questions at ``GOLD_RATE``: the review team's quality shows within minutes.

    The models audit ``AUDIT_RATE`` of their auto-accepted events, but OUTCOME_MODEL: its
    outcome system labels a random share of all its events (``labels.outcome_rate`` set
    to that share), so an audit would add nothing, and its labels for audited events
    would be weighed by the audit probability (vigil's record wins over a label's own).
    Every escalation is reviewed, which keeps the weights of the escalated events right
    (1) when the outcome system labels some of them too.
    The SASL password and the Label Studio token and webhook secret are left out: the
    processes that need them read them from their environment.
    """
    demo: dict[str, Any] = {
        "defaults": {
            "review": {
                "audit_rate": AUDIT_RATE,
                "overlap_rate": OVERLAP_RATE,
                "overlap_reviews": OVERLAP_REVIEWS,
                "adjudication_timeout_s": ADJUDICATION_TIMEOUT_S,
            },
            "escalation": {"max_autoaccept_error": MAX_AUTOACCEPT_ERROR},
            # Per region: the demo's segment-only shift (fraud-detector's x2 in eu).
            "segments": {"keys": ["region"], "top_k": 5, "features": ["x0", "x1", "x2"]},
        },
    }
    per_model: dict[str, Any] = {}
    for model, path in (gold or {}).items():
        if model in models:
            per_model[model] = {"review": {"gold": str(path), "gold_rate": GOLD_RATE}}
    if OUTCOME_MODEL in models:
        per_model = deep_merge(
            per_model,
            {
                OUTCOME_MODEL: {
                    "labels": {"outcome_rate": OUTCOME_SHARE},
                    "review": {"audit_rate": 0},
                }
            },
        )
    if per_model:
        demo["models"] = per_model
    user = settings.model_dump(mode="json", exclude_unset=True)
    user.get("kafka", {}).pop("sasl_password", None)
    label_studio = user.get("review", {}).get("label_studio", {})
    for secret in ("token", "webhook_secret"):
        label_studio.pop(secret, None)
    return deep_merge(demo, user)


def synthetic_reviewed(models: Collection[str], *, review: bool) -> set[str]:
    """The models the synthetic review team labels: all, but with ``--review`` the one a
    person reviews in Label Studio (:data:`HUMAN_REVIEWED_MODEL`).

    >>> sorted(synthetic_reviewed(["churn", "fraud-detector"], review=True))
    ['churn']
    """
    return {m for m in models if not (review and m == HUMAN_REVIEWED_MODEL)}


class LocalPrometheus:
    """A throwaway Prometheus on 127.0.0.1 scraping one local worker with vigil's rules.

    The config is ``deploy/prometheus/local.yml.template`` rendered for the worker's
    metrics port, the review bridge's (``review_metrics_port``, job ``vigil-review``; none
    scraped if ``None``) and ``rules_dir``; storage, config and log live in a fresh
    temporary directory (under ``workdir`` if given) that :meth:`stop` removes.
    """

    def __init__(
        self,
        metrics_port: int,
        *,
        review_metrics_port: int | None = None,
        rules_dir: Path = PROMETHEUS_DIR / "rules",
        template: Path = PROMETHEUS_DIR / "local.yml.template",
        binary: str = "prometheus",
        workdir: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.metrics_port = metrics_port
        self.review_metrics_port = review_metrics_port
        self.rules_dir = Path(rules_dir)
        self.template = Path(template)
        self.binary = binary
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def missing(self) -> str | None:
        """Why this Prometheus cannot start here, or None if it can."""
        if shutil.which(self.binary) is None:
            return f"{self.binary!r} not on PATH (Debian/Ubuntu: apt-get install prometheus)"
        for path in (self.template, self.rules_dir):
            if not path.exists():
                return f"{path} not found: needs vigil's source tree (deploy/prometheus/)"
        return None

    @property
    def url(self) -> str:
        if self.port is None:
            raise LocalPrometheusError("Prometheus has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        if self._dir is None:
            raise LocalPrometheusError("Prometheus has not been started")
        return self._dir / "prometheus.yml"

    @property
    def log_path(self) -> Path:
        if self._dir is None:
            raise LocalPrometheusError("Prometheus has not been started")
        return self._dir / "prometheus.log"

    def render_config(self) -> str:
        review = self.review_metrics_port
        return self.template.read_text(encoding="utf-8").format(
            metrics_port=self.metrics_port,
            rules_dir=self.rules_dir.resolve(),
            review_targets="" if review is None else f'"127.0.0.1:{review}"',
        )

    def start(self) -> LocalPrometheus:
        problem = self.missing()
        if problem:
            raise LocalPrometheusError(problem)
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="vigil-prometheus-", dir=self.workdir))
        self.config_path.write_text(self.render_config(), encoding="utf-8")
        self.port = free_port()
        with self.log_path.open("ab") as log:
            self._proc = children.spawn(
                [
                    self.binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self._dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None  # noqa: S101 - set by start(); narrows the type
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LocalPrometheusError(
                    f"prometheus exited with code {self._proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1.0) as resp:  # noqa: S310 - our http URL
                    if resp.status == 200:
                        return
            except OSError:  # refused, or 503 while starting (HTTPError)
                pass
            time.sleep(0.2)
        raise LocalPrometheusError(
            f"prometheus not ready within {self.start_timeout:g} s:\n{self.log_tail()}"
        )

    def page(self, name: str) -> str:
        """URL of a web UI page such as ``alerts``: the React UI's, or the classic UI's
        when the build has no React assets (Debian's package ships only ``/classic``)."""
        for path in (f"/{name}", f"/classic/{name}"):
            try:
                with urllib.request.urlopen(f"{self.url}{path}", timeout=2.0) as resp:  # noqa: S310 - our http URL
                    if resp.status == 200:
                        return f"{self.url}{path}"
            except OSError:
                continue
        return self.url

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except (OSError, LocalPrometheusError):
            return "(no log)"
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        """Stop Prometheus (SIGTERM, then SIGKILL) and remove its directory."""
        proc, self._proc = self._proc, None
        if proc is not None:
            children.stop(proc, grace=10.0)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def run_demo(
    settings: Settings,
    *,
    duration: float | None = None,
    rate: float = 300.0,
    traffic_only: bool = False,
    review: bool = False,
) -> int:
    """Run the demo until ``duration`` seconds have passed or a stop signal; returns 0.

    ``review``: also Label Studio and the review bridge (:mod:`streams.dev.demo_review`).
    Raises :class:`~streams.dev.label_studio.LabelStudioMissingError` before anything
    starts when Label Studio is needed and not installed.
    """
    if review and traffic_only:
        raise VigilError("--review needs the demo's worker: drop --traffic-only")
    if review and settings.review.label_studio.token is None:
        from streams.dev.label_studio import label_studio_executable

        label_studio_executable()  # `make label-studio` not run: say so now
    # Installed first, so that a signal while the broker or Prometheus starts (seconds)
    # stops what has started too; SIGTERM and SIGHUP take Ctrl-C's path.
    with children.stop_signals():
        return _run(settings, duration, rate, traffic_only, review)


def _run(
    settings: Settings, duration: float | None, rate: float, traffic_only: bool, review: bool
) -> int:
    broker = None
    worker: subprocess.Popen[bytes] | None = None
    prometheus: LocalPrometheus | None = None
    reviewing: Review | None = None
    bootstrap = settings.kafka.bootstrap
    log_path = Path(tempfile.mkdtemp(prefix="vigil-demo-")) / "demo.log"
    what = "worker and review bridge output" if review else "worker output"
    _say(f"log:        {log_path}  ({what}, Kafka client logs)")
    try:
        with _logging_to(log_path, settings.log_level), log_path.open("ab") as log:
            if not traffic_only and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
                from streams.dev.local_broker import LocalBroker

                _say("starting the local Kafka broker (first run resolves jars with Maven) ...")
                broker = LocalBroker().start()
                bootstrap = broker.bootstrap
            kafka = settings.kafka.model_copy(update={"bootstrap": bootstrap})
            settings = settings.model_copy(update={"kafka": kafka})
            from streams.kafka.topics import create_topics

            create_topics(settings)
            metrics_url = None
            if not traffic_only:
                port = free_port()
                env = dict(
                    os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, VIGIL_METRICS_PORT=str(port)
                )
                env.setdefault("VIGIL_WORKER__METRICS_HOST", "127.0.0.1")
                password = settings.kafka.sasl_password
                if password is not None:
                    # Not in the config file: the child's environment is private to it.
                    env.setdefault("VIGIL_KAFKA_SASL_PASSWORD", password.get_secret_value())
                config_path = log_path.with_name("worker.yaml")
                models = demo_models(rate)
                gold = write_gold(models, log_path.parent)
                config = worker_config(settings, [m.model_id for m in models], gold)
                config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
                worker = children.spawn(
                    [sys.executable, "-m", "streams.cli", "worker", "--config", str(config_path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
                metrics_url = f"http://127.0.0.1:{port}/metrics"
                if review:
                    reviewing = start_review(settings, config, log_path.parent, log, env)
                prometheus = LocalPrometheus(
                    port,
                    review_metrics_port=reviewing.bridge_metrics_port if reviewing else None,
                )
                prometheus_line = _start_prometheus(prometheus)
                _say(f"kafka:      {bootstrap}")
                _say(f"metrics:    {metrics_url}")
                _say(f"prometheus: {prometheus_line}")
                _say(f"config:     {config_path}  (the worker's: yours and the demo's)")
            _say(
                f"labels:     {len(REVIEWERS)} reviewers label the escalations only (uncertain "
                "items, audits,\n"
                f"            gold questions; {OVERLAP_RATE:.0%} of them {OVERLAP_REVIEWS} times), "
                f"wrong {_error_rates()}\n"
                f"            an outcome system labels {OUTCOME_SHARE:.0%} of {OUTCOME_MODEL}'s "
                "events (no audit for it)"
            )
            if reviewing is not None:
                _say(reviewing.banner())
            _say(f"{LEGEND}\n")
            if not traffic_only:
                _say("Ctrl-C stops everything.\n")
            _traffic(
                settings, bootstrap, rate, duration, metrics_url, worker, log_path, reviewing, gold
            )
        return 0
    except KeyboardInterrupt:
        _say("\nstopping ...")
        return 0
    finally:
        if reviewing is not None:
            reviewing.stop()
        if worker is not None:
            children.stop(worker, grace=15.0)
        if prometheus is not None:
            prometheus.stop()
        if broker is not None:
            broker.stop()
        _say(f"stopped cleanly. Log: {log_path}")


def _error_rates() -> str:
    """The team's error rates, e.g. ``3-15 % of the time, careless-carl 45 %``."""
    rates = sorted(REVIEWERS, key=lambda r: r.error_rate)
    careful, careless = rates[:-1], rates[-1]
    return (
        f"{careful[0].error_rate:.0%}-{careful[-1].error_rate:.0%} of the time, "
        f"{careless.name} {careless.error_rate:.0%}"
    )


def _say(line: str) -> None:
    # After SIGHUP the terminal may be gone (EIO): stopping the children matters more.
    with contextlib.suppress(OSError):
        print(line, flush=True)


@contextlib.contextmanager
def _logging_to(path: Path, level: str) -> Iterator[None]:
    """Send this process's log records (the Kafka clients' among them) to ``path`` only."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()


def _start_prometheus(prometheus: LocalPrometheus) -> str:
    """Start ``prometheus``; the line to print: its alerts page, or why it is not running."""
    problem = prometheus.missing()
    if problem:
        return f"not started ({problem})"
    try:
        prometheus.start()
    except LocalPrometheusError as exc:
        # The demo is still useful without it: say why and carry on.
        return f"not started ({exc})"
    return f"{prometheus.page('alerts')} (targets: {prometheus.page('targets')})"


def _traffic(
    settings: Settings,
    bootstrap: str,
    rate: float,
    duration: float | None,
    metrics_url: str | None,
    worker: subprocess.Popen[bytes] | None,
    log_path: Path,
    reviewing: Review | None = None,
    gold: Mapping[str, Path] | None = None,
) -> None:
    rng = random.Random(42)  # noqa: S311 - seeded synthetic traffic, not a secret
    models = demo_models(rate)
    kafka_conf = {
        k: v for k, v in settings.kafka.confluent_config().items() if k != "bootstrap.servers"
    }
    truth = GroundTruth()
    queue = LabelQueue()
    outcomes = OutcomeSource({OUTCOME_MODEL}, share=OUTCOME_SHARE, delay_s=LABEL_DELAY_S, seed=43)
    reviewers = ReviewTeam(
        synthetic_reviewed([m.model_id for m in models], review=reviewing is not None),
        classes={m.model_id: m.classes for m in models},
        gold=GoldAnswers.read((gold or {}).values()),
        delay_s=LABEL_DELAY_S,
        seed=44,
    )
    started = time.monotonic()
    next_report = started + REPORT_EVERY_S
    sent = invalid = 0
    labels = {"human": 0, "outcome": 0, "gold": 0}
    screen = SummaryScreen(sys.stdout)
    reporter = _Reporter(metrics_url, screen)
    with (
        InferencePublisher(
            bootstrap,
            topic=settings.topics.inference,
            labels_topic=settings.topics.labels,
            kafka_config=kafka_conf,
        ) as pub,
        _EscalationFeed(settings) as escalations,
    ):
        while duration is None or time.monotonic() - started < duration:
            if worker is not None and worker.poll() is not None:
                raise VigilError(
                    f"the demo's worker exited with code {worker.returncode}; "
                    f"its output is in {log_path}"
                )
            if reviewing is not None and reviewing.bridge.poll() is not None:
                raise VigilError(
                    f"the demo's review bridge exited with code {reviewing.bridge.returncode}; "
                    f"its output is in {log_path}"
                )
            tick = time.monotonic()
            for _ in range(max(1, int(rate / 10))):
                model = rng.choice(models)
                if rng.random() < INVALID_SHARE:
                    kind = rng.choice(INVALID_KINDS)
                    raw, _reason = invalid_event(kind, model.model_id, sent)
                    pub.publish_raw(raw, key=model.model_id.encode())
                    invalid += 1
                else:
                    event, label = model.event()
                    pub.publish_raw(_dumps(event), key=model.model_id.encode())
                    known = truth.record(
                        model.model_id, event["event_id"], event["prediction"]["label"], label
                    )
                    queue.push(outcomes.observe(event, known, tick))
                sent += 1
            for escalation in escalations.poll():
                of_event = truth.escalated(
                    escalation["model_id"], escalation["event_id"], by_rule=by_rule(escalation)
                )
                queue.push(reviewers.review(escalation, of_event, tick))
            for pending in queue.due(tick):
                pub.publish_label(pending.label)
                if pending.gold:  # the reviewer's score, not the model's: not in its tally
                    labels["gold"] += 1
                    continue
                truth.labelled(pending.label["model_id"], pending.label["event_id"], pending.truth)
                labels[pending.label["source"]] += 1
            if tick >= next_report:
                next_report = tick + REPORT_EVERY_S
                head = (
                    f"[{tick - started:6.0f}s] sent {sent} (invalid {invalid}), labels: "
                    f"{labels['human']} by reviewers, {labels['outcome']} outcomes, "
                    f"{labels['gold']} on gold items"
                )
                if reviewing is not None:
                    head += f"; Label Studio: {_bridge_summary(reviewing.bridge_metrics_url)}"
                reporter.report(head, truth.tallies, reviewers.tallies)
            time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))


def _bridge_summary(url: str) -> str:
    """Tasks made and annotations published by the bridge, from its ``/metrics``."""
    try:
        samples = scrape(url, timeout=1.0)
    except OSError:
        return "bridge starting ..."
    line = f"{total(samples, 'vigil_review_bridge_tasks_created_total'):.0f} tasks"
    if ANNOTATIONS_METRIC in samples:
        line += f", {total(samples, ANNOTATIONS_METRIC):.0f} labelled"
    return line


def _dumps(event: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(event)


class _EscalationFeed:
    """The escalations topic, read from its end without a consumer group (nothing to
    commit, no rebalance to wait for); :meth:`poll` never blocks."""

    #: Escalations read per poll at most (the demo polls ten times a second).
    MAX_PER_POLL = 2000

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        from confluent_kafka import OFFSET_END, Consumer, TopicPartition

        self.topic = settings.topics.escalations
        self._consumer = Consumer(
            {
                **settings.kafka.confluent_config(),
                "group.id": "vigil-demo-review-team",  # required; never joined nor committed
                "enable.auto.commit": False,
                "logger": logging.getLogger("vigil.kafka.review_team"),
            }
        )
        try:
            meta = self._consumer.list_topics(self.topic, timeout=timeout).topics[self.topic]
            if meta.error is not None:
                raise VigilError(f"cannot read topic {self.topic!r}: {meta.error}")
            self._consumer.assign(
                [TopicPartition(self.topic, p, OFFSET_END) for p in sorted(meta.partitions)]
            )
        except BaseException:
            self._consumer.close()
            raise

    def __enter__(self) -> _EscalationFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self._consumer.close()

    def poll(self) -> list[dict[str, Any]]:
        """The escalations that arrived since the last call (unreadable ones skipped)."""
        import orjson

        out = []
        for msg in self._consumer.consume(self.MAX_PER_POLL, timeout=0):
            if msg.error() is not None:
                continue  # logged by the client; the demo carries on
            try:
                record = orjson.loads(msg.value() or b"")
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and {"model_id", "event_id", "escalation_id"} <= set(
                record
            ):
                out.append(record)
        return out


class _Reporter:
    """Scrapes the worker every report and shows the summary table on ``screen``."""

    def __init__(self, url: str | None, screen: SummaryScreen) -> None:
        self.url = url
        self.screen = screen
        self._before: tuple[float, Samples] | None = None

    def report(
        self,
        head: str,
        tallies: Mapping[str, ModelTally],
        reviewers: Mapping[str, ReviewerTally] | None = None,
    ) -> None:
        if self.url is None:
            self.screen.show(head)
            return
        try:
            now = scrape(self.url, timeout=1.0)
        except OSError:
            self.screen.show(f"{head} | worker starting ...")
            return
        at = time.monotonic()
        if self._before is None:
            rows = model_rows(now, tallies=tallies)
        else:
            rows = model_rows(now, self._before[1], at - self._before[0], tallies)
        self._before = (at, now)
        self.screen.show(render_table(head, rows, reviewer_rows(now, reviewers or {})))
