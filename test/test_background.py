"""The side-work thread: jobs in order at idle priority, and normal priority for good once starved."""

from __future__ import annotations

import os
import threading
import time

import cv2
import pytest

from depth_node.runtime import background
from depth_node.runtime.background import BackgroundThread
from depth_node.runtime.frame import prepare_thread

linux_only = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")


def _where() -> tuple[int, int]:
    """The thread a job runs on, and its scheduling policy."""
    return threading.get_native_id(), os.sched_getscheduler(0)


@linux_only
def test_jobs_run_in_order_on_one_thread_at_idle_priority() -> None:
    side = BackgroundThread("side")
    order: list[int] = []
    futures = [side.submit(order.append, i) for i in range(5)]
    assert [f.result() for f in futures] == [None] * 5 and order == [0, 1, 2, 3, 4]
    thread, policy = side.run(_where)
    assert thread != threading.get_native_id() and policy == os.SCHED_IDLE
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the caller keeps its own priority
    side.close()


@linux_only
def test_normal_priority_on_request() -> None:
    side = BackgroundThread("side", "normal")
    assert side.run(_where)[1] == os.SCHED_OTHER
    side.close()


def test_a_jobs_exception_reaches_the_caller_and_the_thread_goes_on() -> None:
    side = BackgroundThread("side")
    with pytest.raises(ZeroDivisionError):
        side.run(lambda: 1 / 0)
    assert side.run(lambda: 42) == 42
    side.close()


@linux_only
def test_a_starved_job_moves_the_work_to_normal_priority_for_good(monkeypatch) -> None:
    """A job that waited (here: slept) longer than STARVED_S beyond its CPU time: the next jobs run
    on a new thread at normal priority, made by the caller, and a warning says why once."""
    monkeypatch.setattr(background, "STARVED_S", 0.05)
    warnings: list[str] = []
    # The module's logger itself, not a handler: launch_pytest (a ROS Python) reconfigures logging.
    monkeypatch.setattr(background.LOG, "warning", lambda text, *args: warnings.append(text % args))
    side = BackgroundThread("side")
    first_thread, policy = side.run(_where)
    assert policy == os.SCHED_IDLE
    side.run(time.sleep, 0.01)  # under the limit: nothing changes
    assert side.run(_where) == (first_thread, os.SCHED_IDLE) and not warnings
    side.run(time.sleep, 0.1)
    thread, policy = side.run(_where)
    assert side.run(_where) == (thread, policy)
    assert policy == os.SCHED_OTHER and thread != first_thread and side.priority == "normal"
    assert len(warnings) == 1 and "waited 0.1" in warnings[0] and "normal priority" in warnings[0]
    side.close()


def test_an_unknown_priority_is_refused() -> None:
    with pytest.raises(ValueError, match="priority must be one of"):
        BackgroundThread("side", "high")


@linux_only
def test_the_prepare_thread_at_idle_priority_keeps_opencv_on_it() -> None:
    """OpenCV's worker threads run at normal priority: the node's idle prepare thread switches them off."""
    threads = cv2.getNumThreads()
    try:
        preparer = prepare_thread("idle")
        assert preparer.run(_where)[1] == os.SCHED_IDLE and cv2.getNumThreads() == 1
        preparer.close()
    finally:
        cv2.setNumThreads(threads)
