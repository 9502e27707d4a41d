"""A real single-node Apache Kafka from Maven-resolved jars, for machines without Docker.

SPEC section 11. ``deploy/local/pom.xml`` pins the broker; :func:`resolve_jars` has Maven copy
its runtime closure into a cache once; :class:`LocalBroker` renders
``deploy/local/server.properties.template`` with free ports and a fresh data directory,
formats the KRaft storage, runs ``kafka.Kafka`` as a child JVM in its own process group (one
that dies with this process, :mod:`streams.dev.children`) and waits until the broker answers
a metadata request. Tests (``tests/conftest.py``), ``vigil
demo`` and scripts use it::

    with LocalBroker() as broker:
        produce_to(broker.bootstrap)

By hand: ``python -m streams.dev.local_broker`` prints the bootstrap address and runs until
Ctrl-C, SIGINT, SIGTERM or SIGHUP; ``python -m streams.dev.local_broker --resolve-only``
only fills the jar cache.

This module imports neither Faust nor (until a broker is started) confluent-kafka.

Exceptions (part of the tree in :mod:`streams.errors`)::

    LocalBrokerError              root of this module's errors (a VigilError)
    ├── ToolMissingError          java or mvn is not on PATH
    ├── JarResolveError           Maven could not resolve the jars
    └── BrokerStartError          storage format failed, or the broker was not ready in time
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Literal

from streams.dev import children
from streams.dev.local_server import LocalServer
from streams.errors import LocalBrokerError

__all__ = [
    "KAFKA_VERSION",
    "BrokerStartError",
    "JarResolveError",
    "LocalBroker",
    "LocalBrokerError",
    "ToolMissingError",
    "default_cache_dir",
    "free_port",
    "resolve_jars",
]

#: Must match ``kafka.version`` in deploy/local/pom.xml; the jar cache is keyed on it.
KAFKA_VERSION = "3.9.1"

#: pom.xml, server.properties.template, log4j.properties. They are not package data: the
#: local broker runs from a source checkout (``pip install -e``), as tests and demos do.
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "local"

#: Written into the libs directory only after Maven succeeded, so a run interrupted halfway
#: is redone instead of trusted. Its content is the POM it was resolved from.
_COMPLETE_MARKER = ".vigil-resolved"

#: Bounded heap: the broker idles at ~200 MB; 512 MB leaves room for test bursts while
#: several JVMs (broker restarts, parallel sessions) fit on a small CI machine.
_HEAP_FLAGS = ("-Xms256m", "-Xmx512m")

#: Measured on the 2-core dev machine (3 starts each, format + start + first metadata
#: answer): JVM defaults 2.8-3.4 s, with these flags 2.5-2.8 s. C1-only JIT and the serial
#: collector spend less CPU on warm-up, which on two cores competes with the broker itself;
#: producer throughput from a Python confluent-kafka client (~300k msg/s of 200 B) showed
#: no measurable loss, the client being the bottleneck.
_JVM_FLAGS = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)

#: Seconds between SIGTERM and SIGKILL. A controlled KRaft shutdown of a single idle node
#: takes 1-3 s; past this, stopping promptly matters more than a clean log.
_STOP_GRACE_SECONDS = 20.0

#: How many trailing log lines go into a start failure message.
_LOG_TAIL_LINES = 40

#: SCRAM user names and passwords go verbatim into StorageTool's ``--add-scram`` argument
#: (``[name=...,password=...]``) and the client config, so keep them to characters that
#: need no quoting there.
_SCRAM_TOKEN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

#: The self-signed certificate only has to outlive one test session or demo.
_CERT_VALIDITY_DAYS = 30


class ToolMissingError(LocalBrokerError):
    """``java`` or ``mvn`` is not on PATH."""


class JarResolveError(LocalBrokerError):
    """Maven could not resolve the broker jars."""


class BrokerStartError(LocalBrokerError):
    """Storage format failed, or the broker did not become ready in time."""


def default_cache_dir() -> Path:
    """Where resolved jars live: ``$VIGIL_CACHE_DIR`` or ``~/.cache/vigil``, per Kafka version.

    Returns the ``libs`` directory itself, ``<cache>/kafka-<version>/libs``.
    """
    root = os.environ.get("VIGIL_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "vigil"
    return base / f"kafka-{KAFKA_VERSION}" / "libs"


def _require_tool(name: str, purpose: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(
            f"{name!r} is not on PATH; it is needed {purpose}. On Debian: "
            "apt-get install -y openjdk-17-jre-headless maven "
            "(or set KAFKA_BOOTSTRAP_SERVERS to use an existing broker)"
        )
    return path


def _deploy_file(name: str) -> Path:
    path = DEPLOY_DIR / name
    if not path.is_file():
        raise LocalBrokerError(
            f"{path} not found: the local broker needs vigil's source tree (deploy/local/), "
            "as in a git checkout installed with `pip install -e`; elsewhere set "
            "KAFKA_BOOTSTRAP_SERVERS to a running broker"
        )
    return path


def resolve_jars(cache_dir: Path | str | None = None) -> Path:
    """Copy the broker's runtime jars into ``cache_dir`` with Maven; return that directory.

    Skips Maven when a previous run completed with the same POM. ``cache_dir`` defaults to
    :func:`default_cache_dir`.
    """
    libs = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    pom = _deploy_file("pom.xml")
    pom_text = pom.read_text(encoding="utf-8")
    marker = libs / _COMPLETE_MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == pom_text:
        return libs
    mvn = _require_tool("mvn", "once, to resolve the Kafka broker jars")
    _require_tool("java", "to run Maven and the Kafka broker")
    if libs.exists():
        # Stale or partial: a jar from another version on the classpath breaks the broker.
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    # Maven writes target/ next to the POM it runs; keep the source tree clean by running a
    # copy of the POM inside the cache.
    work = libs.parent / "pom"
    work.mkdir(exist_ok=True)
    shutil.copyfile(pom, work / "pom.xml")
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(work / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - mvn
    if proc.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        output = (proc.stdout + proc.stderr).strip()[-4000:]
        raise JarResolveError(
            f"mvn exited with {proc.returncode} resolving Kafka {KAFKA_VERSION} jars into "
            f"{libs}; command: {' '.join(cmd)}\n{output}"
        )
    marker.write_text(pom_text, encoding="utf-8")
    return libs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path} not found)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


class LocalBroker(LocalServer):
    """A single-node KRaft Kafka (broker+controller) running as a child JVM.

    Parameters
    ----------
    data_dir
        Where the KRaft log, rendered config and broker logs go. ``None`` (default): a fresh
        temporary directory, removed by :meth:`stop`. A given directory is kept.
    jars_dir
        Directory of resolved jars; ``None`` runs :func:`resolve_jars` with its defaults.
    start_timeout
        Seconds :meth:`start` waits for the broker to answer a metadata request.
    node_id
        KRaft node id of the single node.
    heap
        JVM heap flags.
    sasl_ssl
        Also open a ``SASL_SSL`` listener (SCRAM-SHA-512 over TLS) next to PLAINTEXT, with a
        self-signed certificate for 127.0.0.1 made by ``keytool`` and one SCRAM user created
        when storage is formatted. Clients get their settings from :meth:`client_config`.
    sasl_username, sasl_password
        The SCRAM user; the password defaults to a random one. Characters: letters, digits,
        ``._-``. Meant for tests: the password is visible in the formatter's command line.

    Ports are chosen when the broker first starts and kept across :meth:`restart`, so a
    client's bootstrap address stays valid. The broker listens on 127.0.0.1 only.

    Examples
    --------
    Starting a JVM is no doctest (``tests/deploy/test_local_broker.py`` covers it)::

        with LocalBroker() as broker:
            broker.bootstrap  # '127.0.0.1:39093'
    """

    _not_started_error = LocalBrokerError
    _stop_grace = _STOP_GRACE_SECONDS

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        jars_dir: Path | str | None = None,
        start_timeout: float = 60.0,
        node_id: int = 1,
        heap: Sequence[str] = _HEAP_FLAGS,
        sasl_ssl: bool = False,
        sasl_username: str = "vigil",
        sasl_password: str | None = None,
    ) -> None:
        if start_timeout <= 0:
            raise ValueError(f"start_timeout must be > 0 seconds; got {start_timeout!r}")
        if node_id < 0:
            raise ValueError(f"node_id must be >= 0; got {node_id!r}")
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.jars_dir = Path(jars_dir) if jars_dir is not None else None
        self.start_timeout = start_timeout
        self.node_id = node_id
        self.heap = tuple(heap)
        if not _SCRAM_TOKEN.match(sasl_username):
            raise ValueError(
                f"sasl_username must be 1-128 of [A-Za-z0-9._-]; got {sasl_username!r}"
            )
        if sasl_password is not None and not _SCRAM_TOKEN.match(sasl_password):
            raise ValueError("sasl_password must be 1-128 of [A-Za-z0-9._-]")
        self.sasl_ssl = sasl_ssl
        self.sasl_username = sasl_username
        self.sasl_password = sasl_password if sasl_password is not None else secrets.token_hex(16)
        self._reset()

    def _reset(self) -> None:
        self._init_server()
        self._java: str | None = None
        self._broker_port: int | None = None
        self._controller_port: int | None = None
        self._sasl_port: int | None = None
        self._keystore_password = secrets.token_hex(16)
        self._cluster_id: str | None = None

    # -- read-only state ------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"`` of the PLAINTEXT listener; set once the broker has started."""
        if self._broker_port is None:
            raise LocalBrokerError("the broker has not been started; call start() first")
        return f"127.0.0.1:{self._broker_port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        """``"127.0.0.1:PORT"`` of the SASL_SSL listener (only with ``sasl_ssl=True``)."""
        if not self.sasl_ssl:
            raise LocalBrokerError("this broker has no SASL_SSL listener; pass sasl_ssl=True")
        if self._sasl_port is None:
            raise LocalBrokerError("the broker has not been started; call start() first")
        return f"127.0.0.1:{self._sasl_port}"

    @property
    def ssl_ca_location(self) -> Path:
        """PEM file of the broker's self-signed certificate, for ``ssl.ca.location``."""
        if not self.sasl_ssl:
            raise LocalBrokerError("this broker has no SASL_SSL listener; pass sasl_ssl=True")
        return self.directory / "tls" / "ca.pem"

    def client_config(
        self, listener: Literal["PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ) -> dict[str, str | int | float | bool]:
        """confluent-kafka (librdkafka) settings to reach this broker on ``listener``."""
        if listener == "PLAINTEXT":
            return {"bootstrap.servers": self.bootstrap}
        if listener == "SASL_SSL":
            return {
                "bootstrap.servers": self.sasl_ssl_bootstrap,
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password,
                "ssl.ca.location": str(self.ssl_ca_location),
            }
        raise ValueError(f"listener must be 'PLAINTEXT' or 'SASL_SSL'; got {listener!r}")

    @property
    def log_path(self) -> Path:
        """The broker's log4j file, ``<directory>/logs/server.log``."""
        return self.directory / "logs" / "server.log"

    # -- lifecycle ------------------------------------------------------------------------

    def _before_start(self) -> None:
        self._java = _require_tool("java", "to run the Kafka broker")
        if self.jars_dir is None:
            self.jars_dir = resolve_jars()

    def _launch(self, first: bool) -> None:
        """The first start picks ports, creates the data directory, renders the config and
        formats storage; later starts (see :meth:`restart`) reuse all of them."""
        java = self._java
        assert java is not None  # noqa: S101 - found by _before_start()
        if first:
            if self.sasl_ssl:
                self._make_keystore(java)
            self._format_storage(java)
        self._spawn(java)
        self._wait_ready()

    def _where(self) -> str:
        return f"127.0.0.1:{self._broker_port}" if self._broker_port else "not started"

    # -- internals ------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.data_dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="vigil-kafka-"))
            self._owns_dir = True
        else:
            self._dir = self.data_dir
            self._dir.mkdir(parents=True, exist_ok=True)
        (self._dir / "logs").mkdir(exist_ok=True)
        self._broker_port = free_port()
        self._controller_port = free_port()
        while self._controller_port == self._broker_port:
            self._controller_port = free_port()
        self._cluster_id = _cluster_id()
        extra = {
            "extra_listeners": "",
            "extra_advertised_listeners": "",
            "extra_protocol_map": "",
            "extra_config": "",
        }
        if self.sasl_ssl:
            taken = {self._broker_port, self._controller_port}
            self._sasl_port = free_port()
            while self._sasl_port in taken:
                self._sasl_port = free_port()
            extra = self._sasl_ssl_properties(self._sasl_port)
        template = Template(_deploy_file("server.properties.template").read_text("utf-8"))
        rendered = template.substitute(
            node_id=self.node_id,
            broker_port=self._broker_port,
            controller_port=self._controller_port,
            log_dir=self._dir / "kraft",
            **extra,
        )
        (self._dir / "server.properties").write_text(rendered, encoding="utf-8")

    def _sasl_ssl_properties(self, port: int) -> dict[str, str]:
        assert self._dir is not None  # noqa: S101 - set by start(); narrows the type
        listener = f",SASL_SSL://127.0.0.1:{port}"
        # Per-listener settings (listener.name.sasl_ssl.*) so PLAINTEXT and the controller
        # listener stay as they are: inter-broker and controller traffic need no auth here.
        prefix = "listener.name.sasl_ssl."
        lines = [
            "# SASL_SSL listener (LocalBroker(sasl_ssl=True)): SCRAM-SHA-512 over TLS.",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            f"{prefix}sasl.enabled.mechanisms=SCRAM-SHA-512",
            f"{prefix}scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"{prefix}ssl.keystore.type=PKCS12",
            f"{prefix}ssl.keystore.location={self._dir / 'tls' / 'broker.p12'}",
            f"{prefix}ssl.keystore.password={self._keystore_password}",
            f"{prefix}ssl.key.password={self._keystore_password}",
        ]
        return {
            "extra_listeners": listener,
            "extra_advertised_listeners": listener,
            "extra_protocol_map": ",SASL_SSL:SASL_SSL",
            "extra_config": "\n".join(lines) + "\n",
        }

    def _make_keystore(self, java: str) -> None:
        assert self._dir is not None  # noqa: S101 - set by start(); narrows the type
        keytool = Path(java).resolve().parent / "keytool"
        if not keytool.is_file():
            keytool = Path(_require_tool("keytool", "to make the SASL_SSL certificate"))
        tls = self._dir / "tls"
        tls.mkdir(exist_ok=True)
        store = ["-keystore", str(tls / "broker.p12"), "-storetype", "PKCS12"]
        store += ["-storepass", self._keystore_password]
        commands = [
            # Self-signed, and marked as a CA so OpenSSL (librdkafka) accepts it as its own
            # trust anchor; the SAN matches the advertised host, as hostname checks need.
            [
                str(keytool), "-genkeypair", "-alias", "broker", "-keyalg", "RSA",
                "-keysize", "2048", "-validity", str(_CERT_VALIDITY_DAYS),
                "-dname", "CN=localhost", "-ext", "SAN=IP:127.0.0.1,DNS:localhost",
                "-ext", "BC=ca:true", "-keypass", self._keystore_password, *store,
            ],
            [
                str(keytool), "-exportcert", "-rfc", "-alias", "broker",
                "-file", str(tls / "ca.pem"), *store,
            ],
        ]  # fmt: skip
        for cmd in commands:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - keytool
            if proc.returncode != 0:
                raise BrokerStartError(
                    f"keytool {cmd[1]} exited with {proc.returncode} in {tls}:\n"
                    f"{(proc.stdout + proc.stderr).strip()[-2000:]}"
                )

    def _java_cmd(self, java: str, main: str, *args: str) -> list[str]:
        assert self._dir is not None and self.jars_dir is not None  # noqa: S101 - set by start()
        return [
            java,
            *self.heap,
            *_JVM_FLAGS,
            f"-Dlog4j.configuration=file:{_deploy_file('log4j.properties')}",
            f"-Dkafka.logs.dir={self._dir / 'logs'}",
            "-cp",
            f"{self.jars_dir}/*",
            main,
            *args,
        ]

    def _format_storage(self, java: str) -> None:
        assert self._dir is not None and self._cluster_id is not None  # noqa: S101 - set by start()
        cmd = self._java_cmd(
            java,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self._cluster_id,
            "-c",
            str(self._dir / "server.properties"),
            "--ignore-formatted",
        )
        if self.sasl_ssl:
            # KRaft keeps SCRAM credentials in the metadata log; the formatter can seed them.
            scram = f"SCRAM-SHA-512=[name={self.sasl_username},password={self.sasl_password}]"
            cmd += ["--add-scram", scram]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - java
        if proc.returncode != 0:
            raise BrokerStartError(
                f"kafka.tools.StorageTool format exited with {proc.returncode} for "
                f"{self._dir}:\n{(proc.stdout + proc.stderr).strip()[-4000:]}"
            )

    def _spawn(self, java: str) -> None:
        assert self._dir is not None  # noqa: S101 - set by start(); narrows the type
        cmd = self._java_cmd(java, "kafka.Kafka", str(self._dir / "server.properties"))
        with open(self._dir / "logs" / "stderr.log", "ab") as err:
            self._proc = children.spawn(cmd, stdout=err, stderr=subprocess.STDOUT)

    def _wait_ready(self) -> None:
        from confluent_kafka.admin import AdminClient  # lazy: keep imports light

        deadline = time.monotonic() + self.start_timeout
        # log_level 0: the probe connects before the broker listens, and librdkafka would
        # print every expected 'Connection refused' to stderr.
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None  # noqa: S101 - set by _spawn(); narrows the type
            if self._proc.poll() is not None:
                raise BrokerStartError(
                    f"the Kafka broker exited with {self._proc.returncode} during start"
                    f"{self._diagnostics()}"
                )
            try:
                meta = admin.list_topics(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            except Exception as exc:  # KafkaException while the listener is not up yet
                last_error = exc
                time.sleep(0.2)
                continue
            # After a restart, topics exist already: ready means each partition has its
            # leader again (clients that write before then wait on metadata refreshes).
            leaderless = [
                f"{name}[{p.id}]"
                for name, topic in meta.topics.items()
                for p in topic.partitions.values()
                if p.leader < 0
            ]
            if meta.brokers and meta.controller_id >= 0 and not leaderless:
                return
            if leaderless:
                last_error = LocalBrokerError(f"no leader yet for {', '.join(leaderless[:5])}")
            time.sleep(0.2)
        raise BrokerStartError(
            f"the Kafka broker at {self.bootstrap} was not ready (a metadata answer, a leader "
            f"for every partition) within {self.start_timeout:g} s (last error: {last_error!r})"
            f"{self._diagnostics()}"
        )

    def _diagnostics(self) -> str:
        assert self._dir is not None  # noqa: S101 - set by start(); narrows the type
        stderr = self._dir / "logs" / "stderr.log"
        return (
            f"\n--- tail of {self.log_path} ---\n{_tail(self.log_path)}"
            f"\n--- tail of {stderr} ---\n{_tail(stderr)}"
        )


def _cluster_id() -> str:
    # KRaft wants a 16-byte UUID in URL-safe base64 without padding (22 characters), which
    # is what `kafka-storage.sh random-uuid` prints. Like Kafka's Uuid.randomUuid(), reject
    # ids starting with "-": StorageTool's argument parser would read one as an option.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: start a broker, print its bootstrap address, stop it on Ctrl-C (or SIGTERM, SIGHUP)."""
    parser = argparse.ArgumentParser(
        prog="python -m streams.dev.local_broker",
        description=f"Run a local single-node Apache Kafka {KAFKA_VERSION} (KRaft) from jars.",
    )
    parser.add_argument(
        "--resolve-only",
        action="store_true",
        help="only resolve the jars into the cache (for CI and offline preparation)",
    )
    parser.add_argument("--cache-dir", type=Path, help="jar directory (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, help="keep data here instead of a temp dir")
    parser.add_argument("--timeout", type=float, default=60.0, help="start timeout, seconds")
    parser.add_argument(
        "--sasl-ssl",
        action="store_true",
        help="also open a SASL_SSL (SCRAM-SHA-512) listener and print its client settings",
    )
    args = parser.parse_args(argv)

    # The handlers go in first: Maven and the broker's start take seconds, and a signal then
    # must stop them too. SIGTERM and SIGHUP (terminal closed) take Ctrl-C's clean path.
    with children.stop_signals():
        return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    try:
        started = time.monotonic()
        libs = resolve_jars(args.cache_dir)
        print(f"jars: {libs} ({time.monotonic() - started:.1f} s)", flush=True)
        if args.resolve_only:
            return 0
        broker = LocalBroker(
            args.data_dir, jars_dir=libs, start_timeout=args.timeout, sasl_ssl=args.sasl_ssl
        )
        started = time.monotonic()
        with broker:
            print(
                f"Kafka {KAFKA_VERSION} ready in {time.monotonic() - started:.1f} s\n"
                f"bootstrap: {broker.bootstrap}\n"
                f"data: {broker.directory}\nlog: {broker.log_path}\n"
                f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}",
                flush=True,
            )
            if broker.sasl_ssl:
                # A throwaway local user: printing its password is the point here.
                secure = broker.client_config("SASL_SSL")
                print("SASL_SSL client settings:")
                for key, value in secure.items():
                    print(f"  {key}={value}")
            print("Ctrl-C to stop.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while broker.running:
                    time.sleep(0.5)
            if not broker.running:
                print("the broker exited on its own; see the log above", file=sys.stderr)
                return 1
        print("stopped.", flush=True)
    except KeyboardInterrupt:
        print("interrupted; stopped.", file=sys.stderr)
        return 130
    except LocalBrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
