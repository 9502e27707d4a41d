"""A worker's collector policy: full collections rare, old cyclic garbage still collected.

Run in a child interpreter: the policy is process-wide (thresholds, frozen heap), and the
test process's own heap would decide when CPython collects.
"""

from __future__ import annotations

import json
import subprocess
import sys

from streams.gc_policy import FULL_AFTER_YOUNG

CHILD = r"""
import gc, json, sys, weakref
from streams.gc_policy import settle_collector

class Node:
    pass

settle_collector()
full = []

def on_gc(phase, info):
    if phase == "stop" and info["generation"] == 2:
        full.append(1)

gc.callbacks.append(on_gc)

# A cycle that outlives two young collections (it sits in the old generation), then
# becomes garbage: only a full collection can free it.
node = Node(); node.me = node
gone = weakref.ref(node)
gc.collect(1)
del node

kept = []
def churn(n):
    # Cycles that die young (what a worker's batches make) and survivors (state that
    # grows, moved to the old generation), as a worker allocates.
    for i in range(n):
        c = []; c.append(c)
        if i % 20 == 0:
            kept.append([i])

young, middle, _ = gc.get_threshold()
# What would have run ten full collections under CPython's default threshold (10).
churn(young * middle * 10 * 10)
early = (gone() is None, len(full))
churn(young * middle * int(sys.argv[1]) * 2)
late = (gone() is None, len(full))
print(json.dumps({"early": early, "late": late, "threshold": gc.get_threshold()}))
"""


def test_old_cyclic_garbage_waits_for_a_rare_full_collection_but_is_collected() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(FULL_AFTER_YOUNG)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen = json.loads(out.stdout)
    assert seen["threshold"][2] == FULL_AFTER_YOUNG
    collected_early, full_early = seen["early"]
    # CPython's default would have run ~10 full collections by then; the policy none.
    assert not collected_early
    assert full_early == 0
    # And the garbage is not kept for ever: a full collection came, and freed it.
    collected_late, full_late = seen["late"]
    assert full_late >= 1
    assert collected_late
