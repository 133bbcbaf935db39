"""Run a compiled kernel over parts of a block on every core (threads).

The dense passes (candidates, the certificate's screens) spend their time in numba kernels
compiled with ``nogil=True``, so threads run them in parallel. A block is split into
contiguous parts (rows, or columns for the mentor-side top-k); each part's result depends on
that part alone and the parts are put back together in order, so the outcome is the same for
any number of threads: the same input still gives the same pairs.

``THREADS`` defaults to the cores this process may use (its CPU affinity, and a cgroup v2
quota if there is one), at most ``MAX_THREADS``; ``KIZUNA_ENGINE_THREADS`` overrides it (1 = no
threads). The pool is created on first use, in each process (a pool does not survive ``fork``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

MAX_THREADS = 8
CPU_MAX = "/sys/fs/cgroup/cpu.max"  # cgroup v2: "<quota> <period>" or "max <period>"
# A part smaller than this many entries is not worth a thread hand-off (~50 us).
MIN_PART = 1 << 16

T = TypeVar("T")
log = logging.getLogger(__name__)


def _cpu_quota() -> int | None:
    """CPUs a cgroup v2 quota allows (containers: ``docker --cpus``), or None without one."""
    try:
        with open(CPU_MAX) as limits:
            quota, period = limits.read().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _default_threads() -> int:
    configured = os.environ.get("KIZUNA_ENGINE_THREADS", "").strip()
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            log.warning("KIZUNA_ENGINE_THREADS=%r is not a number: using every core", configured)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cpu_quota()
    if quota is not None:
        cores = min(cores, quota)
    return max(1, min(MAX_THREADS, cores))


THREADS = _default_threads()
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _after_fork_in_child() -> None:
    """A forked child has none of the pool's threads, and the lock may have been held."""
    global _lock, _pool
    _lock = threading.Lock()
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max(1, THREADS - 1), thread_name_prefix="kizuna-kernel")
            _pool_pid = os.getpid()
        return _pool


def parts(n: int, entries_per_item: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into at most ``THREADS`` contiguous (start, stop) parts of similar size,
    each with at least ``MIN_PART`` entries (items x ``entries_per_item``)."""
    count = max(1, min(THREADS, n, (n * max(1, entries_per_item)) // MIN_PART))
    bounds = [n * k // count for k in range(count + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(count)]


def run_parts(work: Callable[[int, int], T], split: list[tuple[int, int]]) -> list[T]:
    """``work(start, stop)`` for each part (the first in this thread, the rest on the pool);
    the results in the parts' order."""
    if len(split) == 1:
        return [work(*split[0])]
    pending = [_executor().submit(work, *part) for part in split[1:]]
    first = work(*split[0])
    return [first] + [future.result() for future in pending]
