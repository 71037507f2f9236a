"""The node's frame mailboxes and the threads that empty them (ROS-free, so they are tested without
rclpy).

Subscription callbacks only put the newest frame into a one-slot mailbox and never block the
executor; a prepare thread takes frames out and prepares them into a second one-slot mailbox, from
which the inference thread takes them for the network. A frame still waiting in either when a newer
one arrives is replaced (the node counts it "superseded"), so latency stays bounded when the model is
slower than the camera.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

# --------------------------------------------------------------------------------------------------
T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-slot mailbox: ``put`` replaces the waiting item (and returns it), ``get`` waits for one.

    The producer (a subscription callback) never blocks; the consumer always gets the newest item.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> T | None:
        """Store ``item``; return the item it replaced (not processed: the caller counts it dropped)."""
        with self._condition:
            replaced, self._item = self._item, item
            self._condition.notify()
            return replaced

    def get(self, timeout: float | None = None) -> T | None:
        """The waiting item (the slot is then empty), or None after ``timeout`` or once closed."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> T | None:
        """Wake the consumer for good; return the item nobody will process."""
        with self._condition:
            self._closed = True
            item, self._item = self._item, None
            self._condition.notify_all()
            return item

    @property
    def closed(self) -> bool:
        return self._closed


class MailboxWorker(Generic[T]):
    """One thread that takes items from a :class:`LatestSlot` and processes them, one at a time.

    An exception from ``process`` goes to ``on_error`` (the thread keeps running): a bad frame must
    never stop the node.
    """

    def __init__(
        self,
        slot: LatestSlot[T],
        process: Callable[[T], None],
        on_error: Callable[[T, Exception], None],
        name: str,
    ) -> None:
        self._slot = slot
        self._process = process
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._busy = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._slot.closed:
            item = self._slot.get(timeout=0.5)
            if item is None:
                continue
            self._busy.set()
            try:
                self._process(item)
            except Exception as error:  # reported and counted by on_error
                self._on_error(item, error)
            finally:
                self._busy.clear()

    @property
    def name(self) -> str:
        return self._thread.name

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> bool:
        """Close the slot and join the thread (after the frame in progress); True once it ended."""
        self._slot.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()
