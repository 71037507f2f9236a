"""rclpy.publisher.Publisher: serializes and hands the message to every matched subscription."""

from __future__ import annotations

from typing import Any

from _stand_in_typestore import to_wire
from rclpy.qos import QoSProfile, _offered_matches_requested


class Publisher:
    def __init__(self, node: Any, msg_type: type, topic: str, qos_profile: QoSProfile) -> None:
        self._node = node
        self.msg_type = msg_type
        self._topic = topic
        self.qos_profile = qos_profile
        self._destroyed = False

    @property
    def topic_name(self) -> str:
        return self._topic

    @property
    def topic(self) -> str:
        return self._topic

    def _matched(self) -> list[Any]:
        context = self._node.context
        with context.graph_lock:
            return [
                sub
                for sub in context.subscriptions
                if sub.topic_name == self._topic
                and getattr(sub.msg_type, "__msgtype__", None) == getattr(self.msg_type, "__msgtype__", None)
                and _offered_matches_requested(self.qos_profile, sub.qos_profile)
            ]

    def publish(self, msg: Any) -> None:
        if self._destroyed:
            raise RuntimeError("publisher has been destroyed")
        if not isinstance(msg, self.msg_type):
            raise TypeError(f"Expected {self.msg_type.__name__}, got {type(msg).__name__}")
        typename, data = to_wire(msg)
        for subscription in self._matched():
            subscription._deliver(typename, data)
        self._node.context.notify()

    def get_subscription_count(self) -> int:
        return len(self._matched())

    def destroy(self) -> None:
        self._node.destroy_publisher(self)
