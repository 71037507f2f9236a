"""rclpy.subscription.Subscription: a KEEP_LAST queue of its QoS depth, emptied by an executor."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from _stand_in_typestore import from_wire
from rclpy.qos import HistoryPolicy, QoSProfile


class Subscription:
    def __init__(
        self, node: Any, msg_type: type, topic: str, callback: Callable[[Any], None], qos_profile: QoSProfile
    ) -> None:
        self._node = node
        self.msg_type = msg_type
        self._topic = topic
        self.callback = callback
        self.qos_profile = qos_profile
        keep_last = qos_profile.history != HistoryPolicy.KEEP_ALL
        # KEEP_LAST: a full queue drops its oldest sample, as the middleware does.
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque(
            maxlen=max(1, qos_profile.depth) if keep_last else None
        )
        self._lock = threading.Lock()

    @property
    def topic_name(self) -> str:
        return self._topic

    def _deliver(self, typename: str, data: bytes) -> None:
        with self._lock:
            self._queue.append((typename, data))

    def _take(self) -> Any | None:
        with self._lock:
            if not self._queue:
                return None
            typename, data = self._queue.popleft()
        return from_wire(typename, data, self.msg_type)

    def _has_message(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def destroy(self) -> None:
        self._node.destroy_subscription(self)
