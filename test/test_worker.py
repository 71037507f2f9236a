"""The node's one-slot mailbox and the thread that empties it (ros/worker.py), without rclpy."""

from __future__ import annotations

import threading
import time

from depth_node.ros.worker import LatestSlot, MailboxWorker


# --- mailbox and worker ------------------------------------------------------------------------
def test_slot_keeps_only_the_newest_item():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is None
    assert slot.put(2) == 1  # 1 was never processed
    assert slot.get(timeout=0) == 2
    assert slot.get(timeout=0.01) is None
    slot.put(3)
    assert slot.close() == 3
    assert slot.get(timeout=None) is None  # closed: returns at once


def test_worker_processes_newest_frames_survives_errors_and_joins():
    slot: LatestSlot[int] = LatestSlot()
    processed: list[int] = []
    errors: list[tuple[int, str]] = []
    release = threading.Event()

    def process(item: int) -> None:
        if item == 0:
            release.wait(2.0)  # hold the worker busy while newer items arrive
        if item == 5:
            raise ValueError("bad frame")
        processed.append(item)

    worker = MailboxWorker(slot, process, lambda item, error: errors.append((item, str(error))), "test")
    worker.start()
    slot.put(0)
    deadline = time.monotonic() + 2.0
    while not worker.busy and time.monotonic() < deadline:
        time.sleep(0.001)
    replaced = [slot.put(i) for i in (1, 2, 3)]
    assert replaced == [None, 1, 2]  # 1 and 2 superseded while 0 was in progress
    release.set()
    slot.put(5)  # replaces 3, raises in process
    deadline = time.monotonic() + 2.0
    while not errors and time.monotonic() < deadline:
        time.sleep(0.001)
    slot.put(6)
    deadline = time.monotonic() + 2.0
    while 6 not in processed and time.monotonic() < deadline:
        time.sleep(0.001)
    assert errors == [(5, "bad frame")]
    assert processed[0] == 0 and processed[-1] == 6 and 1 not in processed and 2 not in processed
    assert worker.stop(timeout=2.0)
    assert not worker.is_alive()
