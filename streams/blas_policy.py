"""BLAS as a worker process runs it: on one thread.

numpy's and scipy's wheels bring OpenBLAS, which starts a thread per core and, after each
call large enough to share out (the multivariate detector's projection of a batch's rows,
~1000 x 23 x 23), keeps those threads spinning for a while in case another call comes.
A worker is one process per core by design (it scales by partitions and processes), and
on its machine the Kafka client's threads, the checkpoint compressor and often the
broker share the cores: a BLAS thread that spins takes a core from them. Measured on the
2-core benchmark machine (``benchmarks/throughput.py --only throughput``, alternated,
issue 18's twenty-second session): one thread 25,999 events/s against 22,855 with
OpenBLAS's default, median of 3 pairs each.

So a worker limits every BLAS library loaded in it to one thread
(:mod:`threadpoolctl`, the scientific Python stack's own tool), unless the operator set
one of the usual environment variables: then theirs holds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from threadpoolctl import threadpool_limits

__all__ = ["BLAS_THREAD_VARIABLES", "single_threaded_blas"]

log = logging.getLogger(__name__)

#: Environment variables through which an operator chooses BLAS's threads themselves.
BLAS_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


def single_threaded_blas(environ: Mapping[str, str] | None = None) -> threadpool_limits | None:
    """Limit the BLAS libraries loaded so far to one thread each, unless ``environ``
    (default: the process's) sets one of :data:`BLAS_THREAD_VARIABLES`; returns the
    limiter (:meth:`~threadpoolctl.threadpool_limits.restore_original_limits` undoes
    it), or None when left alone. Call it once the worker's imports are done (a library
    loaded later keeps its own default).

    >>> single_threaded_blas({"OPENBLAS_NUM_THREADS": "2"}) is None
    True
    >>> import numpy
    >>> from threadpoolctl import threadpool_info
    >>> limiter = single_threaded_blas({})
    >>> {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    {1}
    >>> limiter.restore_original_limits()  # leave this interpreter as it was
    """
    env = os.environ if environ is None else environ
    chosen = [name for name in BLAS_THREAD_VARIABLES if env.get(name)]
    if chosen:
        log.info("BLAS threads left as %s sets them", chosen[0])
        return None
    return threadpool_limits(limits=1, user_api="blas")
