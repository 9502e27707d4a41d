"""One helper: the cyclic garbage collector paused around a block of work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block, and back on after (if it was on).

    For work that allocates many objects and makes no cycles (decoding a batch of
    records, restoring checkpoints): each few hundred allocations would otherwise start
    a collection that walks everything alive. Reference counting still frees every
    acyclic object; cycles made meanwhile wait for the next collection.

    >>> import gc
    >>> with gc_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
