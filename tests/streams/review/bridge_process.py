"""``vigil review label-studio`` as a child process, for tests against a real broker and a
real Label Studio."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from streams.dev import children
from streams.dev.label_studio import LocalLabelStudio
from streams.dev.local_broker import free_port
from streams.dev.scrape import scrape, total
from tests.support import wait_until


class Bridge:
    """``vigil review label-studio`` as a child process, with webhooks to a fixed port."""

    def __init__(
        self,
        bootstrap: str,
        topics: dict[str, str],
        ls: LocalLabelStudio,
        tmp_path: Path,
        *,
        reconcile_every_s: float = 2.0,
        **settings: Any,
    ) -> None:
        self.tag = f"b{uuid.uuid4().hex[:8]}"
        self.webhook_port, self.metrics_port = free_port(), free_port()
        self.secret = uuid.uuid4().hex
        self.config = tmp_path / f"{self.tag}.yaml"
        self.log = tmp_path / f"{self.tag}.log"
        config = {
            "kafka": {"bootstrap": bootstrap},
            "topics": topics,
            "review": {
                "label_studio": {
                    "url": ls.url,
                    "token": ls.token,
                    "project_title": f"{self.tag} {{model_id}}",
                    "group_id": f"bridge-{self.tag}",
                    "batch_within_s": 0.2,
                    "metrics_host": "127.0.0.1",
                    "metrics_port": self.metrics_port,
                    "webhook_host": "127.0.0.1",
                    "webhook_port": self.webhook_port,
                    "webhook_url": f"http://127.0.0.1:{self.webhook_port}/webhook",
                    "webhook_secret": self.secret,
                    "reconcile_every_s": reconcile_every_s,
                    "retry_initial_s": 0.2,
                    "retry_max_s": 2.0,
                    **settings,
                }
            },
        }
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Bridge:
        with self.log.open("ab") as log:
            self.proc = children.spawn(
                [sys.executable, "-m", "streams.cli", "review", "label-studio", "-c", self.config],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
            )
        assert wait_until(self._up, timeout=60), self.log_tail()
        return self

    def _up(self) -> bool:
        try:
            scrape(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1.0)
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            children.stop(self.proc, grace=15.0)

    def counter(self, name: str, **labels: str) -> float:
        return total(scrape(f"http://127.0.0.1:{self.metrics_port}/metrics"), name, **labels)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else "(no log)"
