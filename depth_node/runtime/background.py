"""A thread for a frame's side work (preparing the next frame while the network runs) that can take
only what the network leaves of the cores.

Why: ONNX Runtime's threads leave gaps in their work (layers too small to split, the hand-over between
them): a 640x192 int8 model keeps 1.6 of 2 cores busy. Side work at normal priority does not wait for
those gaps: it takes a core while the network's ops run in parallel, and the network waits for it. At
the OS's idle priority (Linux ``SCHED_IDLE``) it runs only where a core would otherwise idle, and a
network thread that wakes takes the core back at once (docs/FAST_MODEL_STUDY.md, "Preparing the next
frame at idle priority").

The risk of idle priority: other processes that keep every core busy starve it. A job that waited
longer than :data:`STARVED_S` beyond its own CPU time moves the work to a thread at normal priority
for good, with a warning. That thread is made by the caller (the node's prepare loop, at
normal priority): an unprivileged thread cannot leave ``SCHED_IDLE`` by itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any, TypeVar

LOG = logging.getLogger(__name__)

PRIORITIES = ("idle", "normal")
# A job that waited this long for a core (wall time minus its CPU time) was starved, not unlucky.
STARVED_S = 0.25
R = TypeVar("R")


def lower_to_idle_priority() -> bool:
    """Put the calling thread at the OS's idle priority (Linux ``SCHED_IDLE``); False where there is
    none (another OS) or it was refused."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread
    except (AttributeError, OSError) as error:
        LOG.debug("idle priority not available (%s): side work runs at normal priority", error)
        return False
    return True


class BackgroundThread:
    """Runs jobs one at a time, in order, on a thread of its own at ``priority`` ("idle" or "normal",
    :data:`PRIORITIES`). Submit it from a thread at normal priority (see the module's docstring)."""

    def __init__(self, name: str, priority: str = "idle") -> None:
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
        self.name = name
        self.priority = priority
        self.starved_for = 0.0  # seconds the job that starved waited; 0 while none did
        self._executor = self._new_executor()
        self._last: Future[Any] | None = None

    def _new_executor(self) -> ThreadPoolExecutor:
        initializer = lower_to_idle_priority if self.priority == "idle" else None
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name, initializer=initializer)

    def submit(self, job: Callable[..., R], *args: Any) -> Future[R]:
        """Run ``job(*args)`` on the thread once the job before has ended."""
        self.wait()
        if self.starved_for and self.priority == "idle":
            LOG.warning(
                "%s: a job at idle priority waited %.2f s for a CPU core (other processes keep every "
                "core busy): it runs at normal priority from now on",
                self.name,
                self.starved_for,
            )
            self.priority = "normal"
            old, self._executor = self._executor, self._new_executor()
            old.shutdown(wait=False)
        self._last = self._executor.submit(self._timed, job, *args)
        return self._last

    def run(self, job: Callable[..., R], *args: Any) -> R:
        """``job(*args)`` on the thread, waited for: its result, or its exception raised here."""
        return self.submit(job, *args).result()

    def _timed(self, job: Callable[..., R], *args: Any) -> R:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return job(*args)
        finally:
            waited = (time.perf_counter() - wall) - (time.thread_time() - cpu)
            if waited > STARVED_S and self.priority == "idle":
                self.starved_for = waited

    def wait(self) -> None:
        """Until the job submitted last has ended (its exception, if any, stays with its future)."""
        last, self._last = self._last, None
        if last is not None:
            wait_for([last])

    def close(self) -> None:
        """End the thread after the job in progress."""
        self.wait()
        self._executor.shutdown(wait=True)
