"""A worker runs BLAS on one thread, unless the operator chose otherwise.

Run in a child interpreter: OpenBLAS reads its environment variables when it is loaded,
and a limit is process-wide. The child runs :func:`~streams.ingest.worker.run_worker`
with the service runners stubbed (no Kafka needed to see the policy applied before the
worker would run) and reports BLAS's threads as the worker would start with them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from streams.blas_policy import BLAS_THREAD_VARIABLES

CHILD = r"""
import json, sys
from types import SimpleNamespace

import faust, mode
from threadpoolctl import threadpool_info

import streams.ingest.batch as batch
import streams.ingest.faust_app as faust_app
from streams.config import settings_from_dict
from streams.ingest.worker import run_worker

ingest = sys.argv[1]
seen = []

def blas_threads():
    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})

class Runner:  # mode.Worker and faust.Worker: record, do not run
    def __init__(self, *args, **kwargs):
        pass
    def execute_from_commandline(self):
        seen.append(blas_threads())

mode.Worker = faust.Worker = Runner
batch.BatchWorker = lambda settings: None
faust_app.create_app = lambda settings: SimpleNamespace(
    app=None, core=SimpleNamespace(start=lambda: None)
)
before = blas_threads()
run_worker(settings_from_dict({"worker": {"ingest": ingest}}))
print(json.dumps({"before": before, "running": seen[0]}))
"""


def _child(ingest: str, **env: str) -> dict[str, list[int]]:
    clean = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, ingest],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("ingest", ["batch", "faust"])
def test_worker_runs_blas_on_one_thread(ingest: str) -> None:
    threads = _child(ingest)
    if len(os.sched_getaffinity(0)) > 1:  # OpenBLAS's own default: a thread per usable core
        assert max(threads["before"]) > 1
    assert threads["running"] == [1]


def test_operator_choice_holds() -> None:
    threads = _child("batch", OPENBLAS_NUM_THREADS="2")
    assert threads["before"] == [2]
    assert threads["running"] == [2]
